"""The tools Lambda teams test and trace with see every request: botocore's Stubber, event hooks.

moto's `mock_aws` is covered by test_seed_payloads, which runs the seed
payloads both against the emulator and under the mock.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from botocore.stub import ANY, Stubber

from stream_processor import contract
from stream_processor.aws_clients import make_client
from stream_processor.config import Config
from stream_processor.encoded_requests import EncodedItem
from stream_processor.handler import StreamProcessor
from tests.support.fake_aws import FakeAws
from tests.support.kinesis_events import FakeContext, kinesis_event, sequence_number

REGION = "ap-southeast-2"
TABLE = "readings"
BUCKET = "quarantine"


def _reading(device: str, offset: int = 0) -> dict:
    return {"device_id": device, "timestamp": 1700100000 + offset, "temperature": 21}


def _expected_item(device: str, index: int, offset: int = 0) -> dict:
    """The item the processor sends for `_reading(device, offset)` at record `index`."""
    return {
        "device_id": {"S": device},
        "timestamp": {"N": str(1700100000 + offset)},
        "temperature": {"N": "21"},
        "alerts": {"L": []},
        "quality_flags": {"L": [{"S": contract.MISSING_HUMIDITY}]},
        "sequence_number": {"S": sequence_number(index)},
        "ingested_at": ANY,
        "expires_at": ANY,
    }


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch):
    """A processor whose two clients are under botocore Stubbers (nothing leaves the process)."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    dynamodb = make_client("dynamodb", 2, endpoint_url="http://127.0.0.1:9")
    s3 = make_client("s3", 2, endpoint_url="http://127.0.0.1:9")
    processor = StreamProcessor(
        Config(table_name=TABLE, quarantine_bucket=BUCKET, write_concurrency=1),
        dynamodb=dynamodb,
        s3=s3,
    )
    with Stubber(dynamodb) as dynamodb_stub, Stubber(s3) as s3_stub:
        yield processor, dynamodb_stub, s3_stub
    processor.close()


def test_writes_meet_a_stubbers_expected_parameters(stubbed) -> None:
    """GIVEN Stubbers expecting one BatchWriteItem with the two readings' items, written out as
    plain DynamoDB JSON, and one PutObject into the quarantine bucket
    WHEN a batch of the two readings and one malformed record is processed
    THEN the calls match what the Stubbers expected, every stubbed answer is used, and no
    record is reported.
    """
    processor, dynamodb_stub, s3_stub = stubbed
    dynamodb_stub.add_response(
        "batch_write_item",
        {"UnprocessedItems": {}},
        expected_params={
            "RequestItems": {
                TABLE: [
                    {"PutRequest": {"Item": _expected_item("s-1", 0)}},
                    {"PutRequest": {"Item": _expected_item("s-2", 1)}},
                ]
            }
        },
    )
    s3_stub.add_response(
        "put_object",
        {"ETag": '"0"'},
        expected_params={
            "Bucket": BUCKET,
            "Key": ANY,
            "Body": ANY,
            "ContentType": "application/x-ndjson",
        },
    )

    response = processor.process(kinesis_event([_reading("s-1"), _reading("s-2"), b"junk"]))

    assert response == {"batchItemFailures": []}
    dynamodb_stub.assert_no_pending_responses()
    s3_stub.assert_no_pending_responses()


def test_items_a_stubber_hands_back_unprocessed_are_sent_again(stubbed) -> None:
    """GIVEN a Stubber whose first BatchWriteItem answer hands one of two items back unprocessed
    WHEN a batch of the two readings is processed
    THEN a second BatchWriteItem carries exactly that item, and no record is reported.
    """
    processor, dynamodb_stub, _ = stubbed
    unprocessed = {
        "device_id": {"S": "s-2"},
        "timestamp": {"N": "1700100001"},
        "temperature": {"N": "21"},
    }
    dynamodb_stub.add_response(
        "batch_write_item",
        {"UnprocessedItems": {TABLE: [{"PutRequest": {"Item": unprocessed}}]}},
    )
    dynamodb_stub.add_response(
        "batch_write_item",
        {"UnprocessedItems": {}},
        expected_params={
            "RequestItems": {TABLE: [{"PutRequest": {"Item": _expected_item("s-2", 1, 1)}}]}
        },
    )

    response = processor.process(
        kinesis_event([_reading("s-1"), _reading("s-2", 1)]), FakeContext(10_000)
    )

    assert response == {"batchItemFailures": []}
    dynamodb_stub.assert_no_pending_responses()


