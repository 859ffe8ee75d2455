"""The event source mapping runner against the emulator: each test pins one Lambda semantic,
for a Kinesis stream and for a DynamoDB table's stream."""

from __future__ import annotations

import base64
import json
import time

import boto3
import pytest

from local_cloud.esm_checkpoints import CheckpointStore
from local_cloud.esm_runner import MappingSettings
from stream_processor.contract import ALERT_OUTBOX_FILTER
from tests.local_cloud import handlers
from tests.local_cloud.esm_support import Deployment, TableDeployment

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


# --- a DynamoDB table's stream -------------------------------------------------------------

#: The alert notifier's filter: only writes whose new image carries an outbox.
OUTBOX_FILTER = {"Filters": [{"Pattern": json.dumps(ALERT_OUTBOX_FILTER)}]}
OUTBOX = '[{"DetailType": "Alert raised"}]'


@pytest.fixture
def table(aws_endpoint, tmp_path):
    """A table with a NEW_IMAGE stream in the emulator and a checkpoint dir; removed after."""
    dep = TableDeployment(aws_endpoint, tmp_path / "esm")
    yield dep
    dep.teardown()


def test_a_table_stream_delivers_writes_in_order_with_lambdas_shape(table: TableDeployment):
    # GIVEN a function mapped to the table's stream
    fn = table.function("partial")
    table.mapping(fn)
    # AND three items written, then one of them written again and another deleted
    before = time.time()
    inserted = table.put(*({"id": i, "action": "ok"} for i in range(3)))
    (modified,) = table.put({"id": 1, "action": "ok", "note": "again"})
    (removed,) = table.remove(2)
    # WHEN the runner delivers them
    table.runner().wait_until_drained(10)
    # THEN one batch holds every change, in the order it was made
    (event,) = table.events(fn)
    records = event["Records"]
    assert [(r["eventName"], r["dynamodb"]["SequenceNumber"]) for r in records] == [
        *(("INSERT", s) for s in inserted),
        ("MODIFY", modified),
        ("REMOVE", removed),
    ]
    # AND each record has exactly the fields Lambda sends
    first = records[0]
    created = first["dynamodb"].pop("ApproximateCreationDateTime")
    assert isinstance(created, int) and int(before) <= created <= time.time()
    size = first["dynamodb"].pop("SizeBytes")
    assert isinstance(size, int) and size > 0
    assert first == {
        "eventID": first["eventID"],
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "ap-southeast-2",
        "dynamodb": {
            "Keys": {"id": {"N": "0"}},
            "NewImage": {"id": {"N": "0"}, "action": {"S": "ok"}},
            "SequenceNumber": inserted[0],
            "StreamViewType": "NEW_IMAGE",
        },
        "eventSourceARN": table.stream_arn,
    }
    assert len({r["eventID"] for r in records}) == 5
    # AND a modification carries its new image, a deletion its keys only
    assert records[3]["dynamodb"]["NewImage"]["note"] == {"S": "again"}
    assert records[4]["dynamodb"]["Keys"] == {"id": {"N": "2"}}
    assert "OldImage" not in records[3]["dynamodb"]
    assert not {"NewImage", "OldImage"} & set(records[4]["dynamodb"])


@pytest.mark.parametrize(
    ("view_type", "images"),
    [
        ("KEYS_ONLY", [set(), set(), set()]),
        ("NEW_IMAGE", [{"NewImage"}, {"NewImage"}, set()]),
        ("OLD_IMAGE", [set(), {"OldImage"}, {"OldImage"}]),
        ("NEW_AND_OLD_IMAGES", [{"NewImage"}, {"NewImage", "OldImage"}, {"OldImage"}]),
    ],
)
def test_the_stream_view_type_decides_the_images_a_record_carries(
    aws_endpoint, tmp_path, view_type, images
):
    # GIVEN a table whose stream keeps `view_type`, mapped to a function
    table = TableDeployment(aws_endpoint, tmp_path / "esm", view_type=view_type)
    try:
        fn = table.function("partial")
        table.mapping(fn)
        # WHEN an item is inserted, modified and deleted, and the runner delivers it
        table.put({"id": 7, "action": "ok"}, {"id": 7, "action": "ok", "n": 2})
        table.remove(7)
        table.runner().wait_until_drained(10)
        # THEN each record carries the images the view type holds, and says which it is
        (event,) = table.events(fn)
        changes = [r["dynamodb"] for r in event["Records"]]
        assert [{"NewImage", "OldImage"} & set(c) for c in changes] == images
        assert {c["StreamViewType"] for c in changes} == {view_type}
        if view_type == "NEW_AND_OLD_IMAGES":
            assert changes[1]["OldImage"] == {"id": {"N": "7"}, "action": {"S": "ok"}}
            assert changes[1]["NewImage"]["n"] == {"N": "2"}
    finally:
        table.teardown()


