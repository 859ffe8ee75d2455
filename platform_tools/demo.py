"""`make demo`: the whole platform, end to end, on the embedded local cloud.

1. start the local cloud and deploy the stacks from their templates;
2. publish the seed's test payloads through the IoT Data API and run a
   simulated fleet over MQTT (anomalies and malformed payloads included), one device
   of which falls silent on purpose, and comes back once announced silent;
3. wait until the stream is drained; the alert topic's notifications (raised, cleared,
   silent, back) are collected meanwhile by a subscribed queue;
4. materialise the batch side through Dagster, once: the first run on an empty lake
   is one full export, merged into the lake by reading day (export, lake, crawl,
   warehouse, dbt);
5. print counts at every stage and check that they reconcile, with the alerts,
   hourly metrics and device health from the marts, and the alert notifications;
6. write an HTML report with charts;
7. exit non-zero when anything does not reconcile.

The demo listens on the local cloud's usual ports when they are free, and on free
ones otherwise: it keeps its own state and stops everything when it ends, so it
runs beside a `pipeline-platform up` or `ui` the user left running. Ctrl-C or
SIGTERM, in any phase, stops it within seconds (status 130).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import duckdb

from cloudformation.naming import DEFAULT_ENV, STREAMING_STACK
from cloudformation.outputs import StreamingOutput
from local_cloud import defaults
from local_cloud.cloud import Endpoints, LocalCloud
from local_cloud.ports import free_port, port_is_free
from pipeline_platform.env_override import overridden
from platform_tools import device_simulator
from platform_tools.alerts import AlertInbox
from platform_tools.stopping import (
    INTERRUPTED_EXIT,
    TOOL_STOP_GRACE_SECONDS,
    SignalStop,
    StopRequested,
    stop_on_signals,
)
from stream_processor import contract

#: The payloads of the original project's "Testing" section, in its order.
SEED_PAYLOADS: tuple[tuple[str, bytes], ...] = (
    (
        "normal",
        b'{"device_id": "sensor-101", "timestamp": 1700100000, "temperature": 22, "humidity": 55}',
    ),
    (
        "high temperature",
        b'{"device_id": "sensor-102", "timestamp": 1700100500, "temperature": 75, "humidity": 40}',
    ),
    (
        "low humidity",
        b'{"device_id": "sensor-103", "timestamp": 1700101000, "temperature": 21, "humidity": 10}',
    ),
    (
        "missing humidity",
        b'{"device_id": "sensor-104", "timestamp": 1700101500, "temperature": 30}',
    ),
    ("invalid JSON", b"Invalid JSON Data"),
    (
        "150 C",
        b'{"device_id": "sensor-105", "timestamp": 1700103000, "temperature": 150, "humidity": 30}',
    ),
    (
        "negative values",
        b'{"device_id": "sensor-106", "timestamp": 1700103500, "temperature": -10, "humidity": -5}',
    ),
    (
        "extra pressure",
        b'{"device_id": "sensor-107", "timestamp": 1700104000, '
        b'"temperature": 25, "humidity": 65, "pressure": 1012}',
    ),
)
#: The demo keeps its state apart from `up` and `ui`, so it never touches their table or warehouse.
DEMO_STATE_DIR = defaults.STATE_DIR / "demo"
#: How long the demo's fleet publishes; its readings carry a day of timestamps.
_FLEET_SECONDS = 5.0
#: The demo's silence window and how often its silence check runs: short enough to see a
#: device fall silent while the rest of the fleet publishes (a deployment's default is 15
#: minutes, checked every minute).
DEMO_SILENCE_WINDOW_S = 3
_SILENCE_CHECK_EVERY_S = 1.0
#: When in the fleet's run the device the demo silences on purpose stops sending.
_SILENCED_AFTER_S = 1.0


def silenced_device(devices: int) -> str:
    """The fleet device the demo silences on purpose: the seventh, or the last of a smaller
    fleet."""
    return device_simulator.device_id(min(7, devices))


def _port(preferred: int) -> int:
    """The preferred port when it is free (a running `up` may hold it), else any free one."""
    return preferred if port_is_free(preferred) else free_port()


@dataclass
class StageCounts:
    """How many readings each stage saw; `problems` lists what does not reconcile."""

    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def expect(self, label: str, left: int, right: int, what: str) -> None:
        """Record a reconciliation: `left` must equal `right`."""
        if left != right:
            self.problems.append(f"{label}: {left} != {right} ({what})")


def _count_lines(s3: Any, bucket: str, prefix: str) -> tuple[int, int]:
    """(objects, JSON lines) under a prefix."""
    objects = lines = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            objects += 1
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            lines += sum(1 for line in body.splitlines() if line.strip())
    return objects, lines


def publish_traffic(
    endpoints: Endpoints,
    devices: int,
    readings: int,
    mute_after: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Publish the seed payloads (IoT Data API) and a fleet (MQTT), `mute_after` silencing
    devices part way (see `device_simulator.simulate`); return what was sent."""
    for label, payload in SEED_PAYLOADS:
        device_simulator.publish_via_iot_data(
            defaults.TOPIC, payload, endpoint_url=endpoints.aws, region=endpoints.region
        )
        print(f"    seed payload published: {label}")
    # The fleet's readings are spread over the last 24 hours so the hourly marts
    # and charts have a day of history; they are published as fast as a fleet of
    # this size would in a busy minute.
    span = 24 * 3600
    start = time.time() - span
    sent = iter(range(readings))

    def clock() -> float:
        return start + next(sent) * span / readings

    fleet = device_simulator.simulate(
        devices=devices,
        rate=readings / _FLEET_SECONDS,
        duration=_FLEET_SECONDS,
        malformed_share=0.03,
        host=endpoints.mqtt_host,
        port=endpoints.mqtt_port,
        seed=7,
        clock=clock,
        mute_after=mute_after,
    )
    return {"seed": len(SEED_PAYLOADS), "fleet": fleet, "fleet_since": start, "returned": 0}


