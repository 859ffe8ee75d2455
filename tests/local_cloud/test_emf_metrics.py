"""EMF extraction: the metrics CloudWatch would read from the stream processor's log lines."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from local_cloud.emf_metrics import metric_data
from stream_processor import telemetry

COUNTS = {"records": 10, "stored": 7, "quarantined": 2, "failed": 1, "duplicates": 0}


def test_a_batch_line_defines_each_counter_and_duration_under_the_function_dimension():
    """GIVEN the stream processor's batch line WHEN extracted THEN one entry per counter and
    the duration, in its namespace, dimensioned by function, at the line's timestamp."""
    line = telemetry.batch_log_line(COUNTS, 12.5, "shardId-000000000000", "fn-1")
    ((namespace, entries),) = metric_data(line)
    assert namespace == telemetry.NAMESPACE
    values = {e["MetricName"]: (e["Value"], e["Unit"]) for e in entries}
    assert values == {
        **{name: (float(COUNTS[name]), "Count") for name in telemetry.COUNT_METRICS},
        "duration_ms": (12.5, "Milliseconds"),
    }
    assert all(e["Dimensions"] == [{"Name": "FunctionName", "Value": "fn-1"}] for e in entries)
    stamp = json.loads(line)["_aws"]["Timestamp"]
    assert entries[0]["Timestamp"] == datetime.fromtimestamp(stamp / 1000, tz=UTC)


def test_lines_without_an_envelope_or_a_dimension_value_define_nothing():
    """GIVEN plain text, JSON without `_aws`, and an envelope naming a dimension the line lacks
    THEN no metrics (CloudWatch would reject or ignore them too)."""
    without_function = json.loads(telemetry.batch_log_line(COUNTS, 1.0, None, "fn-1"))
    del without_function["FunctionName"]
    assert metric_data("kinesis batch processed") == []
    assert metric_data(json.dumps({"message": "hello"})) == []
    assert metric_data(json.dumps(without_function)) == []