def test_a_filter_drops_writes_it_does_not_match_and_moves_past_them(table: TableDeployment):
    # GIVEN a mapping with the alert notifier's filter: only writes carrying an outbox
    fn = table.function("partial")
    mapping = table.mapping(fn, BatchSize=10, FilterCriteria=OUTBOX_FILTER)
    # AND writes with and without one, the last two without
    written = table.put(
        {"id": 0, "action": "ok", "outbox": OUTBOX},
        {"id": 1, "action": "ok"},
        {"id": 2, "action": "ok", "outbox": OUTBOX},
        {"id": 3, "action": "ok"},
        {"id": 4, "action": "ok"},
    )
    # WHEN the runner catches up
    runner = table.runner()
    runner.wait_until_drained(10)
    # THEN only the writes with an outbox were delivered, together
    assert ids(table.invocations(fn)) == [[0, 2]]
    # AND the position moved past the writes it dropped, the last ones included
    assert runner.checkpoints.get(mapping, table.shard_id()) == int(written[-1])
    assert runner.counters.records_filtered_out == 3
    # WHEN only writes without an outbox follow (a deletion has no new image at all)
    later = table.put({"id": 5, "action": "ok"}) + table.remove(0)
    runner.wait_until_drained(10)
    # THEN nothing more is delivered, and the position still moves past them
    assert len(table.invocations(fn)) == 1
    assert runner.checkpoints.get(mapping, table.shard_id()) == int(later[-1])
    assert runner.counters.records_filtered_out == 5


def test_a_kinesis_filter_matches_the_records_decoded_data(deployment: Deployment):
    # GIVEN a Kinesis mapping filtering on the payload's JSON
    fn = deployment.function("partial")
    pattern = {"data": {"action": ["ok"]}}
    deployment.mapping(fn, FilterCriteria={"Filters": [{"Pattern": json.dumps(pattern)}]})
    # AND records that match, one that does not, and one that is not JSON at all
    deployment.put({"id": 0, "action": "ok"}, {"id": 1, "action": "skip"})
    deployment.kinesis.put_record(
        StreamName=deployment.stream_name, Data=b"\x00 not json", PartitionKey="k"
    )
    deployment.put({"id": 2, "action": "ok"})
    # WHEN the runner catches up
    runner = deployment.runner()
    runner.wait_until_drained(10)
    # THEN only the matching records were delivered
    assert ids(deployment.invocations(fn)) == [[0, 2]]
    assert runner.counters.records_filtered_out == 2


def test_a_reported_item_failure_is_redelivered_from_that_record(table: TableDeployment):
    # GIVEN a function reporting the second write as failed the first time
    fn = table.function("fail_once_partial")
    table.mapping(fn, FunctionResponseTypes=["ReportBatchItemFailures"])
    table.put(*({"id": i, "action": a} for i, a in enumerate(["ok", "fail", "ok"])))
    # WHEN delivered
    runner = table.runner()
    runner.wait_until_drained(10)
    # THEN the retry starts at that record (its SequenceNumber was the item identifier)
    assert ids(table.invocations(fn)) == [[0, 1, 2], [1, 2]]
    assert runner.counters.function_errors == 0


