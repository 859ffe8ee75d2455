"""The Dagster UI of `pipeline-platform ui`, seen and driven through a real browser.

One `pipeline-platform ui` serves the module: the local cloud, a fleet publishing
and `dagster dev`. The browser checks the lineage shows every stage from the
device topic to the marts, then materialises the latest partition from the UI the
way a user does (no run config typed) and waits for the run to succeed.
Screenshots go to /tmp for a person to look at. How long that run takes is
measured by `python -m benchmarks dagster_ui`, not asserted here.
"""

from __future__ import annotations

import re

import psutil
import pytest
from playwright.sync_api import Browser, Page, expect

from pipeline_platform.defs import keys
from tests.support.dagster_ui import (
    RunningUi,
    materialize_all_latest,
    open_page,
    run_record,
)

pytestmark = pytest.mark.integration

SCREENSHOTS = "/tmp/dagster-ui-{name}.png"
# Every stage of the lineage, as the UI spells asset keys.
PIPELINE_STAGES = {
    " / ".join(key.path)
    for key in (
        keys.IOT_TOPIC,
        keys.KINESIS_STREAM,
        keys.STREAM_PROCESSOR,
        keys.DYNAMODB_TABLE,
        keys.S3_QUARANTINE,
        keys.DYNAMODB_EXPORT,
        keys.LAKE_READINGS,
        keys.LAKE_QUARANTINE,
        keys.GLUE_READINGS,
        keys.GLUE_QUARANTINE,
        keys.RAW_READINGS,
        keys.RAW_QUARANTINE,
    )
}
DBT_MODELS = {
    "stg_iot__sensor_readings",
    "stg_iot__quarantined_records",
    "fct_device_hourly",
    "fct_alerts",
    "dim_devices",
    "device_health_daily",
}
GROUPS = ("streaming", "lake", "catalog", "warehouse", "dbt_staging", "dbt_marts")
RUN_TIMEOUT_MS = 300_000


def _latest_partition() -> str:
    """The newest partition of the batch assets, as the code location defines them."""
    from pipeline_platform.definitions import build_definitions

    graph = build_definitions().resolve_asset_graph()
    partitions = graph.get(keys.RAW_READINGS).partitions_def
    assert partitions is not None
    latest = partitions.get_last_partition_key()
    assert latest is not None
    return latest


def _sidebar_row(page: Page, title: str):
    return page.locator("[data-index]").filter(has=page.locator(f'[title="{title}"]'))


def test_lineage_shows_every_stage(browser: Browser, running_ui: RunningUi) -> None:
    """GIVEN the UI over the local cloud
    WHEN a user opens the global asset lineage and expands every group
    THEN the graph holds every stage, device topic to dbt marts, under its full key."""
    page = open_page(browser, f"{running_ui.url}/asset-groups")
    expect(page.get_by_role("button", name=re.compile(r"Materialize all"))).to_be_visible()
    page.keyboard.press("Alt+e")  # the graph's shortcut for "Expand all groups"
    for group in GROUPS:
        _sidebar_row(page, group).locator("button").first.click()
    # The expanded groups list their assets by their last key part.
    for label in sorted({stage.rsplit(" / ", 1)[-1] for stage in PIPELINE_STAGES} | DBT_MODELS):
        expect(_sidebar_row(page, label).first).to_be_visible()
    page.screenshot(path=SCREENSHOTS.format(name="lineage"))

    # Selecting an asset in the sidebar titles the details panel with its whole key.
    title = page.locator("h3[class*=sidebarTitle]")
    shown = set()
    rows = page.locator("[data-index]")
    for i in range(rows.count()):
        row = rows.nth(i)
        # A row's label comes last: before it, an asset being materialised or observed
        # (the schedules run every 15 minutes) shows a spinner titled "Loading…".
        name = row.locator("[title]").last.get_attribute("title")
        if name is None or name in GROUPS:
            continue
        row.click()
        expect(title).to_have_text(re.compile(rf"(^| / ){re.escape(name)}$"))
        shown.add(title.inner_text())
    page.screenshot(path=SCREENSHOTS.format(name="asset-details"))
    page.close()

    assert shown >= PIPELINE_STAGES, f"missing from the lineage: {PIPELINE_STAGES - shown}"
    models = {key.rsplit(" / ", 1)[-1] for key in shown}
    assert models >= DBT_MODELS, f"dbt models missing: {DBT_MODELS - models}"


def test_materialize_all_latest_from_the_ui_succeeds(
    browser: Browser, running_ui: RunningUi
) -> None:
    """GIVEN the UI, with the fleet publishing readings
    WHEN a user clicks "Materialize all", picks the latest partition and launches,
    typing no run config
    THEN one run of that partition starts, every step runs in the run's own process,
    and the UI shows the run succeeded."""
    before = _latest_partition()
    page = open_page(browser, running_ui.url)

    launched = materialize_all_latest(page, running_ui.url, RUN_TIMEOUT_MS)

    page.screenshot(path=SCREENSHOTS.format(name="run"))
    page.close()
    assert launched.status == "Success", f"the run ended {launched.status}:\n" + (
        running_ui.log_tail()
    )
    run = run_record(running_ui.url, launched.run_id)
    assert run["tags"].get("dagster/partition") in {before, _latest_partition()}, run["tags"]
    assert any(m.startswith("Executing steps in process") for m in run["messages"]), [
        m for m in run["messages"] if m.startswith("Executing steps")
    ]


def test_sigterm_stops_every_process(running_ui: RunningUi) -> None:
    """GIVEN `pipeline-platform ui` running its services and `dagster dev` children
    WHEN it gets SIGTERM (as from a service manager, or Ctrl-C)
    THEN it exits 0 and leaves no process of its own behind."""
    descendants = psutil.Process(running_ui.process.pid).children(recursive=True)
    assert any("dagster" in " ".join(p.cmdline()) for p in descendants), "no dagster dev child"

    code = running_ui.stop()

    assert code == 0, running_ui.log_tail()
    _, alive = psutil.wait_procs(descendants, timeout=10)
    assert not alive, f"left running: {[' '.join(p.cmdline()) for p in alive]}"