def test_hooks_on_the_clients_events_see_every_request(fake_aws: FakeAws) -> None:
    """GIVEN hooks registered on the processor's clients, as tracing tools register them: one on
    before-parameter-build (the parameters asked for) and one on before-send (the request as it
    goes on the wire, where moto answers); and an endpoint that throttles the first
    BatchWriteItem and answers the first PutObject with 503
    WHEN a batch of 60 readings (three requests) and two malformed records is processed
    THEN the before-send hook saw every request the endpoint received, retries included; the
    bodies it saw hold exactly the items stored; the parameter hook saw every reading's item.
    """
    dynamodb = make_client("dynamodb", 5, endpoint_url=fake_aws.endpoint_url)
    s3 = make_client("s3", 5, endpoint_url=fake_aws.endpoint_url)
    on_the_wire: Counter[str] = Counter()
    sent_devices: list[str] = []
    asked_devices: list[str] = []

    def before_send(request, event_name: str, **_) -> None:
        operation = event_name.rpartition(".")[2]
        on_the_wire[operation] += 1
        if operation == "BatchWriteItem":
            for write in json.loads(request.body)["RequestItems"][TABLE]:
                sent_devices.append(write["PutRequest"]["Item"]["device_id"]["S"])

    def before_parameter_build(params, event_name: str, **_) -> None:
        if event_name.endswith(".BatchWriteItem"):
            for write in params["RequestItems"][TABLE]:
                asked_devices.append(write["PutRequest"]["Item"]["device_id"]["S"])

    for client in (dynamodb, s3):
        client.meta.events.register("before-send", before_send)
        client.meta.events.register("before-parameter-build", before_parameter_build)
    processor = StreamProcessor(
        Config(table_name=TABLE, quarantine_bucket=BUCKET, write_concurrency=3),
        dynamodb=dynamodb,
        s3=s3,
    )
    fake_aws.throttle_batch_writes = 1
    fake_aws.s3_unavailable = True
    original_put_object = fake_aws.put_object

    def recover_after_first(bucket: str, key: str, body: bytes) -> int:
        status = original_put_object(bucket, key, body)
        fake_aws.s3_unavailable = False
        return status

    fake_aws.put_object = recover_after_first  # type: ignore[method-assign]
    devices = [f"sensor-{i:02d}" for i in range(60)]

    try:
        response = processor.process(
            kinesis_event([_reading(d) for d in devices] + [b"junk", b"{}"]), FakeContext(10_000)
        )
    finally:
        processor.close()

    assert response == {"batchItemFailures": []}
    assert on_the_wire == {"BatchWriteItem": 4, "PutObject": 2}
    assert on_the_wire["BatchWriteItem"] == fake_aws.count("BatchWriteItem")
    assert on_the_wire["PutObject"] == fake_aws.count("PutObject")
    stored = sorted(device for device, _ in fake_aws.items)
    assert stored == devices
    assert sorted(set(sent_devices)) == stored
    assert sorted(asked_devices) == sorted(sent_devices)


def test_a_client_without_the_processors_handlers_still_writes_encoded_items(
    fake_aws: FakeAws,
) -> None:
    """GIVEN a plain DynamoDB client on which the processor never installed its handlers
    WHEN batch_write_item is called with EncodedItem items
    THEN botocore serialises them as the mappings they are and the items arrive intact.
    """
    client = make_client("dynamodb", 1, endpoint_url=fake_aws.endpoint_url)
    item = {"device_id": {"S": "s-1"}, "timestamp": {"N": "1700100000"}, "note": {"S": "é"}}

    client.batch_write_item(
        RequestItems={TABLE: [{"PutRequest": {"Item": EncodedItem(json.dumps(item).encode())}}]}
    )

    assert fake_aws.items == {("s-1", "1700100000"): item}