def test_a_failing_write_ends_in_the_on_failure_queue_with_ddb_stream_batch_info(
    table: TableDeployment,
):
    # GIVEN the alert notifier's error handling: bisect on error, a retry limit, partial
    # batch responses and an SQS on-failure destination; the third write makes it raise
    fn = table.function("partial")
    url, arn = table.queue()
    table.mapping(
        fn,
        BisectBatchOnFunctionError=True,
        MaximumRetryAttempts=1,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        DestinationConfig={"OnFailure": {"Destination": arn}},
    )
    written = table.put(*({"id": i, "action": "raise" if i == 2 else "ok"} for i in range(4)))
    # WHEN delivered
    runner = table.runner()
    runner.wait_until_drained(10)
    # THEN every other write was processed in a successful invocation
    batches = table.invocations(fn)
    succeeded = [b for b in batches if all(p["action"] == "ok" for p in b)]
    assert {p["id"] for b in succeeded for p in b} == {0, 1, 3}
    # AND the failing write, isolated, was tried once and retried once
    assert ids(batches).count([2]) == 2
    # AND the destination got Lambda's invocation record for it, with DDBStreamBatchInfo
    (message,) = table.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    body = json.loads(message["Body"])
    assert set(body) == {
        "requestContext",
        "responseContext",
        "version",
        "timestamp",
        "DDBStreamBatchInfo",
    }
    assert body["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert body["requestContext"]["functionArn"].endswith(f":function:{fn}")
    assert body["responseContext"]["functionError"] == "Unhandled"
    info = body["DDBStreamBatchInfo"]
    assert info["shardId"] == table.shard_id()
    assert (info["startSequenceNumber"], info["endSequenceNumber"]) == (written[2], written[2])
    assert info["batchSize"] == 1 and info["streamArn"] == table.stream_arn
    assert info["approximateArrivalOfFirstRecord"].endswith("Z")
    assert info["approximateArrivalOfLastRecord"] == info["approximateArrivalOfFirstRecord"]
    assert runner.counters.records_sent_to_on_failure == 1


def test_a_restarted_runner_resumes_a_table_stream_from_its_checkpoint(table: TableDeployment):
    # GIVEN a runner that delivered three writes and stopped
    fn = table.function("partial")
    table.mapping(fn)
    table.put(*({"id": i, "action": "ok"} for i in range(3)))
    first = table.runner()
    first.wait_until_drained(10)
    first.stop()
    # WHEN two more writes come and a new runner starts on the same state dir
    table.put(*({"id": i, "action": "ok"} for i in range(3, 5)))
    table.runner().wait_until_drained(10)
    # THEN only the new writes are delivered the second time
    assert ids(table.invocations(fn)) == [[0, 1, 2], [3, 4]]


def test_a_checkpoint_past_the_end_of_the_stream_reads_it_from_the_start(
    table: TableDeployment, caplog
):
    # GIVEN a checkpoint further on than the table's stream (whose records are gone, and
    # whose new records are numbered from the same first number again)
    fn = table.function("partial")
    mapping = table.mapping(fn)
    table.put(*({"id": i, "action": "ok"} for i in range(2)))
    store = CheckpointStore(table.state_dir)
    store.put(mapping, table.shard_id(), int(table.sequence_numbers()[-1]) + 100)
    store.close()
    # WHEN a runner starts on it
    with caplog.at_level("WARNING", logger="local_cloud.esm_runner"):
        table.runner().wait_until_drained(10)
    # THEN it says so and delivers what the stream holds, rather than skip it
    assert ids(table.invocations(fn)) == [[0, 1]]
    assert any("past the last record" in r.getMessage() for r in caplog.records)


def test_reading_a_table_stream_over_its_api_delivers_the_same_events(table: TableDeployment):
    # GIVEN two functions mapped to the table's stream in batches of two: one served from
    # moto's objects in this process, the other through DynamoDB Streams over HTTP
    served, over_http = table.function("partial"), table.function("fail_once_partial")
    for fn in (served, over_http):
        table.mapping(fn, BatchSize=2)
    # AND writes, one with a binary attribute, and a deletion
    table.put(
        {"id": 0, "action": "ok", "raw": b"\x00\xff"},
        *({"id": i, "action": "ok"} for i in range(1, 4)),
    )
    table.remove(1)
    # WHEN each runner catches up
    for fn, source in ((served, "backend"), (over_http, "http")):
        arn = f":function:{fn}"
        table.runner(
            record_source=source, mapping_filter=lambda m, arn=arn: m.function_arn.endswith(arn)
        ).wait_until_drained(10)
    # THEN both functions got the same events, binary values as base64 text
    assert table.events(served) == table.events(over_http)
    assert ids(table.invocations(served)) == [[0, 1], [2, 3], [1]]
    first = table.events(served)[0]["Records"][0]
    assert first["dynamodb"]["NewImage"]["raw"] == {"B": base64.b64encode(b"\x00\xff").decode()}


def test_a_mapping_declared_in_a_template_keeps_its_filter_and_settings(table: TableDeployment):
    # GIVEN the alert notifier's mapping declared in a CloudFormation template
    fn = table.function("partial")
    _, queue_arn = table.queue()
    properties = {
        "FunctionName": fn,
        "EventSourceArn": table.stream_arn,
        "StartingPosition": "TRIM_HORIZON",
        "BatchSize": 100,
        "MaximumBatchingWindowInSeconds": 1,
        "BisectBatchOnFunctionError": True,
        "MaximumRetryAttempts": 10,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "DestinationConfig": {"OnFailure": {"Destination": queue_arn}},
        "FilterCriteria": OUTBOX_FILTER,
    }
    template = {
        "Resources": {
            "Notifier": {"Type": "AWS::Lambda::EventSourceMapping", "Properties": properties}
        }
    }
    cfn = boto3.client("cloudformation")
    stack = f"test-mapping-{table.suffix}"
    cfn.create_stack(StackName=stack, TemplateBody=json.dumps(template))
    try:
        # WHEN the runner reads the mapping
        (mapping,) = table.lam.list_event_source_mappings(EventSourceArn=table.stream_arn)[
            "EventSourceMappings"
        ]
        settings = MappingSettings.from_api(mapping)
    finally:
        cfn.delete_stack(StackName=stack)
        for m in table.lam.list_event_source_mappings(EventSourceArn=table.stream_arn)[
            "EventSourceMappings"
        ]:
            table.lam.delete_event_source_mapping(UUID=m["UUID"])
    # THEN every setting came through, the filter included
    assert settings.source == "dynamodb"
    assert settings.filter_patterns == (json.dumps(ALERT_OUTBOX_FILTER),)
    assert (settings.batch_size, settings.batching_window_s) == (100, 1.0)
    assert settings.bisect_on_error and settings.report_item_failures
    assert (settings.max_retry_attempts, settings.on_failure_arn) == (10, queue_arn)


def test_a_mapping_with_a_filter_lambda_would_reject_is_not_acted_on(
    table: TableDeployment, caplog
):
    # GIVEN a mapping whose filter pattern is not an event pattern (moto takes it)
    fn = table.function("partial")
    table.mapping(fn, FilterCriteria={"Filters": [{"Pattern": '{"dynamodb": "INSERT"}'}]})
    table.put({"id": 0, "action": "ok"})
    # WHEN a runner starts
    with caplog.at_level("ERROR", logger="local_cloud.esm_runner"):
        runner = table.runner()
        runner.refresh()
        runner.wait_until_drained(5)
    # THEN it delivers nothing and says why, once
    assert table.invocations(fn) == []
    assert len([r for r in caplog.records if "is not acted on" in r.getMessage()]) == 1


def test_a_mapping_whose_stream_is_gone_does_not_hold_up_the_others(
    deployment: Deployment, aws_endpoint, tmp_path, caplog
):
    # GIVEN a mapping of a table's stream whose table was then deleted (the mapping stays)
    gone = TableDeployment(aws_endpoint, tmp_path / "gone")
    gone_fn = gone.function("partial")
    gone.mapping(gone_fn)
    gone.dynamodb.delete_table(TableName=gone.table_name)
    # AND a Kinesis mapping with records waiting
    fn = deployment.function("partial")
    deployment.mapping(fn)
    deployment.put({"id": 0, "action": "ok"})
    try:
        # WHEN one runner acts on both
        with caplog.at_level("WARNING", logger="local_cloud.esm_runner"):
            runner = deployment.runner(
                mapping_filter=lambda m: m.stream_arn in (deployment.stream_arn, gone.stream_arn)
            )
            runner.refresh()
            runner.wait_until_drained(10)
        # THEN the Kinesis records are delivered, and the missing stream is reported once
        assert ids(deployment.invocations(fn)) == [[0]]
        unreadable = [r for r in caplog.records if "cannot list the shards" in r.getMessage()]
        assert len(unreadable) == 1 and gone.stream_arn in unreadable[0].getMessage()
    finally:
        for mapping in gone.mapping_uuids:
            gone.lam.delete_event_source_mapping(UUID=mapping)
        gone.lam.delete_function(FunctionName=gone_fn)
