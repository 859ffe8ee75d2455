"""Throttling, UnprocessedItems, 5xx and an S3 outage, played by a real loopback HTTP endpoint."""

from __future__ import annotations

import json
import math
import time

from local_cloud.ports import free_port
from stream_processor.aws_clients import make_client
from stream_processor.config import Config
from stream_processor.handler import StreamProcessor
from tests.support.fake_aws import FakeAws
from tests.support.kinesis_events import FakeContext, kinesis_event, sequence_number


def _readings(devices: list[str]) -> list[dict]:
    return [
        {"device_id": d, "timestamp": 1700100000 + i, "temperature": 20, "humidity": 50}
        for i, d in enumerate(devices)
    ]


def test_throttling_and_unprocessed_items_are_retried_until_stored(
    fake_aws: FakeAws, fake_processor: StreamProcessor
) -> None:
    """GIVEN DynamoDB throttles two requests, then leaves one device's item unprocessed twice
    WHEN a batch of ten readings is processed
    THEN the processor retries (five requests in all, resending only what was not stored),
    all ten items are stored and nothing is reported.
    """
    fake_aws.throttle_batch_writes = 2
    fake_aws.unprocessed_devices = {"sensor-3": 2}

    response = fake_processor.process(
        kinesis_event(_readings([f"sensor-{i}" for i in range(10)])), FakeContext(10_000)
    )

    assert response == {"batchItemFailures": []}
    assert fake_aws.count("BatchWriteItem") == 5
    assert len(fake_aws.items) == 10


def test_server_errors_are_retried(fake_aws: FakeAws, fake_processor: StreamProcessor) -> None:
    """GIVEN DynamoDB answers one request with HTTP 500
    WHEN a batch is processed
    THEN the request is sent again and the readings are stored, nothing reported.
    """
    fake_aws.fail_batch_writes_500 = 1

    response = fake_processor.process(kinesis_event(_readings(["a", "b"])), FakeContext(10_000))

    assert response == {"batchItemFailures": []}
    assert fake_aws.count("BatchWriteItem") == 2
    assert sorted(device for device, _ in fake_aws.items) == ["a", "b"]


def test_an_answer_damaged_in_transit_is_not_trusted(
    fake_aws: FakeAws, fake_processor: StreamProcessor
) -> None:
    """GIVEN DynamoDB's answer to the first request arrives with a CRC32 that does not match it
    WHEN a batch is processed
    THEN the processor does not trust that answer (it might hide unprocessed items) and sends
    the request again; the readings are stored and nothing is reported.
    """
    fake_aws.damage_batch_write_answers = 1

    response = fake_processor.process(kinesis_event(_readings(["a", "b"])), FakeContext(10_000))

    assert response == {"batchItemFailures": []}
    assert fake_aws.count("BatchWriteItem") == 2
    assert sorted(device for device, _ in fake_aws.items) == ["a", "b"]


def test_unreachable_dynamodb_reports_the_readings_and_still_quarantines(
    fake_aws: FakeAws,
) -> None:
    """GIVEN a DynamoDB endpoint where nothing listens (connections refused), S3 working
    WHEN a batch of two readings and one malformed payload is processed with 1.3 s left
    THEN the processor retries until its deadline, reports exactly the two readings so Lambda
    delivers them again, quarantines the malformed payload, and returns before the timeout.
    """
    processor = StreamProcessor(
        Config(table_name="readings", quarantine_bucket="quarantine", write_concurrency=2),
        dynamodb=make_client("dynamodb", 3, endpoint_url=f"http://127.0.0.1:{free_port()}"),
        s3=make_client("s3", 3, endpoint_url=fake_aws.endpoint_url),
    )
    started = time.monotonic()
    try:
        response = processor.process(
            kinesis_event([*_readings(["a", "b"]), b"not json"]), FakeContext(1_300)
        )
    finally:
        processor.close()

    assert time.monotonic() - started < 1.3
    assert response == {
        "batchItemFailures": [
            {"itemIdentifier": sequence_number(0)},
            {"itemIdentifier": sequence_number(1)},
        ]
    }
    [body] = fake_aws.objects.values()
    assert [json.loads(line)["sequence_number"] for line in body.splitlines()] == [
        sequence_number(2)
    ]


