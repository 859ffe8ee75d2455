"""The lake state in S3: two runs never interleave their merges of one table (the emulator's
conditional PUTs, as S3 has them)."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

import boto3
import pytest

from local_cloud import defaults
from pipeline_platform.defs.lake.state import STALE_LOCK_SECONDS, LakeBusy, StateStore


@pytest.fixture
def store(aws_endpoint) -> StateStore:
    """A state store in a bucket of its own."""
    s3 = boto3.client("s3")
    bucket = f"state-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": defaults.REGION}
    )
    return StateStore(s3, bucket, "pipeline/state/")


def test_a_second_run_waits_for_the_lock_and_gives_up_naming_the_holder(store):
    """GIVEN a run merging `sensor_readings` WHEN another run asks for the table's lock THEN it
    waits, and after its wait fails naming the run that holds it; once released, the lock is
    free again."""
    with store.lock("sensor_readings", owner="run A"):
        started = time.monotonic()
        with (
            pytest.raises(LakeBusy, match="run A"),
            store.lock("sensor_readings", owner="run B", wait_seconds=1.0),
        ):
            pass
        assert time.monotonic() - started >= 1.0
    with store.lock("sensor_readings", owner="run B", wait_seconds=0):
        pass


def test_a_lock_left_by_a_run_that_died_is_taken_over(store):
    """GIVEN a lock older than a run can live WHEN a run asks for it THEN it takes it over."""
    stale = {"owner": "run dead", "token": "t", "since": time.time() - STALE_LOCK_SECONDS - 1}
    store.s3.put_object(
        Bucket=store.bucket, Key="pipeline/state/rule_errors.lock", Body=json.dumps(stale)
    )
    with store.lock("rule_errors", owner="run C", wait_seconds=0):
        held = store.s3.get_object(Bucket=store.bucket, Key="pipeline/state/rule_errors.lock")
        assert json.loads(held["Body"].read())["owner"] == "run C"


def test_a_state_changed_since_it_was_read_is_not_overwritten(store):
    """GIVEN two runs that read the same state WHEN both save THEN the second is refused: the
    lake's record of what it holds is never a mix of two runs."""
    state, etag = store.load("sensor_readings")
    assert state.empty and etag is None
    state.cover(None, datetime(2026, 12, 1, tzinfo=UTC))
    store.save(state, etag)
    first, first_etag = store.load("sensor_readings")
    second, second_etag = store.load("sensor_readings")

    first.apply({"2001-01-01": 1}, {"2001-01-01": 1})
    store.save(first, first_etag)
    second.apply({"2023-11-16": 2}, {"2023-11-16": 2})
    with pytest.raises(LakeBusy, match="changed while this run merged"):
        store.save(second, second_etag)

    assert set(store.load("sensor_readings")[0].days) == {"2001-01-01"}
