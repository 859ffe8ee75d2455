"""Functions in execution environments of their own: what Lambda's sandboxes do, locally.

The event source mapping runner of the local cloud runs each function in worker
processes (`local_cloud.lambda_sandbox`). These tests deploy test functions into the
emulator, map a stream to them and watch what the sandboxes did (the functions write
each invocation to a file) and what the runner did with their answers.
"""

from __future__ import annotations

import json
import time

import pytest

from local_cloud.lambda_runtime import FunctionConfig
from local_cloud.lambda_sandbox import FunctionError, SandboxFunction
from tests.local_cloud.esm_support import Deployment


@pytest.fixture
def sandboxed(aws_endpoint, tmp_path):
    """A one-shard stream whose functions run in worker processes; removed after the test."""
    dep = Deployment(aws_endpoint, tmp_path / "esm", sandboxed=True)
    yield dep
    dep.teardown()


def ids(batches):
    return [[p["id"] for p in batch] for batch in batches]


def test_the_sandbox_gets_lambdas_event_context_and_environment(sandboxed: Deployment):
    """GIVEN a function with an environment variable and 256 MB, mapped to the stream
    WHEN a record is delivered to it in its sandbox
    THEN the event has the record in Lambda's shape, and the context and the environment
    are the function's, Lambda's reserved variables included, in a process of its own."""
    fn = sandboxed.function(
        "partial", Environment={"Variables": {"TEST_HANDLER_GREETING": "hello"}}, MemorySize=256
    )
    sandboxed.mapping(fn)
    (seq,) = sandboxed.put({"id": 1, "action": "ok"}, key="sensor-7")
    runner = sandboxed.runner()
    runner.wait_until_drained(30)
    (event,) = sandboxed.events(fn)
    (record,) = event["Records"]
    assert record["eventID"] == f"shardId-000000000000:{seq}"
    assert record["kinesis"]["partitionKey"] == "sensor-7"
    assert record["eventSourceARN"] == sandboxed.stream_arn
    (context,) = sandboxed.contexts(fn)
    assert context["function_name"] == fn
    assert context["invoked_function_arn"].endswith(f":function:{fn}")
    assert context["memory_limit_in_mb"] == 256
    assert 0 < context["remaining_ms"] <= 30_000
    assert context["env_greeting"] == "hello"
    assert context["env_function_name"] == fn
    assert context["pid"] != __import__("os").getpid()
    assert runner.counters.batches_invoked == 1


def test_two_functions_each_see_their_own_environment(sandboxed: Deployment):
    """GIVEN two functions setting the same variable to different values, both mapped
    WHEN a record is delivered to each
    THEN each sees its own value (in one process the last cold start would win)."""
    first = sandboxed.function("partial", Environment={"Variables": {"TEST_HANDLER_GREETING": "a"}})
    second = sandboxed.function(
        "fail_once_partial", Environment={"Variables": {"TEST_HANDLER_GREETING": "b"}}
    )
    sandboxed.mapping(first)
    sandboxed.mapping(second)
    sandboxed.put({"id": 1, "action": "ok"})
    sandboxed.runner().wait_until_drained(30)
    assert [c["env_greeting"] for c in sandboxed.contexts(first)] == ["a"]
    assert [c["env_greeting"] for c in sandboxed.contexts(second)] == ["b"]


def test_partial_failure_redelivers_from_the_lowest_failure_to_the_warm_sandbox(
    sandboxed: Deployment,
):
    """GIVEN a function reporting records 2 and 4 as failed the first time it sees them
    (it remembers what it saw in its module, as a warm sandbox keeps it)
    WHEN the batch is delivered
    THEN the retry starts at record 2, includes 3 which had succeeded, never repeats 0 and
    1, and both invocations ran in the same sandbox."""
    fn = sandboxed.function("fail_once_partial")
    sandboxed.mapping(fn, FunctionResponseTypes=["ReportBatchItemFailures"])
    actions = ["ok", "ok", "fail", "ok", "fail", "ok"]
    sandboxed.put(*({"id": i, "action": a} for i, a in enumerate(actions)))
    runner = sandboxed.runner()
    runner.wait_until_drained(30)
    assert ids(sandboxed.invocations(fn)) == [[0, 1, 2, 3, 4, 5], [2, 3, 4, 5]]
    assert len({c["pid"] for c in sandboxed.contexts(fn)}) == 1
    assert runner.counters.function_errors == 0


def test_a_raising_function_is_bisected_down_to_the_poison_record(sandboxed: Deployment):
    """GIVEN eight records where record 5 makes the function raise, bisect on, no retries
    and an SQS on-failure destination
    WHEN delivered to the sandboxed function
    THEN the error comes back as a function error: every other record is processed in a
    successful invocation and only the poison record goes to the destination."""
    fn = sandboxed.function("partial")
    url, arn = sandboxed.queue()
    sandboxed.mapping(
        fn,
        BisectBatchOnFunctionError=True,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": arn}},
    )
    seqs = sandboxed.put(*({"id": i, "action": "raise" if i == 5 else "ok"} for i in range(8)))
    runner = sandboxed.runner()
    runner.wait_until_drained(60)
    delivered_ok = {
        p["id"]
        for batch in sandboxed.invocations(fn)
        if all(p["action"] == "ok" for p in batch)
        for p in batch
    }
    assert delivered_ok == {0, 1, 2, 3, 4, 6, 7}
    (message,) = sandboxed.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    info = json.loads(message["Body"])["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"]) == (seqs[5], seqs[5])
    assert runner.counters.function_errors >= 1