def bring_back(cloud: LocalCloud, inbox: AlertInbox, device_id: str) -> int:
    """Once `device_id` is announced silent, send one reading from it (it comes back) and
    wait for its DEVICE_BACK; return the readings sent (0 if it was never announced)."""
    endpoints = cloud.endpoints
    assert endpoints is not None
    if not inbox.wait_for(device_id, contract.DEVICE_SILENT, timeout=30):
        return 0
    reading = {
        contract.DEVICE_ID: device_id,
        contract.TIMESTAMP: int(time.time()),
        contract.TEMPERATURE: 21.5,
        contract.HUMIDITY: 50,
    }
    device_simulator.publish(
        defaults.TOPIC,
        json.dumps(reading).encode(),
        host=endpoints.mqtt_host,
        port=endpoints.mqtt_port,
    )
    cloud.wait_until_drained(timeout=60)
    inbox.wait_for(device_id, contract.DEVICE_BACK, timeout=30)
    return 1


def print_notifications(notifications: list[dict[str, Any]], silenced: str) -> None:
    """The alert topic's notifications the demo received: counts, and a few as a person
    reads them (the earliest raise and clear by reading time, and the device silenced on
    purpose)."""
    # Events of different devices arrive in no set order (each device's own are in order),
    # so the examples are picked by reading time, then device, not by arrival.
    alerts = sorted(
        (n[contract.NOTIFICATION_ALERT] for n in notifications),
        key=lambda a: (
            a["since_timestamp"] if a["reading_timestamp"] is None else a["reading_timestamp"],
            a["device_id"],
            a["code"],
        ),
    )
    print("\nAlert notifications (the alert topic, as a subscribed queue received them):")
    for state in contract.ALERT_STATES:
        print(f"  {state:<14} {sum(1 for a in alerts if a['state'] == state):>5}")
    print(
        f"  ({silenced} fell silent on purpose; the seed's devices, which send once, and the "
        "fleet's, once it stopped, fall silent too)"
    )
    wanted: list[tuple[str | None, str]] = [(None, contract.RAISED), (None, contract.CLEARED)]
    wanted += [(silenced, contract.DEVICE_SILENT), (silenced, contract.DEVICE_BACK)]
    for device, state in wanted:
        first = next(
            (a for a in alerts if a["state"] == state and device in (None, a["device_id"])), None
        )
        if first is not None:
            print(f"  {first['message']}")