def test_records_still_unprocessed_at_the_deadline_are_reported_exactly(
    fake_aws: FakeAws, fake_processor: StreamProcessor
) -> None:
    """GIVEN DynamoDB never accepts one device's item, and a duplicate record shares its key
    WHEN a batch of 60 readings (three requests) is processed with 1.3 s left in the invocation
    THEN the processor retries until its deadline, then reports exactly the two records with
    that key, stores every other reading, and returns before Lambda's timeout.
    """
    devices = [f"sensor-{i}" for i in range(60)]
    payloads = _readings(devices)
    payloads.append(dict(payloads[7], temperature=21))  # same key as sensor-7: a duplicate
    fake_aws.unprocessed_devices = {"sensor-7": math.inf}
    started = time.monotonic()

    response = fake_processor.process(kinesis_event(payloads), FakeContext(1_300))

    assert time.monotonic() - started < 1.3
    assert response == {
        "batchItemFailures": [
            {"itemIdentifier": sequence_number(7)},
            {"itemIdentifier": sequence_number(60)},
        ]
    }
    assert fake_aws.count("BatchWriteItem") > 3  # the stuck item was retried
    assert sorted(device for device, _ in fake_aws.items) == sorted(set(devices) - {"sensor-7"})


def test_a_request_dynamodb_refuses_outright_is_reported_not_lost(
    fake_aws: FakeAws, fake_processor: StreamProcessor
) -> None:
    """GIVEN DynamoDB rejects a request as invalid (a ValidationException is not transient)
    WHEN a batch of two readings is processed
    THEN the request is not retried and both records are reported for redelivery.
    """
    fake_aws.reject_batch_writes = 1

    response = fake_processor.process(kinesis_event(_readings(["a", "b"])), FakeContext(10_000))

    assert response == {
        "batchItemFailures": [
            {"itemIdentifier": sequence_number(0)},
            {"itemIdentifier": sequence_number(1)},
        ]
    }
    assert fake_aws.count("BatchWriteItem") == 1
    assert fake_aws.items == {}


def test_s3_outage_reports_the_records_to_quarantine(
    fake_aws: FakeAws, fake_processor: StreamProcessor
) -> None:
    """GIVEN S3 answers every PutObject with 503 SlowDown
    WHEN a batch with one valid reading and two malformed records is processed
    THEN the upload is retried, the two malformed records are reported for retry, and the valid
    reading is stored and not reported.
    """
    fake_aws.s3_unavailable = True

    response = fake_processor.process(
        kinesis_event([b"junk", *_readings(["ok"]), b"{}"]), FakeContext(1_300)
    )

    assert response == {
        "batchItemFailures": [
            {"itemIdentifier": sequence_number(0)},
            {"itemIdentifier": sequence_number(2)},
        ]
    }
    assert fake_aws.count("PutObject") > 1
    assert list(fake_aws.items) == [("ok", "1700100000")]


def test_s3_recovers_within_the_invocation(
    fake_aws: FakeAws, fake_processor: StreamProcessor
) -> None:
    """GIVEN S3 is unavailable when the batch starts and back a moment later
    WHEN a batch with a malformed record is processed
    THEN the retried upload succeeds, one quarantine object holds the record, nothing reported.
    """
    fake_aws.s3_unavailable = True
    original = fake_aws.put_object

    def recover_after_first(bucket: str, key: str, body: bytes) -> int:
        status = original(bucket, key, body)
        fake_aws.s3_unavailable = False
        return status

    fake_aws.put_object = recover_after_first  # type: ignore[method-assign]

    response = fake_processor.process(kinesis_event([b"junk"]), FakeContext(10_000))

    assert response == {"batchItemFailures": []}
    [(bucket, key)] = fake_aws.objects
    assert bucket == "quarantine" and key.startswith("quarantine/dt=2023-11-16/")
    [line] = [json.loads(x) for x in fake_aws.objects[(bucket, key)].splitlines()]
    assert line["reason"] == "INVALID_JSON"
