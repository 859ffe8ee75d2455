"""The event source mapping runner against the emulator: each test pins one Lambda semantic."""

from __future__ import annotations

import json
import time

import pytest

from tests.local_cloud import handlers
from tests.local_cloud.esm_support import Deployment

pytestmark = pytest.mark.integration


@pytest.fixture
def deployment(aws_endpoint, tmp_path):
    """A one-shard stream in the emulator with a checkpoint dir; removed after the test."""
    dep = Deployment(aws_endpoint, tmp_path / "esm")
    yield dep
    dep.teardown()


@pytest.fixture
def two_shards(aws_endpoint, tmp_path):
    """A two-shard stream in the emulator with a checkpoint dir; removed after the test."""
    dep = Deployment(aws_endpoint, tmp_path / "esm", shards=2)
    yield dep
    dep.teardown()


def ids(batches):
    return [[p["id"] for p in batch] for batch in batches]


def test_event_record_and_context_have_lambdas_shape(deployment: Deployment):
    # GIVEN a function with an environment variable, mapped to the stream
    fn = deployment.function(
        "partial", Environment={"Variables": {"TEST_HANDLER_GREETING": "hello"}}, MemorySize=256
    )
    deployment.mapping(fn)
    seqs = deployment.put({"id": 1, "action": "ok"}, key="sensor-7")
    # WHEN the runner delivers it
    runner = deployment.runner()
    runner.wait_until_drained(10)
    # THEN the record has exactly the fields Lambda sends
    (event,) = handlers.INVOCATIONS[fn]
    (record,) = event["Records"]
    arrival = record["kinesis"].pop("approximateArrivalTimestamp")
    assert isinstance(arrival, float) and abs(arrival - time.time()) < 60
    assert record == {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": "sensor-7",
            "sequenceNumber": seqs[0],
            "data": record["kinesis"]["data"],
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"shardId-000000000000:{seqs[0]}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": deployment.role,
        "awsRegion": "ap-southeast-2",
        "eventSourceARN": deployment.stream_arn,
    }
    assert handlers.payload(record) == {"id": 1, "action": "ok"}
    # AND the context and environment are the function's
    (context,) = handlers.CONTEXTS[fn]
    assert context["function_name"] == fn
    assert context["invoked_function_arn"].endswith(f":function:{fn}")
    assert context["memory_limit_in_mb"] == 256
    assert 0 < context["remaining_ms"] <= 30_000
    assert context["env_greeting"] == "hello"
    assert runner.counters.batches_invoked == 1 and runner.counters.records_delivered == 1


def test_batch_size_caps_each_invocation_and_keeps_order(deployment: Deployment):
    # GIVEN five records already in the stream and a mapping with BatchSize 2
    fn = deployment.function("partial")
    deployment.mapping(fn, BatchSize=2)
    deployment.put(*({"id": i, "action": "ok"} for i in range(5)))
    # WHEN the runner catches up
    deployment.runner().wait_until_drained(10)
    # THEN the records came in order in batches of at most two
    assert ids(deployment.invocations(fn)) == [[0, 1], [2, 3], [4]]


def test_batching_window_gathers_records_into_one_batch(deployment: Deployment):
    # GIVEN a mapping that waits up to 2 s to fill a batch of 100
    fn = deployment.function("partial")
    deployment.mapping(fn, MaximumBatchingWindowInSeconds=2)
    runner = deployment.runner()
    # WHEN three records arrive over a few hundred milliseconds
    for i in range(3):
        deployment.put({"id": i, "action": "ok"})
        time.sleep(0.2)
    runner.wait_until_drained(10)
    # THEN they were delivered together, once
    assert ids(deployment.invocations(fn)) == [[0, 1, 2]]


def test_each_batch_holds_one_shards_records_in_order(two_shards: Deployment):
    # GIVEN readings of many devices spread over two shards
    fn = two_shards.function("partial")
    two_shards.mapping(fn, BatchSize=4)
    payloads = [{"id": i, "action": "ok", "key": f"device-{i % 7}"} for i in range(40)]
    two_shards.put(*payloads)
    # WHEN delivered
    two_shards.runner().wait_until_drained(10)
    events = handlers.INVOCATIONS[fn]
    # THEN every batch is from one shard, each shard's sequence numbers ascend
    last_seen: dict[str, int] = {}
    for event in events:
        shards = {r["eventID"].split(":")[0] for r in event["Records"]}
        assert len(shards) == 1
        shard = shards.pop()
        for r in event["Records"]:
            seq = int(r["kinesis"]["sequenceNumber"])
            assert seq > last_seen.get(shard, 0)
            last_seen[shard] = seq
    assert len(last_seen) == 2
    # AND each device's readings arrived in the order they were put
    delivered = [handlers.payload(r) for e in events for r in e["Records"]]
    for device in {p["key"] for p in payloads}:
        order = [p["id"] for p in delivered if p["key"] == device]
        assert order == sorted(order) and len(order) == len(
            [p for p in payloads if p["key"] == device]
        )