def reconcile(cloud: LocalCloud, traffic: dict[str, Any], batch: dict[str, Any]) -> StageCounts:
    """Count every stage and check that the counts add up.

    The batch run's own asset checks (export = lake = warehouse, lake days =
    warehouse days) must all pass; the counts here also follow each message from
    publishing to the warehouse: stored + quarantined + rule errors = published.
    """
    endpoints = cloud.endpoints
    assert endpoints is not None
    streaming = endpoints.outputs[STREAMING_STACK]
    s3 = boto3.client("s3", endpoint_url=endpoints.aws, region_name=endpoints.region)
    ddb = boto3.client("dynamodb", endpoint_url=endpoints.aws, region_name=endpoints.region)
    bucket = streaming[StreamingOutput.QUARANTINE_BUCKET_NAME]
    stats = cloud.rule_stats()
    published = traffic["seed"] + traffic["fleet"].published + traffic["returned"]
    _, quarantined = _count_lines(s3, bucket, streaming[StreamingOutput.QUARANTINE_PREFIX])
    rule_errors, _ = _count_lines(s3, bucket, streaming[StreamingOutput.RULE_ERRORS_PREFIX])
    stored = sum(
        page["Count"]
        for page in ddb.get_paginator("scan").paginate(
            TableName=streaming[StreamingOutput.TABLE_NAME], Select="COUNT"
        )
    )
    with duckdb.connect(str(endpoints.warehouse), read_only=True) as con:

        def count(sql: str) -> int:
            found = con.execute(sql).fetchone()
            return int(found[0]) if found else 0

        warehouse = count("select count(*) from raw.sensor_readings")
        warehouse_quarantine = count("select count(*) from raw.quarantined_records")
        warehouse_rule_errors = count("select count(*) from raw.rule_errors")
        not_stored = count("select count(*) from staging.stg_iot__quarantined_records")
    assets = batch["assets"]

    def counted(key: str, name: str) -> int:
        return int(assets.get(key, {}).get("counts", {}).get(name, 0))

    result = StageCounts(
        {
            "published": published,
            "acknowledged by the broker (fleet)": traffic["fleet"].acknowledged,
            "into Kinesis (rule delivered)": stats["delivered"],
            "rule errors (error action, S3 errors/)": rule_errors,
            "stored in DynamoDB": stored,
            "quarantined by the function (S3 quarantine/)": quarantined,
            "exported from DynamoDB": counted("s3/dynamodb_export", "items_exported"),
            "merged into the lake (readings)": counted(
                "s3/lake/sensor_readings", "changes_applied"
            ),
            "merged into the lake (quarantined)": counted(
                "s3/lake/quarantined_records", "changes_applied"
            ),
            "merged into the lake (rule errors)": counted("s3/lake/rule_errors", "changes_applied"),
            "in the warehouse (raw.sensor_readings)": warehouse,
            "in the warehouse (raw.quarantined_records)": warehouse_quarantine,
            "in the warehouse (raw.rule_errors)": warehouse_rule_errors,
            "not stored, as dbt staging sees them": not_stored,
        }
    )
    c = result.counts
    result.expect(
        "broker",
        traffic["fleet"].acknowledged,
        traffic["fleet"].published,
        "every fleet message acknowledged",
    )
    result.expect(
        "rules",
        c["into Kinesis (rule delivered)"] + rule_errors,
        published,
        "every message went to Kinesis or to the error action",
    )
    result.expect(
        "function",
        stored + quarantined,
        stats["delivered"],
        "every Kinesis record stored or quarantined",
    )
    result.expect("export", c["exported from DynamoDB"], stored, "the export holds every item")
    result.expect(
        "lake", c["merged into the lake (readings)"], stored, "the lake holds every reading"
    )
    result.expect(
        "lake quarantine",
        c["merged into the lake (quarantined)"],
        quarantined,
        "the lake holds every quarantined record",
    )
    result.expect(
        "lake rule errors",
        c["merged into the lake (rule errors)"],
        rule_errors,
        "the lake holds every rule error",
    )
    result.expect("warehouse", warehouse, stored, "the warehouse holds every reading")
    result.expect(
        "warehouse quarantine",
        warehouse_quarantine,
        quarantined,
        "the warehouse holds every quarantined record",
    )
    result.expect(
        "warehouse rule errors",
        warehouse_rule_errors,
        rule_errors,
        "the warehouse holds every rule error",
    )
    result.expect(
        "every message",
        warehouse + not_stored,
        published,
        "stored + quarantined + rule errors in the warehouse = published",
    )
    failed = sorted(name for name, passed in batch["checks"].items() if not passed)
    if failed:
        result.problems.append(f"asset checks failed: {', '.join(failed)}")
    return result


