"""A batch run launched from the Dagster UI as a user launches it: click to success.

Starts `pipeline-platform ui` on free ports (its own fleet publishing, as `make ui` does),
publishes a day of a 20-device fleet over MQTT (one reading per device every 5 minutes,
stamped between midnight UTC and now; the lake is empty, so the run's first export takes the
whole table whatever write window is picked), waits until
the table holds all of it, then in Debian's Chromium clicks "Materialize all", the latest
partition and the launch button, with no run config, and waits for the run page to say
the run ended. The same flow as the browser test (`tests/support/dagster_ui.py`).

Printed per run: click to success (what the user waits), and from Dagster's own records
the run's queue and launch time (created -> started) and its execution (started -> ended),
each step's time, and whether its steps ran in the run's own process. Settings (environment):
`BENCH_UI_RUNS` (default 3). Goal: a day of a 20-device fleet in at most 30 s on a
2-core machine. Run alone with `.venv/bin/python -m benchmarks dagster_ui`.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import boto3
from playwright.sync_api import sync_playwright

from cloudformation.naming import Naming
from local_cloud import defaults
from platform_tools import device_simulator
from platform_tools.device_simulator import MALFORMED
from stream_processor import contract
from tests.support.dagster_ui import (
    RunningUi,
    launch_chromium,
    materialize_all_latest,
    open_page,
    run_record,
    start_ui,
)

DEVICES = 20
#: One reading per device every five minutes, for a day.
READINGS = DEVICES * 24 * 12
PUBLISH_RATE = 400.0
MALFORMED_SHARE = 0.02
STORED_TIMEOUT_S = 180.0
RUN_TIMEOUT_MS = 600_000
GOAL_S = 30.0


def _client(ui: RunningUi):
    return boto3.client(
        "dynamodb",
        endpoint_url=ui.aws_endpoint,
        region_name=defaults.REGION,
        aws_access_key_id=defaults.CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=defaults.CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def publish_a_day(ui: RunningUi) -> tuple[int, float]:
    """Publish a day of the fleet, stamped from midnight UTC until a minute ago; return how
    many readings the table must hold and the cut-off (every bench reading is before it)."""
    now = time.time()
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    cutoff = now - 60.0
    first = min(midnight, cutoff - 3600.0)  # just after midnight, still an hour of readings
    sent = iter(range(READINGS))

    def clock() -> float:
        return first + next(sent) * (cutoff - first) / READINGS

    summary = device_simulator.simulate(
        devices=DEVICES,
        rate=PUBLISH_RATE,
        duration=READINGS / PUBLISH_RATE,
        malformed_share=MALFORMED_SHARE,
        port=ui.mqtt_port,
        seed=11,
        progress=False,
        clock=clock,
    )
    malformed = sum(n for kind, n in summary.by_kind.items() if kind in MALFORMED)
    return summary.published - malformed, cutoff


def wait_until_stored(ui: RunningUi, expected: int, cutoff: float) -> float:
    """Seconds until the table holds `expected` readings stamped before `cutoff`."""
    client = _client(ui)
    table = Naming("dev", defaults.REGION).table
    started = time.monotonic()
    while True:
        count = sum(
            page["Count"]
            for page in client.get_paginator("scan").paginate(
                TableName=table,
                Select="COUNT",
                FilterExpression="#ts < :cut",
                ExpressionAttributeNames={"#ts": contract.TIMESTAMP},
                ExpressionAttributeValues={":cut": {"N": str(cutoff)}},
            )
        )
        if count >= expected:
            return time.monotonic() - started
        if time.monotonic() - started > STORED_TIMEOUT_S:
            raise TimeoutError(f"{count} of {expected} readings stored in {STORED_TIMEOUT_S} s")
        time.sleep(1.0)


def main() -> None:
    """Start the UI, publish a day of the fleet, and time RUNS launches from the browser."""
    runs = int(os.environ.get("BENCH_UI_RUNS", "3"))
    with tempfile.TemporaryDirectory(prefix="bench-ui-") as tmp:
        started = time.monotonic()
        ui = start_ui(Path(tmp))
        print(f"  pipeline-platform ui ready in {time.monotonic() - started:.1f} s")
        try:
            expected, cutoff = publish_a_day(ui)
            waited = wait_until_stored(ui, expected, cutoff)
            print(f"  a day of {DEVICES} devices: {expected} readings stored ({waited:.1f} s)")
            totals: list[float] = []
            with sync_playwright() as playwright:
                browser = launch_chromium(playwright)
                try:
                    page = open_page(browser, ui.url)
                    for index in range(1, runs + 1):
                        launched = materialize_all_latest(page, ui.url, RUN_TIMEOUT_MS)
                        record = run_record(ui.url, launched.run_id)
                        queued = record["startTime"] - record["creationTime"]
                        executed = record["endTime"] - record["startTime"]
                        in_process = any(
                            m.startswith("Executing steps in process") for m in record["messages"]
                        )
                        print(
                            f"  run {index}: {launched.status} {launched.click_to_end_s:6.1f} s "
                            f"click to end (created -> started {queued:5.1f} s, "
                            f"started -> ended {executed:5.1f} s; steps "
                            f"{'in the run process' if in_process else 'in processes of their own'}"
                            f"; partition {record['tags'].get('dagster/partition', '?')})"
                        )
                        steps = sorted(
                            (s for s in record["stepStats"] if s["startTime"] and s["endTime"]),
                            key=lambda s: s["startTime"],
                        )
                        print(
                            "    steps: "
                            + ", ".join(
                                f"{s['stepKey']} {s['endTime'] - s['startTime']:.1f} s"
                                for s in steps
                            )
                        )
                        if launched.status != "Success":
                            print(ui.log_tail())
                            return
                        totals.append(launched.click_to_end_s)
                finally:
                    browser.close()
        finally:
            ui.stop()
    median = statistics.median(totals)
    verdict = "meets" if median <= GOAL_S else "misses"
    print(f"  median click to success: {median:.1f} s ({verdict} the {GOAL_S:.0f} s goal)")