def test_a_function_past_its_timeout_is_stopped_and_the_next_batch_gets_a_new_sandbox(
    sandboxed: Deployment,
):
    """GIVEN a function with a 1 s timeout whose first record makes it sleep 5 s, no
    retries and an SQS on-failure destination, and a second record put after the first
    WHEN both are delivered one batch at a time
    THEN the first invocation is stopped after about its timeout and its record goes to
    the destination, and the second record is processed by a new sandbox."""
    fn = sandboxed.function("sleepy", Timeout=1)
    url, arn = sandboxed.queue()
    sandboxed.mapping(
        fn,
        BatchSize=1,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": arn}},
    )
    first, _ = sandboxed.put({"id": 0, "action": "sleep"}, {"id": 1, "action": "ok"})
    started = time.monotonic()
    runner = sandboxed.runner()
    runner.wait_until_drained(30)
    assert time.monotonic() - started < 5  # the 5 s sleep was cut short
    (message,) = sandboxed.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    record = json.loads(message["Body"])
    assert record["KinesisBatchInfo"]["startSequenceNumber"] == first
    assert record["responseContext"]["functionError"] == "Unhandled"
    contexts = sandboxed.contexts(fn)
    assert ids(sandboxed.invocations(fn)) == [[0], [1]]
    assert contexts[0]["pid"] != contexts[1]["pid"]
    assert runner.counters.function_errors == 1


def test_each_shard_gets_its_own_sandbox_and_keeps_its_order(aws_endpoint, tmp_path):
    """GIVEN readings of many devices over two shards, a sandboxed function, batches of 4
    WHEN delivered (two batches in flight, one per shard)
    THEN every batch is of one shard with ascending sequence numbers and each device's
    readings arrive in the order they were put."""
    dep = Deployment(aws_endpoint, tmp_path / "esm", shards=2, sandboxed=True)
    try:
        fn = dep.function("partial")
        dep.mapping(fn, BatchSize=4)
        payloads = [{"id": i, "action": "ok", "key": f"device-{i % 7}"} for i in range(40)]
        dep.put(*payloads)
        dep.runner().wait_until_drained(60)
        last_seen: dict[str, int] = {}
        for event in dep.events(fn):
            (shard,) = {r["eventID"].split(":")[0] for r in event["Records"]}
            for r in event["Records"]:
                assert int(r["kinesis"]["sequenceNumber"]) > last_seen.get(shard, 0)
                last_seen[shard] = int(r["kinesis"]["sequenceNumber"])
        assert len(last_seen) == 2
        delivered = [p for batch in dep.invocations(fn) for p in batch]
        assert sorted(p["id"] for p in delivered) == list(range(40))
        for device in {p["key"] for p in payloads}:
            order = [p["id"] for p in delivered if p["key"] == device]
            assert order == sorted(order)
    finally:
        dep.teardown()


def _config(handler: str, **extra: object) -> FunctionConfig:
    return FunctionConfig(
        name=f"unit-{handler}",
        arn=f"arn:aws:lambda:ap-southeast-2:123456789012:function:unit-{handler}",
        handler=handler,
        role="arn:aws:iam::123456789012:role/unit",
        **extra,  # type: ignore[arg-type]
    )


def _event(*actions: str) -> dict:
    import base64

    return {
        "Records": [
            {
                "kinesis": {
                    "data": base64.b64encode(json.dumps({"id": i, "action": a}).encode()).decode(),
                    "sequenceNumber": str(i + 1),
                },
            }
            for i, a in enumerate(actions)
        ]
    }


def test_output_goes_to_the_function_log_and_errors_come_back_as_lambda_reports_them(tmp_path):
    """GIVEN sandboxed functions whose handler prints, raises, answers with something that
    is not JSON, or cannot be imported
    WHEN each is invoked
    THEN printed lines are in the function's log and handed to the caller; a raised error
    comes back with its type and message, a non-JSON answer as Runtime.MarshalError, a
    missing module as Runtime.ImportModuleError; and a failed invocation leaves the
    sandbox usable."""
    handed: list[list[str]] = []
    raising = SandboxFunction(
        _config("tests.local_cloud.handlers.partial"),
        "ap-southeast-2",
        log_dir=tmp_path,
        on_log_lines=handed.append,
    )
    try:
        with pytest.raises(FunctionError) as raised:
            raising.invoke(_event("ok", "raise"))
        assert (raised.value.error_type, raised.value.error_message) == (
            "RuntimeError",
            "poison record",
        )
        assert raising.invoke(_event("ok")) == {"batchItemFailures": []}
        log_text = (tmp_path / "unit-tests.local_cloud.handlers.partial.log").read_text()
        assert "RuntimeError: poison record" in log_text
        assert any("RuntimeError: poison record" in line for line in handed[0])
    finally:
        raising.close()
    for handler, error_type in (
        ("tests.local_cloud.handlers.unmarshallable", "Runtime.MarshalError"),
        ("tests.local_cloud.no_such_module.handler", "Runtime.ImportModuleError"),
    ):
        function = SandboxFunction(_config(handler), "ap-southeast-2", log_dir=tmp_path)
        try:
            with pytest.raises(FunctionError) as failed:
                function.invoke(_event("ok"))
            assert failed.value.error_type == error_type
        finally:
            function.close()
