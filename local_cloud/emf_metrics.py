"""CloudWatch's Embedded Metric Format, extracted locally as CloudWatch Logs does in AWS.

A function that writes an EMF line (JSON with an `_aws.CloudWatchMetrics`
envelope) to stdout gets metrics without calling CloudWatch: the log service
reads them from the line. The local cloud does the same for its functions'
output, putting the metrics into the emulator's CloudWatch, so whatever reads
those metrics (the table observation, a dashboard) works the same locally.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger(__name__)

# PutMetricData takes at most this many values per request.
_MAX_PER_REQUEST = 1000


def metric_data(line: str) -> list[tuple[str, list[dict[str, Any]]]]:
    """The metrics an EMF log line defines, as (namespace, PutMetricData entries); [] otherwise.

    Each metric is put once per dimension set, with the dimension values taken from
    the line's own keys, as CloudWatch does; a dimension set naming a key the line
    lacks is skipped, and so is a metric whose value is not a number.
    """
    try:
        document = json.loads(line)
    except ValueError:
        return []
    envelope = document.get("_aws") if isinstance(document, dict) else None
    if not isinstance(envelope, dict) or "Timestamp" not in envelope:
        return []
    timestamp = datetime.fromtimestamp(envelope["Timestamp"] / 1000, tz=UTC)
    found = []
    for directive in envelope.get("CloudWatchMetrics") or []:
        entries = []
        for dimension_set in directive.get("Dimensions") or [[]]:
            if any(name not in document for name in dimension_set):
                continue
            dimensions = [{"Name": n, "Value": str(document[n])} for n in dimension_set]
            for metric in directive.get("Metrics") or []:
                value = document.get(metric["Name"])
                if isinstance(value, bool) or not isinstance(value, int | float):
                    continue
                entries.append(
                    {
                        "MetricName": metric["Name"],
                        "Dimensions": dimensions,
                        "Value": float(value),
                        "Unit": metric.get("Unit", "None"),
                        "Timestamp": timestamp,
                    }
                )
        if entries:
            found.append((directive["Namespace"], entries))
    return found


class EmfPublisher:
    """Puts the metrics of EMF log lines into the emulator's CloudWatch."""

    def __init__(self, cloudwatch: Any) -> None:
        self._client = cloudwatch

    def publish(self, lines: Iterable[str]) -> None:
        """Extract and put the metrics of `lines`; a failure is logged, never raised, since
        losing a metric must not fail the function that wrote it."""
        for line in lines:
            for namespace, entries in metric_data(line):
                for start in range(0, len(entries), _MAX_PER_REQUEST):
                    chunk = entries[start : start + _MAX_PER_REQUEST]
                    try:
                        self._client.put_metric_data(Namespace=namespace, MetricData=chunk)
                    except (BotoCoreError, ClientError) as error:
                        log.warning("could not put %d %s metrics: %s", len(chunk), namespace, error)
