"""The metric Lambda publishes for a stream event source mapping: `IteratorAge`.

For every batch a mapping sends, Lambda records the age of the batch's last record
(from its arrival in the stream to the invocation) as `AWS/Lambda` `IteratorAge`, by
`FunctionName`, in milliseconds. A growing value means the function is falling
behind its stream; the streaming stack's alarm watches its maximum, and
`pipeline-platform status` reads it. The local runner collects the ages here and puts
them into the emulator's CloudWatch as statistic sets, at most once per flush, rather
than one request per batch.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cloudformation.streaming.alarms import ITERATOR_AGE_METRIC, LAMBDA_NAMESPACE

log = logging.getLogger(__name__)


class IteratorAges:
    """Iterator ages of the batches sent since the last flush, per function."""

    def __init__(self, cloudwatch: Any) -> None:
        self._client = cloudwatch
        self._lock = threading.Lock()
        self._ages: dict[str, list[float]] = {}

    def record(self, function_name: str, age_ms: float) -> None:
        """A batch of `function_name` was sent; its last record was `age_ms` old."""
        with self._lock:
            self._ages.setdefault(function_name, []).append(max(age_ms, 0.0))

    def flush(self) -> None:
        """Put what was recorded as one statistic set per function; a failure is logged, since
        losing a metric must not stop the mapping."""
        with self._lock:
            ages, self._ages = self._ages, {}
        now = datetime.now(UTC)
        for function_name, values in ages.items():
            datum = {
                "MetricName": ITERATOR_AGE_METRIC,
                "Dimensions": [{"Name": "FunctionName", "Value": function_name}],
                "Timestamp": now,
                "StatisticValues": {
                    "SampleCount": float(len(values)),
                    "Sum": sum(values),
                    "Minimum": min(values),
                    "Maximum": max(values),
                },
                "Unit": "Milliseconds",
            }
            try:
                self._client.put_metric_data(Namespace=LAMBDA_NAMESPACE, MetricData=[datum])
            except (BotoCoreError, ClientError) as error:
                log.warning("could not put the IteratorAge of %s: %s", function_name, error)
