"""`make demo`, smaller: the whole platform end to end, and every stage reconciles."""

from __future__ import annotations

import base64
import json

import duckdb
import pytest

from cloudformation.naming import Naming
from platform_tools.demo import run_demo, silenced_device

pytestmark = pytest.mark.integration


def test_demo_publishes_processes_loads_and_reconciles(tmp_path, capsys, aws_endpoint):
    """GIVEN a fresh state directory
    WHEN the demo runs with a small fleet
    THEN it exits 0 after one batch run, its printed counts reconcile (every message stored,
    quarantined or kept as a rule error, and in the warehouse), the marts hold the fleet's
    devices and the seed's alerts, and the HTML report is written; the alert topic's
    notifications show alerts raised and cleared and the device silenced on purpose falling
    silent and coming back; the console keeps to the demo's steps while the function's batch
    lines and dbt's output are in their logs."""
    status = run_demo(devices=5, readings=300, state_dir=tmp_path / "demo", env="e2e")
    out = capsys.readouterr().out
    assert status == 0, out
    assert "Every stage reconciles." in out
    assert "DOES NOT RECONCILE" not in out
    warehouse = tmp_path / "demo" / "warehouse.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        devices = {
            r[0] for r in con.execute("select device_id from analytics.dim_devices").fetchall()
        }
        seed_alerts = con.execute(
            "select device_id, alert_code from analytics.fct_alerts "
            "where device_id in ('sensor-102', 'sensor-103') order by 1"
        ).fetchall()
        stored = con.execute("select count(*) from raw.sensor_readings").fetchone()[0]
        rule_errors = con.execute(
            "select payload_base64 from staging.stg_iot__quarantined_records "
            "where record_source = 'topic_rule'"
        ).fetchall()
    # 7 of the 8 seed payloads are readings with a device id; the fleet's 5 devices too.
    assert {f"sensor-10{i}" for i in range(1, 8)} <= devices
    assert len(devices) >= 7 + 5
    assert seed_alerts == [("sensor-102", "HIGH_TEMPERATURE"), ("sensor-103", "LOW_HUMIDITY")]
    # One device of five falls silent after the first of the fleet's five seconds.
    assert stored >= 7 + 300 * (1 - 4 / 5 / 5) * 0.9
    # the seed's "Invalid JSON Data" never reached the stream: the rule's error record did,
    # and the warehouse has it with its payload
    assert (base64.b64encode(b"Invalid JSON Data").decode(),) in rule_errors
    # one batch run, a catch-up: on the demo's fresh lake that is one full export
    assert out.count("write windows ") == 1 and "FULL_EXPORT" in out
    report = (tmp_path / "demo" / "report.html").read_text()
    assert report.count("data:image/png;base64,") == 4

    assert '"_aws"' not in out and "Running with dbt" not in out
    assert "Running with dbt" in (tmp_path / "demo" / "batch.log").read_text()
    silenced = silenced_device(5)
    assert "sensor-102: HIGH_TEMPERATURE raised: temperature 75 C" in out
    assert f"{silenced} is silent: no reading since" in out
    assert f"{silenced} is back: a reading arrived" in out
    notifications = out[out.index("Alert notifications") :].splitlines()
    counts = {line.split()[0]: int(line.split()[1]) for line in notifications[1:6]}
    assert counts["RAISED"] >= 2 and counts["CLEARED"] >= 1 and counts["DEVICE_BACK"] == 1
    function_log = tmp_path / "demo" / "logs" / f"{Naming('e2e').function}.log"
    batches = [json.loads(line) for line in function_log.read_text().splitlines()]
    assert batches and all(b["message"] == "kinesis batch processed" for b in batches)
    assert sum(b["stored"] for b in batches) >= stored
