"""The requests the processor sends: a prebuilt body that is signed as sent, thread-safe reuse."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from local_cloud import defaults
from stream_processor import contract
from stream_processor import handler as handler_module
from stream_processor.handler import StreamProcessor
from tests.stream_processor.conftest import DeployedProcessor
from tests.support.fake_aws import FakeAws
from tests.support.kinesis_events import kinesis_event


def test_prebuilt_batch_write_body_is_the_body_that_is_signed(
    fake_aws: FakeAws, fake_processor: StreamProcessor
) -> None:
    """GIVEN the processor, which sends DynamoDB bodies it built itself
    WHEN a batch of three readings is written
    THEN the request that arrives holds the three items, names BatchWriteItem, and recomputing
    SigV4 over exactly the bytes and headers received reproduces its Authorization header.
    """
    readings = [
        {"device_id": f"s-{i}", "timestamp": 1700100000, "temperature": 20 + i} for i in range(3)
    ]

    fake_processor.process(kinesis_event(readings))

    [request] = fake_aws.received
    assert request.headers["X-Amz-Target"] == "DynamoDB_20120810.BatchWriteItem"
    body = json.loads(request.body)
    assert [
        w["PutRequest"]["Item"]["device_id"]["S"] for w in body["RequestItems"]["readings"]
    ] == ["s-0", "s-1", "s-2"]
    authorization = request.headers["Authorization"]
    assert f"Credential={defaults.CREDENTIALS['AWS_ACCESS_KEY_ID']}/" in authorization
    assert "/ap-southeast-2/dynamodb/aws4_request" in authorization
    found = re.search(r"SignedHeaders=([^,]+)", authorization)
    assert found is not None, authorization
    signed = found.group(1).split(";")
    assert {"host", "x-amz-date", "x-amz-target", "x-amz-security-token"} <= set(signed)
    check = AWSRequest(
        method=request.method, url=fake_aws.endpoint_url + request.path, data=request.body
    )
    for name, value in request.headers.items():
        if name.lower() in signed:
            check.headers[name] = value
    check.context["timestamp"] = request.headers["X-Amz-Date"]
    credentials = Credentials(
        defaults.CREDENTIALS["AWS_ACCESS_KEY_ID"],
        defaults.CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        defaults.CREDENTIALS["AWS_SESSION_TOKEN"],
    )
    signer = SigV4Auth(credentials, "dynamodb", "ap-southeast-2")
    expected = signer.signature(
        signer.string_to_sign(check, signer.canonical_request(check)), check
    )
    assert authorization.endswith(f"Signature={expected}")
    assert len(fake_aws.items) == 3


def test_one_processor_serves_concurrent_invocations(cloud: DeployedProcessor) -> None:
    """GIVEN one processor, as the local event source mapping runner shares it between shards
    WHEN four batches are processed at the same time from four threads
    THEN every reading of every batch is stored and no invocation reports a failure.
    """
    batches = [
        kinesis_event(
            [{"device_id": f"shard{b}-s{i}", "timestamp": 1700100000 + i} for i in range(60)]
        )
        for b in range(4)
    ]

    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(pool.map(cloud.processor.process, batches))

    assert responses == [{"batchItemFailures": []}] * 4
    assert len(cloud.items()) == 240


def test_lambda_entry_point_reads_its_settings_once(
    cloud: DeployedProcessor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIVEN the function's environment naming the table and bucket
    WHEN Lambda invokes `handler` twice, the environment changing in between
    THEN both invocations store into the table configured at cold start.
    """
    monkeypatch.setattr(handler_module, "_processor", None)
    monkeypatch.setenv(contract.ENV_TABLE_NAME, cloud.config.table_name)
    monkeypatch.setenv(contract.ENV_QUARANTINE_BUCKET, cloud.config.quarantine_bucket)

    reading = {"timestamp": 1700100000, "temperature": 21}
    first = handler_module.handler(kinesis_event([{**reading, "device_id": "a"}]), None)
    monkeypatch.setenv(contract.ENV_TABLE_NAME, "some-other-table")
    second = handler_module.handler(kinesis_event([{**reading, "device_id": "b"}]), None)

    assert first == second == {"batchItemFailures": []}
    assert [item["device_id"]["S"] for item in cloud.items()] == ["a", "b"]
    assert handler_module._processor is not None
    handler_module._processor.close()