def print_marts(warehouse: Path) -> None:
    """Alerts, a sample of hourly metrics and device health from the dbt marts."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        print("\nAlerts raised (analytics.fct_alerts):")
        print(
            con.sql(
                "select alert_code, count(*) as alerts from analytics.fct_alerts "
                "group by 1 order by 1"
            )
        )
        print("Hourly metrics, a sample (analytics.fct_device_hourly):")
        print(
            con.sql(
                "select device_id, reading_hour, reading_count, valid_reading_count, "
                "round(avg_temperature, 1) as avg_temperature, "
                "round(avg_humidity, 1) as avg_humidity, "
                "high_temperature_alert_count as high_temp_alerts, "
                "low_humidity_alert_count as low_humidity_alerts "
                "from analytics.fct_device_hourly "
                "order by reading_count desc, reading_hour desc, device_id limit 8"
            )
        )
        print("Device health (analytics.dim_devices):")
        print(
            con.sql(
                "select health_status, count(*) as devices from analytics.dim_devices "
                "group by 1 order by 1"
            )
        )


def run_demo(
    devices: int = 25,
    readings: int = 3000,
    state_dir: str | Path | None = None,
    env: str = DEFAULT_ENV,
) -> int:
    """Run the demo in `state_dir` (default `DEMO_STATE_DIR`); 0 when every stage reconciles,
    1 otherwise, 130 when Ctrl-C or SIGTERM stopped it (its local cloud stopped first)."""
    with stop_on_signals(grace=TOOL_STOP_GRACE_SECONDS) as signals:
        try:
            return _run_demo(devices, readings, state_dir, env, signals)
        except StopRequested as interrupted:
            print(f"stopped: {interrupted} received", flush=True)
            return INTERRUPTED_EXIT


def _import_batch_side() -> None:
    """Import what the batch phase and the report use: Dagster, the code location, dbt and
    matplotlib (about 4 s on 2 cores). Run in a thread while the local cloud starts, whose
    work happens in its own process while this one mostly waits."""
    from pipeline_platform import definitions  # noqa: F401
    from pipeline_platform.resources.dbt import dbt_resource
    from pipeline_platform.resources.dbt_in_process import preload
    from platform_tools import batch_runs, demo_report  # noqa: F401

    preload(dbt_resource("local").adapter_type)


def _start_importing_batch_side() -> threading.Thread:
    importing = threading.Thread(target=_import_batch_side, name="demo-imports", daemon=True)
    importing.start()
    return importing


def _run_demo(
    devices: int, readings: int, state_dir: str | Path | None, env: str, signals: SignalStop
) -> int:
    importing = _start_importing_batch_side()
    state = Path(state_dir or DEMO_STATE_DIR).resolve()
    shutil.rmtree(state, ignore_errors=True)  # a demo always starts from nothing
    cloud = LocalCloud(
        state_dir=state,
        aws_port=_port(defaults.AWS_PORT),
        mqtt_port=_port(defaults.MQTT_PORT),
        env=env,
        # The next demo starts from nothing, so nothing of this one is saved for it.
        persist=False,
        stack_parameters={STREAMING_STACK: {"SilenceWindowSeconds": str(DEMO_SILENCE_WINDOW_S)}},
        schedule_every=_SILENCE_CHECK_EVERY_S,
    )
    inbox: AlertInbox | None = None
    batch_log = state / "batch.log"
    started = time.monotonic()

    def step(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {message}", flush=True)

    try:
        endpoints = cloud.start(log_progress=step)
        step(
            f"local cloud up: AWS {endpoints.aws}, MQTT {endpoints.mqtt_host}:{endpoints.mqtt_port}"
        )
        inbox = AlertInbox(
            boto3.Session(region_name=endpoints.region), cloud.naming, endpoints.aws
        ).start()
        silenced = silenced_device(devices)
        step(
            f"publishing the seed payloads and {readings} readings from {devices} devices "
            f"({silenced} falls silent after {_SILENCED_AFTER_S:g} s)"
        )
        traffic = publish_traffic(
            endpoints, devices, readings, mute_after={silenced: _SILENCED_AFTER_S}
        )
        if traffic["fleet"].interrupted:
            raise StopRequested(signals.signum or signal.SIGINT)
        step("waiting for the stream to drain")
        cloud.wait_until_drained(timeout=120)
        step(f"{silenced}: once announced silent, it sends a reading again")
        traffic["returned"] = bring_back(cloud, inbox, silenced)
        # Collected up to here: once the fleet stopped, every device falls silent too.
        inbox.stop()
        importing.join()
        import dagster as dg

        from platform_tools.batch_runs import RunFailed, RunInterrupted, describe, materialize
        from platform_tools.demo_report import write_report

        step(
            "materialising the batch side with Dagster, one catch-up run (export, lake, crawl, "
            "warehouse, dbt)"
        )
        pipeline_environ = {
            "PLATFORM_ENV": "local",
            "DEPLOYMENT_ENV": env,
            "AWS_ENDPOINT_URL": endpoints.aws,
            "WAREHOUSE_PATH": str(endpoints.warehouse),
        }
        # dbt's and Dagster's own output (what the UI shows as a run's logs) goes to a file;
        # the console keeps the demo's steps and results.
        try:
            with (
                overridden(pipeline_environ),
                batch_log.open("w", encoding="utf-8") as log,
                contextlib.redirect_stdout(log),
                contextlib.redirect_stderr(log),
            ):
                # The run's records stay in memory: the demo starts from nothing every time,
                # and Dagster's SQLite storage on disk costs about 4 s of the run's events
                # on 2 cores (a new database engine per event). Where the lake stopped is
                # the lake's own state, in S3, either way.
                batch = materialize(log_level="WARNING", instance=dg.DagsterInstance.ephemeral())
        except RunInterrupted:
            raise StopRequested(signals.signum or signal.SIGINT) from None
        except RunFailed:
            step(f"the batch run failed; dbt's and Dagster's output is in {batch_log}")
            raise
        step("reconciling")
        result = reconcile(cloud, traffic, batch)
    finally:
        signals.stopping()
        if inbox is not None:
            inbox.stop()
        cloud.stop()

    print("\nBatch run:")
    print(describe(batch))
    print("\nBatch side, per asset:")
    for key, entry in sorted(batch["assets"].items()):
        rows = "" if entry.get("rows") is None else f"{entry['rows']:>7} rows"
        print(f"  {key:<45} {rows:>12}  {entry.get('seconds', 0):6.1f}s")
    width = max(len(k) for k in result.counts)
    print("\nCounts at every stage:")
    for label, count in result.counts.items():
        print(f"  {label.ljust(width)}  {count:>7}")
    print(f"  fleet by kind: {json.dumps(dict(sorted(traffic['fleet'].by_kind.items())))}")
    print_marts(endpoints.warehouse)
    assert inbox is not None
    print_notifications(inbox.received(), silenced_device(devices))
    report = write_report(endpoints.warehouse, state / "report.html", result.counts)
    print(f"\nHTML report: {report}")
    print(f"Warehouse:   {endpoints.warehouse} (duckdb {endpoints.warehouse})")
    print(f"Logs:        {batch_log} (dbt, Dagster), {endpoints.function_logs}/ (functions)")
    print("Next: `pipeline-platform up` keeps the local cloud running; `make ui` opens Dagster.")
    step("done")
    if result.problems:
        print("\nDOES NOT RECONCILE:")
        for problem in result.problems:
            print(f"  - {problem}")
        return 1
    print("\nEvery stage reconciles.")
    return 0
