"""One JSON line per batch: a structured log entry that is also CloudWatch EMF.

Embedded Metric Format is plain JSON on stdout with an `_aws` envelope naming
the metrics; CloudWatch extracts them from the log, so no client library and no
PutMetricData call is needed. The other keys stay searchable log fields.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping

NAMESPACE = "IotDataPlatform/StreamProcessor"
#: Readings written to the table; the batch side's observation of the table reads it.
STORED_METRIC = "stored"
#: Batch counters published as metrics (the log line carries them too).
COUNT_METRICS = ("records", STORED_METRIC, "quarantined", "failed", "duplicates")


def batch_log_line(
    counts: Mapping[str, int],
    duration_ms: float,
    shard_id: str | None,
    function_name: str | None,
    extra: Mapping[str, object] | None = None,
) -> str:
    """Render the batch summary: counts, duration and shard, with EMF metric metadata."""
    dimensions = [["FunctionName"]] if function_name else [[]]
    metrics = [{"Name": name, "Unit": "Count"} for name in COUNT_METRICS]
    metrics.append({"Name": "duration_ms", "Unit": "Milliseconds"})
    document = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {"Namespace": NAMESPACE, "Dimensions": dimensions, "Metrics": metrics}
            ],
        },
        "level": "ERROR" if counts.get("failed") else "INFO",
        "message": "kinesis batch processed",
        "shard_id": shard_id,
        **{name: counts.get(name, 0) for name in COUNT_METRICS},
        "duration_ms": round(duration_ms, 3),
        **(extra or {}),
    }
    if function_name:
        document["FunctionName"] = function_name
    return json.dumps(document, default=str)


def emit(line: str) -> None:
    """Write one log line to stdout, where Lambda ships it to CloudWatch Logs."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
