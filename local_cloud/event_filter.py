"""An event source mapping's `FilterCriteria`, as Lambda applies it to a stream's records.

Each filter's `Pattern` is an EventBridge event pattern (nested objects, lists of exact
values, `exists`, `prefix`, `suffix`, `anything-but`, `numeric`, `$or`...), matched here by
moto's EventBridge matcher. A record passes when it matches any filter (or the mapping has
none); Lambda drops the others before batching, and counts them as processed.

What a pattern is matched against is the record as the function would get it, for a
table's stream (`eventName`, `dynamodb` with its keys and images in DynamoDB JSON, ...),
and for Kinesis the `kinesis` part of it with `data` decoded (Lambda matches `data`
against the payload's JSON; a payload that is not JSON matches no pattern on `data`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from local_cloud import moto_internals


def filter_patterns(filter_criteria: dict[str, Any] | None) -> tuple[str, ...]:
    """The patterns of a mapping's `FilterCriteria` (as `ListEventSourceMappings` gives it)."""
    filters = (filter_criteria or {}).get("Filters") or []
    return tuple(f["Pattern"] for f in filters if f.get("Pattern"))


class EventFilter:
    """Whether a record passes a mapping's filters."""

    def __init__(self, patterns: Sequence[str]) -> None:
        """Raises ValueError for a pattern Lambda would reject."""
        self.patterns = tuple(patterns)
        self._matchers: list[Callable[[dict[str, Any]], bool]] = [
            moto_internals.event_pattern_matcher(pattern) for pattern in self.patterns
        ]

    def __bool__(self) -> bool:
        """Whether there is anything to filter by."""
        return bool(self._matchers)

    def passes(self, record: dict[str, Any]) -> bool:
        """True when the record matches any pattern, or there are none."""
        return not self._matchers or any(matches(record) for matches in self._matchers)


@functools.lru_cache(maxsize=256)
def event_filter(patterns: tuple[str, ...]) -> EventFilter:
    """The filter for these patterns, made once (ValueError for an invalid pattern)."""
    return EventFilter(patterns)