def test_partial_failure_redelivers_from_the_lowest_reported_record(deployment: Deployment):
    # GIVEN a function reporting records 2 and 4 as failed the first time
    fn = deployment.function("fail_once_partial")
    deployment.mapping(fn, FunctionResponseTypes=["ReportBatchItemFailures"])
    actions = ["ok", "ok", "fail", "ok", "fail", "ok"]
    deployment.put(*({"id": i, "action": a} for i, a in enumerate(actions)))
    # WHEN delivered
    runner = deployment.runner()
    runner.wait_until_drained(10)
    # THEN the retry starts at record 2 (the lowest failure), includes 3 which had
    # succeeded, and never repeats 0 and 1
    assert ids(deployment.invocations(fn)) == [[0, 1, 2, 3, 4, 5], [2, 3, 4, 5]]
    assert runner.counters.function_errors == 0


def test_response_ignored_without_report_batch_item_failures(deployment: Deployment):
    # GIVEN a mapping without ReportBatchItemFailures and a function reporting a failure
    fn = deployment.function("fail_once_partial")
    deployment.mapping(fn)
    deployment.put({"id": 0, "action": "fail"}, {"id": 1, "action": "ok"})
    # WHEN delivered
    deployment.runner().wait_until_drained(10)
    # THEN the response is ignored: one delivery, no retry
    assert ids(deployment.invocations(fn)) == [[0, 1]]


def test_malformed_item_identifier_fails_the_whole_batch(deployment: Deployment):
    # GIVEN a function whose first response names an empty itemIdentifier
    fn = deployment.function("malformed")
    deployment.mapping(fn, FunctionResponseTypes=["ReportBatchItemFailures"])
    deployment.put(*({"id": i, "action": "ok"} for i in range(3)))
    # WHEN delivered
    runner = deployment.runner()
    runner.wait_until_drained(10)
    # THEN the whole batch is retried, as after a function error
    assert ids(deployment.invocations(fn)) == [[0, 1, 2], [0, 1, 2]]
    assert runner.counters.function_errors == 1


def test_bisect_on_error_isolates_the_poison_record(deployment: Deployment):
    # GIVEN a batch of eight where record 5 makes the function raise, with bisect
    # on, no retries and an SQS on-failure destination
    fn = deployment.function("partial")
    url, arn = deployment.queue()
    deployment.mapping(
        fn,
        BisectBatchOnFunctionError=True,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": arn}},
    )
    seqs = deployment.put(*({"id": i, "action": "raise" if i == 5 else "ok"} for i in range(8)))
    # WHEN delivered
    runner = deployment.runner()
    runner.wait_until_drained(10)
    # THEN every other record was processed in a successful invocation
    delivered_ok = {
        p["id"]
        for batch in deployment.invocations(fn)
        if all(p["action"] == "ok" for p in batch)
        for p in batch
    }
    assert delivered_ok == {0, 1, 2, 3, 4, 6, 7}
    # AND only the poison record went to the on-failure destination
    (message,) = deployment.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    info = json.loads(message["Body"])["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"]) == (seqs[5], seqs[5])
    assert info["batchSize"] == 1
    assert runner.counters.records_sent_to_on_failure == 1


