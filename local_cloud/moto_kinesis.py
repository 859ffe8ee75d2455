"""Constant-time sequence-number lookups for moto's Kinesis shards.

moto (5.2) finds a shard's last sequence number with ``list(self.records.keys())[-1]``
and does so on every ``PutRecord``: each put copies every key in the shard, so a put
costs time in proportion to the records already there (about 10 us on an empty shard,
2 ms at 60,000 records on a 2-core machine). At 1,000 readings/s the local cloud's
stream holds 60,000 records after a minute and puts alone no longer keep up (see
``benchmarks/bench_local_path.py``).

moto only ever adds records through ``Shard.put_record``, which numbers them one above
the last, and keeps them in an ``OrderedDict``: the first and last keys are the lowest
and highest sequence numbers, and both ends of an ``OrderedDict`` are reachable in
constant time. The replacements below return the same values as moto's methods.
"""

from __future__ import annotations

from typing import Any

from moto.kinesis.models import Shard

#: moto's own method, kept for comparison (benchmarks) and to undo the patch.
MOTO_GET_MAX_SEQUENCE_NUMBER = Shard.get_max_sequence_number
MOTO_GET_MIN_SEQUENCE_NUMBER = Shard.get_min_sequence_number


def _end_key(records: Any, reverse: bool) -> int:
    while True:
        try:
            return next(reversed(records) if reverse else iter(records), 0)
        except RuntimeError:  # another thread added a record between the two calls
            continue


def get_max_sequence_number(shard: Shard) -> int:
    """The shard's highest sequence number (0 when empty), without copying its keys."""
    return _end_key(shard.records, reverse=True)


def get_min_sequence_number(shard: Shard) -> int:
    """The shard's lowest sequence number (0 when empty), without copying its keys."""
    return _end_key(shard.records, reverse=False)


def use_constant_time_sequence_lookups() -> None:
    """Replace moto's shard lookups with the constant-time ones; safe to call twice."""
    Shard.get_max_sequence_number = get_max_sequence_number  # type: ignore[method-assign]
    Shard.get_min_sequence_number = get_min_sequence_number  # type: ignore[method-assign]
