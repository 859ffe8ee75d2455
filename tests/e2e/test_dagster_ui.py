"""The Dagster UI of `pipeline-platform ui`, seen and driven through a real browser.

One `pipeline-platform ui` serves the module: the local cloud, a fleet publishing
and `dagster dev`. The browser checks the lineage shows every stage from the
device topic to the marts, then materialises today's partition from the UI and
waits for the run to succeed. Screenshots go to /tmp for a person to look at.
"""

from __future__ import annotations

import datetime as dt
import re

import psutil
import pytest
from playwright.sync_api import Browser, Page, expect

from pipeline_platform.defs import keys
from tests.e2e.conftest import RunningUi

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
RUN_TIMEOUT_MS = 240_000
IN_PROCESS_CONFIG = "execution: {config: {in_process: {}}}"


def _open(browser: Browser, url: str) -> Page:
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.set_default_timeout(30_000)
    # A fresh instance greets the first visit with a newsletter dialog; skip it if it shows.
    page.add_locator_handler(
        page.get_by_role("button", name="Skip", exact=True), lambda skip: skip.click()
    )
    page.goto(url, wait_until="domcontentloaded")
    return page


def _sidebar_row(page: Page, title: str):
    return page.locator("[data-index]").filter(has=page.locator(f'[title="{title}"]'))


def test_lineage_shows_every_stage(browser: Browser, running_ui: RunningUi) -> None:
    """GIVEN the UI over the local cloud
    WHEN a user opens the global asset lineage and expands every group
    THEN the graph holds every stage, device topic to dbt marts, under its full key."""
    page = _open(browser, f"{running_ui.url}/asset-groups")
    expect(page.get_by_role("button", name=re.compile(r"Materialize all"))).to_be_visible()
    page.keyboard.press("Alt+e")  # the graph's shortcut for "Expand all groups"
    for group in GROUPS:
        _sidebar_row(page, group).locator("button").first.click()
    page.screenshot(path=SCREENSHOTS.format(name="lineage"))

    # The sidebar lists the graph's assets by their last key part; selecting one
    # titles the details panel with the whole key.
    title = page.locator("h3[class*=sidebarTitle]")
    shown = set()
    rows = page.locator("[data-index]")
    for i in range(rows.count()):
        row = rows.nth(i)
        name = row.locator("[title]").first.get_attribute("title")
        if name in GROUPS:
            continue
        row.click()
        expect(title).to_have_text(re.compile(rf"(^| / ){re.escape(name)}$"))
        shown.add(title.inner_text())
    page.screenshot(path=SCREENSHOTS.format(name="asset-details"))
    page.close()

    assert shown >= PIPELINE_STAGES, f"missing from the lineage: {PIPELINE_STAGES - shown}"
    models = {key.rsplit(" / ", 1)[-1] for key in shown}
    assert models >= DBT_MODELS, f"dbt models missing: {DBT_MODELS - models}"


def test_materialize_today_from_the_ui_succeeds(browser: Browser, running_ui: RunningUi) -> None:
    """GIVEN the UI, with the fleet publishing readings stamped today
    WHEN a user clicks "Materialize all", picks the latest partition and launches
    THEN one run for today's partition starts and the UI shows it succeeded."""
    today = dt.datetime.now(dt.UTC).date().isoformat()
    page = _open(browser, f"{running_ui.url}/asset-groups")
    page.get_by_role("button", name=re.compile(r"Materialize all")).click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Latest", exact=True).click()
    expect(dialog).to_contain_text("1 partition")
    # Steps run in the run's own process: a subprocess per step would load the code
    # location again for each of the seven steps, minutes on a busy two-core runner.
    dialog.get_by_text("Config", exact=True).click()
    dialog.get_by_text("Add config").click()
    editor = page.get_by_role("dialog").filter(has_text="Config Editor")
    editor.locator(".CodeMirror").first.click()
    page.keyboard.insert_text(IN_PROCESS_CONFIG)
    expect(editor).to_contain_text("No errors")
    editor.get_by_role("button", name="Save config").click()
    dialog.get_by_role("button", name="Launch 1 run").click()
    page.get_by_text("Launched run").wait_for()
    page.get_by_role("link", name="View").or_(page.get_by_role("button", name="View")).first.click()
    page.wait_for_url(re.compile(r"/runs/[0-9a-f-]+"))
    expect(page.get_by_text(f"partition: {today}").first).to_be_visible()

    status = page.get_by_text(re.compile(r"^(Success|Failure|Canceled)$")).first
    status.wait_for(timeout=RUN_TIMEOUT_MS)
    page.screenshot(path=SCREENSHOTS.format(name="run"))
    assert status.inner_text() == "Success", f"the run ended {status.inner_text()}:\n" + (
        running_ui.log_tail()
    )
    page.close()


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