def test_exhausted_retries_send_the_documented_invocation_record(deployment: Deployment):
    # GIVEN a function that always raises, two retries and an SQS destination
    fn = deployment.function("always_raise")
    url, arn = deployment.queue()
    deployment.mapping(
        fn, MaximumRetryAttempts=2, DestinationConfig={"OnFailure": {"Destination": arn}}
    )
    seqs = deployment.put(*({"id": i, "action": "ok"} for i in range(3)))
    # WHEN delivered, and a later record follows
    runner = deployment.runner()
    runner.wait_until_drained(10)
    # THEN the batch was tried three times, then skipped
    assert ids(deployment.invocations(fn)) == [[0, 1, 2]] * 3
    # AND the destination got Lambda's invocation record for it
    (message,) = deployment.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    body = json.loads(message["Body"])
    assert set(body) == {
        "requestContext",
        "responseContext",
        "version",
        "timestamp",
        "KinesisBatchInfo",
    }
    assert body["version"] == "1.0"
    assert body["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert body["requestContext"]["approximateInvokeCount"] == 3
    assert body["requestContext"]["functionArn"].endswith(f":function:{fn}")
    assert body["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    info = body["KinesisBatchInfo"]
    assert info["shardId"] == "shardId-000000000000"
    assert (info["startSequenceNumber"], info["endSequenceNumber"]) == (seqs[0], seqs[-1])
    assert info["batchSize"] == 3 and info["streamArn"] == deployment.stream_arn
    assert info["approximateArrivalOfFirstRecord"].endswith("Z")
    assert info["approximateArrivalOfLastRecord"] >= info["approximateArrivalOfFirstRecord"]
    assert runner.counters.function_errors == 3
    assert runner.counters.records_sent_to_on_failure == 3


def test_checkpoint_survives_a_runner_restart(deployment: Deployment):
    # GIVEN a runner that delivered three records and stopped
    fn = deployment.function("partial")
    deployment.mapping(fn)
    deployment.put(*({"id": i, "action": "ok"} for i in range(3)))
    first = deployment.runner()
    first.wait_until_drained(10)
    first.stop()
    # WHEN two more arrive and a new runner starts on the same state dir
    deployment.put(*({"id": i, "action": "ok"} for i in range(3, 5)))
    deployment.runner().wait_until_drained(10)
    # THEN only the new records are delivered the second time
    assert ids(deployment.invocations(fn)) == [[0, 1, 2], [3, 4]]


def test_latest_skips_records_already_in_the_stream(deployment: Deployment):
    # GIVEN a record in the stream before a LATEST mapping starts
    fn = deployment.function("partial")
    deployment.mapping(fn, StartingPosition="LATEST")
    deployment.put({"id": 0, "action": "ok"})
    runner = deployment.runner()
    # WHEN another arrives after
    deployment.put({"id": 1, "action": "ok"})
    runner.wait_until_drained(10)
    # THEN only the later one is delivered
    assert ids(deployment.invocations(fn)) == [[1]]


def test_disabled_mapping_delivers_nothing_until_enabled(deployment: Deployment):
    # GIVEN a disabled mapping with a record waiting
    fn = deployment.function("partial")
    mapping = deployment.mapping(fn, Enabled=False)
    deployment.put({"id": 0, "action": "ok"})
    runner = deployment.runner()
    runner.wait_until_drained(5)
    assert deployment.invocations(fn) == []
    # WHEN the mapping is enabled
    deployment.lam.update_event_source_mapping(UUID=mapping, Enabled=True)
    runner.wait_until_drained(10)
    # THEN the record is delivered
    assert ids(deployment.invocations(fn)) == [[0]]


def test_reading_over_the_kinesis_api_delivers_the_same_batches(deployment: Deployment):
    # GIVEN a runner reading the stream through GetRecords over HTTP instead of
    # moto's in-process objects (as it must for an emulator in another process)
    fn = deployment.function("partial")
    deployment.mapping(fn, BatchSize=2)
    deployment.put(*({"id": i, "action": "ok"} for i in range(5)))
    # WHEN it catches up
    deployment.runner(record_source="http").wait_until_drained(10)
    # THEN the batches are what Lambda would send
    assert ids(deployment.invocations(fn)) == [[0, 1], [2, 3], [4]]


def test_asking_whether_an_http_reader_caught_up_never_redelivers(deployment: Deployment):
    # GIVEN a runner reading over the Kinesis API in small batches, and many records
    fn = deployment.function("partial")
    deployment.mapping(fn, BatchSize=2)
    deployment.put(*({"id": i, "action": "ok"} for i in range(60)))
    # WHEN another thread keeps asking whether it has caught up while it reads
    deployment.runner(record_source="http", poll_interval=0.001).wait_until_drained(30)
    # THEN every record is delivered once, in order
    delivered = [r["id"] for batch in deployment.invocations(fn) for r in batch]
    assert delivered == list(range(60))


def test_a_parallelization_factor_it_cannot_honour_is_reported_once(deployment: Deployment, caplog):
    # GIVEN a mapping asking for four concurrent batches per shard
    fn = deployment.function("partial")
    deployment.mapping(fn, BatchSize=2, ParallelizationFactor=4)
    deployment.put(*({"id": i, "action": "ok"} for i in range(4)))
    # WHEN the runner picks it up and refreshes again
    with caplog.at_level("WARNING", logger="local_cloud.esm_runner"):
        runner = deployment.runner()
        runner.refresh()
        runner.wait_until_drained(10)
    # THEN it says once that it keeps one batch in flight, and still delivers in order
    warnings = [r for r in caplog.records if "ParallelizationFactor 4" in r.getMessage()]
    assert len(warnings) == 1
    assert ids(deployment.invocations(fn)) == [[0, 1], [2, 3]]
