"""DynamoDB exports from the local cloud, over its HTTP API, as DynamoDB makes them.

Incremental exports need windows of 15 minutes or more, ending in the past: the
tests move the clock (time-machine) instead of waiting. A frozen clock gives
each write a known write time (the clock's, one microsecond more for each
further write), so the windows' edges can be pinned to the microsecond.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import math
import pickle
import time
import uuid
from datetime import UTC, datetime

import boto3
import pytest
import time_machine
from botocore.exceptions import ClientError

from local_cloud import defaults
from local_cloud.dynamodb_exports import ChangeJournal, TableExport, forget_image
from tests.support.readings_table import create_readings_table

pytestmark = pytest.mark.integration

MINUTE = 60.0
HOUR = 3600.0


# --- helpers -----------------------------------------------------------------------------


@pytest.fixture
def aws(aws_endpoint):
    """DynamoDB and S3 clients and a fresh bucket."""
    dynamodb, s3 = boto3.client("dynamodb"), boto3.client("s3")
    bucket = f"exports-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": defaults.REGION}
    )
    return {"dynamodb": dynamodb, "s3": s3, "bucket": bucket}


def new_table(dynamodb, pitr: bool = True) -> tuple[str, str, float]:
    """A readings-shaped table; returns its name, ARN and when PITR was turned on."""
    name = f"readings-{uuid.uuid4().hex[:8]}"
    table = create_readings_table(dynamodb, name, pitr=pitr)
    arn = table["TableArn"]
    enabled = 0.0
    if pitr:
        described = table["PointInTimeRecoveryDescription"]
        # A whole second just after it (the API reports milliseconds): every time the
        # tests build from it is then exact to the microsecond.
        enabled = float(math.floor(described["EarliestRestorableDateTime"].timestamp()) + 1)
    return name, arn, enabled


@pytest.fixture
def table(aws):
    """A fresh table with PITR on: (name, ARN, epoch seconds PITR was turned on)."""
    return new_table(aws["dynamodb"])


def at(epoch_seconds: float):
    """The clock stopped at `epoch_seconds` inside the block (for the emulator too)."""
    return time_machine.travel(epoch_seconds, tick=False)


def reading(device: str, timestamp: int, temperature: float = 21.5) -> dict:
    """A reading item as DynamoDB JSON."""
    return {
        "device_id": {"S": device},
        "timestamp": {"N": str(timestamp)},
        "temperature": {"N": str(temperature)},
    }


def key(device: str, timestamp: int) -> dict:
    """A reading's primary key as DynamoDB JSON."""
    return {"device_id": {"S": device}, "timestamp": {"N": str(timestamp)}}


def micros(epoch_seconds: float) -> int:
    """Epoch seconds as the whole microseconds the emulator's clock reads."""
    return round(epoch_seconds * 1_000_000)


def moment(epoch_seconds: float) -> datetime:
    """Epoch seconds as an aware datetime, the form boto3 sends."""
    return datetime.fromtimestamp(epoch_seconds, UTC)


def wait(dynamodb, export_arn: str, timeout: float = 30.0) -> dict:
    """DescribeExport until the export leaves IN_PROGRESS."""
    deadline = time.monotonic() + timeout
    while True:
        description = dynamodb.describe_export(ExportArn=export_arn)["ExportDescription"]
        if description["ExportStatus"] != "IN_PROGRESS":
            return description
        assert time.monotonic() < deadline, f"export still in progress: {description}"
        time.sleep(0.02)


def export(aws, table_arn: str, **request) -> dict:
    """Start an export into the test's bucket and wait for it; returns its final description."""
    started = aws["dynamodb"].export_table_to_point_in_time(
        TableArn=table_arn, S3Bucket=aws["bucket"], **request
    )["ExportDescription"]
    return wait(aws["dynamodb"], started["ExportArn"])


def incremental(aws, table_arn: str, start: float, end: float, view: str = "NEW_AND_OLD_IMAGES"):
    """An incremental export of the writes in [start, end); returns its description."""
    return export(
        aws,
        table_arn,
        S3Prefix="incremental",
        ExportType="INCREMENTAL_EXPORT",
        IncrementalExportSpecification={
            "ExportFromTime": moment(start),
            "ExportToTime": moment(end),
            "ExportViewType": view,
        },
    )


def get(aws, key_: str) -> bytes:
    """An object's bytes from the test's bucket."""
    return aws["s3"].get_object(Bucket=aws["bucket"], Key=key_)["Body"].read()


def lines_of(aws, description: dict) -> list[dict]:
    """Every data line of a COMPLETED export, found the way a reader finds them: from
    ExportManifest to the summary, to the files manifest, to the data files."""
    assert description["ExportStatus"] == "COMPLETED", description
    summary = json.loads(get(aws, description["ExportManifest"]))
    lines = []
    for entry in get(aws, summary["manifestFilesS3Key"]).decode().splitlines():
        data = gzip.decompress(get(aws, json.loads(entry)["dataFileS3Key"]))
        lines += [json.loads(line) for line in data.decode().splitlines()]
    return lines


def by_key(lines: list[dict]) -> dict[tuple[str, int], dict]:
    """Incremental lines by (device_id, timestamp); fails if an item has two lines."""
    found: dict[tuple[str, int], dict] = {}
    for line in lines:
        ident = (line["Keys"]["device_id"]["S"], int(line["Keys"]["timestamp"]["N"]))
        assert ident not in found, f"two lines for {ident}"
        found[ident] = line
    return found


def temperature(image: dict) -> float:
    """The temperature of an image in DynamoDB JSON."""
    return float(image["temperature"]["N"])


def keys_under(aws, prefix: str) -> list[str]:
    """Every object key under `prefix` in the test's bucket."""
    listed = aws["s3"].list_objects_v2(Bucket=aws["bucket"], Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def md5_base64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


# --- layout and manifests ----------------------------------------------------------------


def test_full_export_writes_dynamodbs_layout_and_manifests(aws, table):
    """GIVEN a table of three readings
    WHEN it is exported in full under a prefix
    THEN the export folder holds `_started`, both manifests with their `.md5` and the data
    files in `data/`; the manifests agree with the files (counts, MD5, ETag, full keys);
    and the lines are the table's items as `{"Item": ...}`."""
    name, arn, _ = table
    items = [reading("a", 1, 20.0), reading("a", 2, 21.0), reading("b", 1, 22.0)]
    for item in items:
        aws["dynamodb"].put_item(TableName=name, Item=item)

    started = aws["dynamodb"].export_table_to_point_in_time(
        TableArn=arn, S3Bucket=aws["bucket"], S3Prefix="exports/full"
    )["ExportDescription"]
    description = wait(aws["dynamodb"], started["ExportArn"])

    export_id = description["ExportArn"].rsplit("/", 1)[1]
    base = f"exports/full/AWSDynamoDB/{export_id}/"
    assert description["ExportArn"] == f"{arn}/export/{export_id}"
    assert description["ExportManifest"] == base + "manifest-summary.json"
    keys = keys_under(aws, "exports/full/")
    data_keys = [k for k in keys if k.startswith(base + "data/")]
    assert sorted(set(keys) - set(data_keys)) == [
        base + "_started",
        base + "manifest-files.json",
        base + "manifest-files.md5",
        base + "manifest-summary.json",
        base + "manifest-summary.md5",
    ]
    assert data_keys and all(k.endswith(".json.gz") for k in data_keys)
    assert get(aws, base + "_started") == b""
    for manifest in ("manifest-files", "manifest-summary"):
        content = get(aws, f"{base}{manifest}.json")
        assert get(aws, f"{base}{manifest}.md5").decode() == md5_base64(content)

    summary = json.loads(get(aws, base + "manifest-summary.json"))
    assert summary["version"] == "2020-06-30"
    assert summary["exportArn"] == description["ExportArn"]
    assert summary["tableArn"] == arn
    assert summary["tableId"] == description["TableId"]
    assert summary["s3Bucket"] == aws["bucket"]
    assert summary["s3Prefix"] == "exports/full"
    assert summary["manifestFilesS3Key"] == base + "manifest-files.json"
    assert summary["itemCount"] == 3
    assert summary["outputFormat"] == "DYNAMODB_JSON"
    assert "exportType" not in summary
    assert summary["exportTime"] <= summary["endTime"]

    entries = [json.loads(line) for line in get(aws, base + "manifest-files.json").splitlines()]
    assert sorted(e["dataFileS3Key"] for e in entries) == data_keys
    lines = []
    for entry in entries:
        data = get(aws, entry["dataFileS3Key"])
        head = aws["s3"].head_object(Bucket=aws["bucket"], Key=entry["dataFileS3Key"])
        assert entry["md5Checksum"] == md5_base64(data)
        assert entry["etag"] == head["ETag"].strip('"')
        in_file = gzip.decompress(data).decode().splitlines()
        assert entry["itemCount"] == len(in_file)
        lines += [json.loads(line) for line in in_file]
    assert sorted(lines, key=json.dumps) == sorted(({"Item": i} for i in items), key=json.dumps)
    assert description["ItemCount"] == 3


def test_every_attribute_type_is_exported_as_dynamodb_json(aws, table):
    """GIVEN an item with an attribute of every DynamoDB type, binary ones included
    WHEN the table is exported in full, once as written and once after the local cloud
    has forgotten the JSON it keeps beside each item (as after a restore)
    THEN both exports hold the item exactly, binary values in base64."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    name, arn, _ = table
    item = {
        **reading("types", 1),
        "text": {"S": 'naïve "quoted"\n'},
        "blob": {"B": b"\x00\xffbinary"},
        "blobs": {"BS": [b"\x01", b"\x02"]},
        "strings": {"SS": ["a", "b"]},
        "numbers": {"NS": ["1", "2.5"]},
        "flag": {"BOOL": True},
        "nothing": {"NULL": True},
        "list": {"L": [{"S": "x"}, {"N": "3"}, {"M": {"deep": {"B": b"\x03"}}}]},
        "map": {"M": {"inner": {"L": [{"BOOL": False}]}, "n": {"N": "-1E+3"}}},
    }
    aws["dynamodb"].put_item(TableName=name, Item=item)

    def as_json(value):
        if isinstance(value, bytes):
            return base64.b64encode(value).decode()
        if isinstance(value, dict):
            return {k: as_json(v) for k, v in value.items()}
        if isinstance(value, list):
            return [as_json(v) for v in value]
        return value

    expected = [{"Item": as_json(item)}]
    assert lines_of(aws, export(aws, arn)) == expected
    stored = dynamodb_backends[DEFAULT_ACCOUNT_ID][defaults.REGION].tables[name]
    for by_range in stored.items.values():
        for kept in by_range.values():
            forget_image(kept)
    assert lines_of(aws, export(aws, arn)) == expected


def test_export_is_in_progress_then_completed_with_its_counts(aws, table):
    """GIVEN a table with one reading
    WHEN an export is requested
    THEN the call answers IN_PROGRESS without counts, and DescribeExport later answers
    COMPLETED with ItemCount, BilledSizeBytes, ExportManifest and EndTime."""
    name, arn, _ = table
    aws["dynamodb"].put_item(TableName=name, Item=reading("a", 1))

    started = aws["dynamodb"].export_table_to_point_in_time(TableArn=arn, S3Bucket=aws["bucket"])
    started = started["ExportDescription"]

    assert started["ExportStatus"] == "IN_PROGRESS"
    for member in ("ItemCount", "BilledSizeBytes", "ExportManifest", "EndTime"):
        assert member not in started
    assert started["ExportFormat"] == "DYNAMODB_JSON"
    assert started["S3SseAlgorithm"] == "AES256"
    final = wait(aws["dynamodb"], started["ExportArn"])
    assert final["ExportStatus"] == "COMPLETED"
    assert final["ItemCount"] == 1
    assert final["BilledSizeBytes"] > 0
    assert final["EndTime"] >= final["StartTime"]
    assert final["ExportManifest"].startswith("AWSDynamoDB/")  # no prefix: from the root


def test_empty_table_exports_one_empty_data_file(aws, table):
    """GIVEN a table with no items
    WHEN it is exported in full
    THEN the export completes with zero items and one data file that holds nothing."""
    _, arn, _ = table
    description = export(aws, arn)
    assert description["ItemCount"] == 0
    summary = json.loads(get(aws, description["ExportManifest"]))
    entries = get(aws, summary["manifestFilesS3Key"]).decode().splitlines()
    assert len(entries) == 1 and json.loads(entries[0])["itemCount"] == 0
    assert gzip.decompress(get(aws, json.loads(entries[0])["dataFileS3Key"])) == b""


def test_full_export_is_the_table_as_of_export_time(aws, table):
    """GIVEN readings written, then (after a chosen ExportTime) one updated, one deleted
    and one added
    WHEN the table is exported in full as of that ExportTime
    THEN the export holds the table as it was then: the old value, the deleted item,
    and not the added one."""
    name, arn, enabled = table
    with at(enabled + MINUTE):
        for item in (reading("a", 1, 20.0), reading("a", 2, 21.0)):
            aws["dynamodb"].put_item(TableName=name, Item=item)
    with at(enabled + 3 * MINUTE):
        aws["dynamodb"].update_item(
            TableName=name,
            Key=key("a", 1),
            UpdateExpression="SET temperature = :t",
            ExpressionAttributeValues={":t": {"N": "30.0"}},
        )
        aws["dynamodb"].delete_item(TableName=name, Key=key("a", 2))
        aws["dynamodb"].put_item(TableName=name, Item=reading("c", 1))

    with at(enabled + 5 * MINUTE):
        description = export(aws, arn, ExportTime=moment(enabled + 2 * MINUTE))

    items = {
        (i["Item"]["device_id"]["S"], int(i["Item"]["timestamp"]["N"])): i["Item"]
        for i in lines_of(aws, description)
    }
    assert sorted(items) == [("a", 1), ("a", 2)]
    assert temperature(items[("a", 1)]) == 20.0
    assert description["ExportTime"] == moment(enabled + 2 * MINUTE)


def test_full_export_as_of_export_time_on_a_table_keyed_by_binary_hash_alone(aws):
    """GIVEN a table keyed by a binary hash key alone, two items written, then (after a
    chosen ExportTime) one changed and one deleted
    WHEN it is exported in full as of that ExportTime
    THEN both items are exported as they were then."""
    name = f"blobs-{uuid.uuid4().hex[:8]}"
    dynamodb = aws["dynamodb"]
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "B"}],
        BillingMode="PAY_PER_REQUEST",
    )
    arn = dynamodb.describe_table(TableName=name)["Table"]["TableArn"]
    described = dynamodb.update_continuous_backups(
        TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    enabled = float(math.floor(described["EarliestRestorableDateTime"].timestamp()) + 1)
    with at(enabled + MINUTE):
        dynamodb.put_item(TableName=name, Item={"id": {"B": b"\x01"}, "v": {"N": "1"}})
        dynamodb.put_item(TableName=name, Item={"id": {"B": b"\x02"}, "v": {"N": "2"}})
    with at(enabled + 3 * MINUTE):
        dynamodb.put_item(TableName=name, Item={"id": {"B": b"\x01"}, "v": {"N": "10"}})
        dynamodb.delete_item(TableName=name, Key={"id": {"B": b"\x02"}})

    with at(enabled + 5 * MINUTE):
        lines = lines_of(aws, export(aws, arn, ExportTime=moment(enabled + 2 * MINUTE)))

    assert sorted((line["Item"]["id"]["B"], line["Item"]["v"]["N"]) for line in lines) == [
        (base64.b64encode(b"\x01").decode(), "1"),
        (base64.b64encode(b"\x02").decode(), "2"),
    ]


def test_incremental_export_writes_dynamodbs_layout_and_manifests(aws, table):
    """GIVEN a reading written inside a window
    WHEN the window is exported incrementally
    THEN its manifests sit in the export's folder and its data file in the `data/` folder
    all incremental exports share; the summary and the description say which window and
    view; and an export this small is billed DynamoDB's 10 MB minimum."""
    name, arn, enabled = table
    with at(enabled + MINUTE):
        aws["dynamodb"].put_item(TableName=name, Item=reading("a", 1))

    with at(enabled + HOUR):
        description = incremental(aws, arn, enabled, enabled + 30 * MINUTE)

    export_id = description["ExportArn"].rsplit("/", 1)[1]
    base = f"incremental/AWSDynamoDB/{export_id}/"
    assert sorted(keys_under(aws, base)) == [
        base + "_started",
        base + "manifest-files.json",
        base + "manifest-files.md5",
        base + "manifest-summary.json",
        base + "manifest-summary.md5",
    ]
    summary = json.loads(get(aws, base + "manifest-summary.json"))
    assert summary["version"] == "2023-08-01"
    assert summary["exportType"] == "INCREMENTAL_EXPORT"
    assert summary["outputView"] == "NEW_AND_OLD_IMAGES"
    assert summary["exportFromTime"] == moment(enabled).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment(enabled).microsecond // 1000:03d}Z"
    )
    assert summary["itemCount"] == 1
    assert summary["billedSizeBytes"] == 10_000_000
    entries = [json.loads(line) for line in get(aws, summary["manifestFilesS3Key"]).splitlines()]
    assert [e["dataFileS3Key"].startswith("incremental/AWSDynamoDB/data/") for e in entries] == [
        True
    ]
    assert entries[0]["md5Checksum"] == md5_base64(get(aws, entries[0]["dataFileS3Key"]))
    assert description["ExportType"] == "INCREMENTAL_EXPORT"
    assert description["IncrementalExportSpecification"]["ExportViewType"] == "NEW_AND_OLD_IMAGES"
    assert description["ItemCount"] == 1
    assert description["BilledSizeBytes"] == 10_000_000
    assert "ExportTime" not in description


# --- what an incremental export holds --------------------------------------------------


def test_an_item_written_several_times_in_a_window_has_one_line_with_its_final_state(aws, table):
    """GIVEN a reading inserted and then updated twice inside one window
    WHEN the window is exported
    THEN it has exactly one line: the last image, no old image (it did not exist before the
    window), and the last write's time."""
    name, arn, enabled = table
    with at(enabled + MINUTE):
        aws["dynamodb"].put_item(TableName=name, Item=reading("a", 1, 20.0))
    with at(enabled + 2 * MINUTE):
        aws["dynamodb"].put_item(TableName=name, Item=reading("a", 1, 21.0))
    with at(enabled + 3 * MINUTE):
        aws["dynamodb"].update_item(
            TableName=name,
            Key=key("a", 1),
            UpdateExpression="SET temperature = :t",
            ExpressionAttributeValues={":t": {"N": "22.0"}},
        )

    with at(enabled + HOUR):
        lines = lines_of(aws, incremental(aws, arn, enabled, enabled + 30 * MINUTE))

    (line,) = lines
    assert list(line) == ["Metadata", "Keys", "NewImage"]
    assert line["Keys"] == key("a", 1)
    assert temperature(line["NewImage"]) == 22.0
    assert line["Metadata"]["WriteTimestampMicros"] == {"N": str(micros(enabled + 3 * MINUTE))}


def test_an_update_that_creates_an_item_is_an_insert(aws, table):
    """GIVEN an UpdateItem on a key that does not exist (DynamoDB creates the item)
    WHEN the window is exported
    THEN the item has one line with its new image and no old image."""
    name, arn, enabled = table
    with at(enabled + MINUTE):
        aws["dynamodb"].update_item(
            TableName=name,
            Key=key("new", 1),
            UpdateExpression="SET temperature = :t",
            ExpressionAttributeValues={":t": {"N": "19.5"}},
        )

    with at(enabled + HOUR):
        (line,) = lines_of(aws, incremental(aws, arn, enabled, enabled + 30 * MINUTE))

    assert line["NewImage"] == reading("new", 1, 19.5)
    assert "OldImage" not in line
    assert line["Metadata"]["WriteTimestampMicros"] == {"N": str(micros(enabled + MINUTE))}


def test_an_item_inserted_and_deleted_in_a_window_has_no_line(aws, table):
    """GIVEN a reading inserted and deleted inside one window, beside one that stays
    WHEN the window is exported
    THEN only the one that stays has a line."""
    name, arn, enabled = table
    with at(enabled + MINUTE):
        aws["dynamodb"].put_item(TableName=name, Item=reading("gone", 1))
        aws["dynamodb"].put_item(TableName=name, Item=reading("stays", 1))
    with at(enabled + 2 * MINUTE):
        aws["dynamodb"].delete_item(TableName=name, Key=key("gone", 1))

    with at(enabled + HOUR):
        description = incremental(aws, arn, enabled, enabled + 30 * MINUTE)

    assert list(by_key(lines_of(aws, description))) == [("stays", 1)]
    assert description["ItemCount"] == 1


@pytest.mark.parametrize("view", ["NEW_AND_OLD_IMAGES", "NEW_IMAGE"])
def test_a_delete_gives_the_keys_and_with_old_images_the_old_image(aws, table, view):
    """GIVEN a reading written in one window and deleted in the next
    WHEN the second window is exported
    THEN its line has the keys and no new image; with NEW_AND_OLD_IMAGES also the image
    it had, with NEW_IMAGE nothing more."""
    name, arn, enabled = table
    with at(enabled + MINUTE):
        aws["dynamodb"].put_item(TableName=name, Item=reading("a", 1, 20.0))
    with at(enabled + 40 * MINUTE):
        aws["dynamodb"].delete_item(TableName=name, Key=key("a", 1))

    with at(enabled + 2 * HOUR):
        (line,) = lines_of(aws, incremental(aws, arn, enabled + 30 * MINUTE, enabled + HOUR, view))

    assert line["Keys"] == key("a", 1)
    assert "NewImage" not in line
    if view == "NEW_AND_OLD_IMAGES":
        assert line["OldImage"] == reading("a", 1, 20.0)
    else:
        assert list(line) == ["Metadata", "Keys"]
    assert line["Metadata"]["WriteTimestampMicros"] == {"N": str(micros(enabled + 40 * MINUTE))}


@pytest.mark.parametrize("view", ["NEW_AND_OLD_IMAGES", "NEW_IMAGE"])
def test_an_update_of_an_existing_key_gives_the_new_and_the_old_image(aws, table, view):
    """GIVEN a reading written in one window, then overwritten (PutItem) and updated
    (UpdateItem) in the next
    WHEN the second window is exported
    THEN its line has the final image and, with NEW_AND_OLD_IMAGES, the image from before
    the window (not the one in between)."""
    name, arn, enabled = table
    with at(enabled + MINUTE):
        aws["dynamodb"].put_item(TableName=name, Item=reading("a", 1, 20.0))
    with at(enabled + 40 * MINUTE):
        aws["dynamodb"].put_item(TableName=name, Item=reading("a", 1, 25.0))
    with at(enabled + 41 * MINUTE):
        aws["dynamodb"].update_item(
            TableName=name,
            Key=key("a", 1),
            UpdateExpression="SET humidity = :h",
            ExpressionAttributeValues={":h": {"N": "40"}},
        )

    with at(enabled + 2 * HOUR):
        (line,) = lines_of(aws, incremental(aws, arn, enabled + 30 * MINUTE, enabled + HOUR, view))

    assert line["NewImage"] == {**reading("a", 1, 25.0), "humidity": {"N": "40"}}
    if view == "NEW_AND_OLD_IMAGES":
        assert line["OldImage"] == reading("a", 1, 20.0)
    else:
        assert "OldImage" not in line


def test_overlapping_windows_each_hold_the_writes_inside_them(aws, table):
    """GIVEN writes at four known times, one exactly at the edge of two windows
    WHEN two overlapping windows are exported
    THEN each holds exactly the writes in [ExportFromTime, ExportToTime): the edge write is
    in the window it starts and not in the one it ends; writes in the overlap are in both."""
    name, arn, enabled = table
    edge = enabled + 40 * MINUTE
    writes = {
        ("w", 1): enabled + 10 * MINUTE,
        ("w", 2): enabled + 35 * MINUTE,
        ("w", 3): edge,
        ("w", 4): enabled + 50 * MINUTE,
    }
    for (device, number), written in writes.items():
        with at(written):
            aws["dynamodb"].put_item(TableName=name, Item=reading(device, number))

    with at(enabled + 2 * HOUR):
        first = by_key(lines_of(aws, incremental(aws, arn, enabled, edge)))
        second = by_key(lines_of(aws, incremental(aws, arn, enabled + 30 * MINUTE, edge + HOUR)))
        from_edge = by_key(lines_of(aws, incremental(aws, arn, edge, edge + 20 * MINUTE)))

    assert sorted(first) == [("w", 1), ("w", 2)]
    assert sorted(second) == [("w", 2), ("w", 3), ("w", 4)]
    assert sorted(from_edge) == [("w", 3), ("w", 4)]
    assert first[("w", 2)] == second[("w", 2)]
    assert from_edge[("w", 3)]["Metadata"]["WriteTimestampMicros"] == {"N": str(micros(edge))}


def test_batch_and_transaction_writes_are_exported_and_a_cancelled_transaction_is_not(aws, table):
    """GIVEN readings written by BatchWriteItem, then a TransactWriteItems (put, update,
    delete) and a transaction cancelled by its condition
    WHEN the window is exported
    THEN the batch and the committed transaction are in it, the cancelled one is not."""
    name, arn, enabled = table
    with at(enabled + MINUTE):
        aws["dynamodb"].batch_write_item(
            RequestItems={name: [{"PutRequest": {"Item": reading("b", n)}} for n in range(3)]}
        )
    with at(enabled + 2 * MINUTE):
        aws["dynamodb"].transact_write_items(
            TransactItems=[
                {"Put": {"TableName": name, "Item": reading("t", 1)}},
                {
                    "Update": {
                        "TableName": name,
                        "Key": key("b", 0),
                        "UpdateExpression": "SET temperature = :t",
                        "ExpressionAttributeValues": {":t": {"N": "30.0"}},
                    }
                },
                {"Delete": {"TableName": name, "Key": key("b", 1)}},
            ]
        )
    with at(enabled + 3 * MINUTE), pytest.raises(ClientError) as cancelled:
        aws["dynamodb"].transact_write_items(
            TransactItems=[
                {"Put": {"TableName": name, "Item": reading("never", 1)}},
                {
                    "ConditionCheck": {
                        "TableName": name,
                        "Key": key("b", 2),
                        "ConditionExpression": "attribute_not_exists(device_id)",
                    }
                },
            ]
        )
    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"

    with at(enabled + HOUR):
        lines = by_key(lines_of(aws, incremental(aws, arn, enabled, enabled + 30 * MINUTE)))

    assert sorted(lines) == [("b", 0), ("b", 2), ("t", 1)]
    assert temperature(lines[("b", 0)]["NewImage"]) == 30.0


# --- AWS's validation errors --------------------------------------------------------------


def error_of(aws, table_arn: str, **request) -> tuple[str, str]:
    """The (code, message) DynamoDB-like error the export request gets."""
    with pytest.raises(ClientError) as raised:
        aws["dynamodb"].export_table_to_point_in_time(
            TableArn=table_arn, S3Bucket=aws["bucket"], **request
        )
    error = raised.value.response["Error"]
    return error["Code"], error["Message"]


def window(start: float, end: float | None = None) -> dict:
    """An incremental request for [start, end)."""
    spec = {"ExportFromTime": moment(start)}
    if end is not None:
        spec["ExportToTime"] = moment(end)
    return {"ExportType": "INCREMENTAL_EXPORT", "IncrementalExportSpecification": spec}


def test_window_limits_give_dynamodbs_errors(aws, table):
    """GIVEN a table with PITR on for two days
    WHEN incremental exports are asked for windows out of DynamoDB's limits
    THEN each gets InvalidExportTimeException in DynamoDB's words; 15 minutes and 24 hours
    exactly are accepted."""
    _, arn, enabled = table
    with at(enabled + 2 * 24 * HOUR):
        start = enabled + HOUR
        assert error_of(aws, arn, **window(start, start + 15 * MINUTE - 1)) == (
            "InvalidExportTimeException",
            "Difference between export period from time and export period to time is less "
            "than 15 minutes",
        )
        assert error_of(aws, arn, **window(start, start + 24 * HOUR + 1)) == (
            "InvalidExportTimeException",
            "Difference between export period from time and export period to time is greater "
            "than 24 hours",
        )
        future = time.time() + HOUR
        code, message = error_of(aws, arn, **window(future - HOUR, future))
        assert code == "InvalidExportTimeException"
        assert message.startswith("Incremental export period to time cannot be greater than the ")
        code, message = error_of(aws, arn, **window(enabled - HOUR, enabled + HOUR))
        assert code == "InvalidExportTimeException"
        assert message.startswith("Incremental export period from time cannot be less than the ")
        for end in (start + 15 * MINUTE, start + 24 * HOUR):
            assert export(aws, arn, **window(start, end))["ExportStatus"] == "COMPLETED"


def test_window_must_start_inside_the_pitr_window(aws, table):
    """GIVEN a table whose PITR was turned on 36 days ago (it keeps 35)
    WHEN a window starting 36 days ago is asked for, then one starting 34 days ago
    THEN the first is refused as before PITR's window, the second is exported."""
    _, arn, enabled = table
    with at(enabled + 36 * 24 * HOUR):
        code, message = error_of(aws, arn, **window(enabled + HOUR, enabled + 2 * HOUR))
        assert code == "InvalidExportTimeException"
        assert "from time cannot be less than the table creation time" in message
        start = enabled + 2 * 24 * HOUR
        assert export(aws, arn, **window(start, start + HOUR))["ExportStatus"] == "COMPLETED"


def test_without_end_a_window_ends_now(aws, table):
    """GIVEN a table with PITR on for an hour and a reading written 10 minutes ago
    WHEN an incremental export gives no ExportToTime
    THEN the window ends now and holds the reading; and from 10 minutes ago it is refused
    as shorter than 15 minutes."""
    name, arn, enabled = table
    with at(enabled + 50 * MINUTE):
        aws["dynamodb"].put_item(TableName=name, Item=reading("a", 1))
    with at(enabled + HOUR):
        described = export(aws, arn, S3Prefix="open", **window(enabled))
        assert described["IncrementalExportSpecification"]["ExportToTime"] == moment(enabled + HOUR)
        assert list(by_key(lines_of(aws, described))) == [("a", 1)]
        code, _ = error_of(aws, arn, **window(enabled + 50 * MINUTE))
        assert code == "InvalidExportTimeException"


def test_a_table_without_pitr_cannot_be_exported(aws):
    """GIVEN a table with point-in-time recovery off
    WHEN a full and an incremental export are asked for
    THEN the full one gets PointInTimeRecoveryUnavailableException and the incremental one
    InvalidExportTimeException, as DynamoDB answers them."""
    name, arn, _ = new_table(aws["dynamodb"], pitr=False)
    assert error_of(aws, arn) == (
        "PointInTimeRecoveryUnavailableException",
        f"Point in time recovery is not enabled for table '{name}'",
    )
    now = time.time()
    code, _ = error_of(aws, arn, **window(now - HOUR, now - 30 * MINUTE))
    assert code == "InvalidExportTimeException"


def test_export_time_outside_pitr_window_is_refused(aws, table):
    """GIVEN a table with PITR on
    WHEN a full export is asked for an ExportTime in the future or before PITR was on
    THEN DynamoDB's InvalidExportTimeException "Export Time is invalid" answers."""
    _, arn, enabled = table
    for when in (time.time() + HOUR, enabled - HOUR):
        assert error_of(aws, arn, ExportTime=moment(when)) == (
            "InvalidExportTimeException",
            "Export Time is invalid",
        )


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (
            {"IncrementalExportSpecification": {"ExportFromTime": moment(0)}},
            "Invalid Request: Export Type expected to be Incremental Export when incremental "
            "export specification is provided",
        ),
        (
            {"ExportType": "FULL_EXPORT", "IncrementalExportSpecification": {}},
            "Invalid Request: When Export Type is Full Export , Incremental Export "
            "Specification should not be provided",
        ),
        (
            {"ExportType": "INCREMENTAL_EXPORT"},
            "Invalid Request: Incremental Export Specification expected when export type is set "
            "as Incremental Export",
        ),
        (
            {"ExportType": "INCREMENTAL_EXPORT", "IncrementalExportSpecification": {}},
            "Invalid Request: ExportFromTime must be provided in IncrementalExportSpecification",
        ),
    ],
)
def test_contradictory_requests_are_validation_errors(aws, table, request_, message):
    """GIVEN an export request whose type and incremental specification disagree
    WHEN it is sent
    THEN DynamoDB's ValidationException answers, in DynamoDB's words."""
    _, arn, _ = table
    assert error_of(aws, arn, **request_) == ("ValidationException", message)


def test_missing_bucket_fails_the_export(aws, table):
    """GIVEN a bucket that does not exist
    WHEN a table is exported to it
    THEN the request is accepted and the export ends FAILED with S3NoSuchBucket."""
    _, arn, _ = table
    started = aws["dynamodb"].export_table_to_point_in_time(
        TableArn=arn, S3Bucket=f"missing-{uuid.uuid4().hex[:8]}"
    )["ExportDescription"]
    final = wait(aws["dynamodb"], started["ExportArn"])
    assert final["ExportStatus"] == "FAILED"
    assert final["FailureCode"] == "S3NoSuchBucket"
    assert "bucket does not exist" in final["FailureMessage"]


def test_client_token_returns_the_same_export_or_a_conflict(aws, table):
    """GIVEN an export started with a ClientToken
    WHEN the same request comes again with it, and then a different one
    THEN the first gets the same export back, the second ExportConflictException."""
    _, arn, _ = table
    token = str(uuid.uuid4())
    first = aws["dynamodb"].export_table_to_point_in_time(
        TableArn=arn, S3Bucket=aws["bucket"], ClientToken=token
    )["ExportDescription"]
    again = aws["dynamodb"].export_table_to_point_in_time(
        TableArn=arn, S3Bucket=aws["bucket"], ClientToken=token
    )["ExportDescription"]
    assert again["ExportArn"] == first["ExportArn"]
    code, message = error_of(aws, arn, ClientToken=token, S3Prefix="elsewhere")
    assert (code, message) == (
        "ExportConflictException",
        "Export conflict: Duplicate request detected with conflicting parameters",
    )
    wait(aws["dynamodb"], first["ExportArn"])


def test_describe_unknown_export_is_export_not_found(aws, table):
    """GIVEN no export with that ARN
    WHEN it is described
    THEN ExportNotFoundException answers."""
    _, arn, _ = table
    with pytest.raises(ClientError) as raised:
        aws["dynamodb"].describe_export(ExportArn=f"{arn}/export/01234567890123-deadbeef")
    assert raised.value.response["Error"]["Code"] == "ExportNotFoundException"


def test_list_exports_newest_first_and_not_for_a_deleted_table(aws, table):
    """GIVEN two exports of a table and one of another table, which is then deleted
    WHEN exports are listed for the first table and for all
    THEN the first table's two come newest first, with their type, and the deleted
    table's export is not listed."""
    _, arn, enabled = table
    full = export(aws, arn)
    with at(enabled + HOUR):
        partial = incremental(aws, arn, enabled, enabled + 30 * MINUTE)
    other_name, other_arn, _ = new_table(aws["dynamodb"])
    export(aws, other_arn)
    aws["dynamodb"].delete_table(TableName=other_name)

    listed = aws["dynamodb"].list_exports(TableArn=arn)["ExportSummaries"]
    assert listed == [
        {
            "ExportArn": partial["ExportArn"],
            "ExportStatus": "COMPLETED",
            "ExportType": "INCREMENTAL_EXPORT",
        },
        {"ExportArn": full["ExportArn"], "ExportStatus": "COMPLETED", "ExportType": "FULL_EXPORT"},
    ]
    every = [s["ExportArn"] for s in aws["dynamodb"].list_exports()["ExportSummaries"]]
    assert not any(a.startswith(other_arn) for a in every)
    page = aws["dynamodb"].list_exports(TableArn=arn, MaxResults=1)
    assert [s["ExportArn"] for s in page["ExportSummaries"]] == [partial["ExportArn"]]
    rest = aws["dynamodb"].list_exports(TableArn=arn, MaxResults=1, NextToken=page["NextToken"])
    assert [s["ExportArn"] for s in rest["ExportSummaries"]] == [full["ExportArn"]]
    assert "NextToken" not in rest


# --- the journal -----------------------------------------------------------------------------


def test_journal_and_exports_live_in_motos_state_and_survive_a_snapshot(aws, table):
    """GIVEN writes to a table and a finished export of it
    WHEN moto's table object (where the journal lives) and its exports are pickled and
    restored in place, as a snapshot of the local cloud's state is
    THEN the export is still described and an incremental export afterwards still holds
    the writes."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    name, arn, enabled = table
    with at(enabled + MINUTE):
        aws["dynamodb"].put_item(TableName=name, Item=reading("a", 1))
        aws["dynamodb"].delete_item(TableName=name, Key=key("a", 1))
        aws["dynamodb"].put_item(TableName=name, Item=reading("a", 2))
    with at(enabled + 2 * MINUTE):
        before = export(aws, arn)
    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][defaults.REGION]
    backend.tables[name] = pickle.loads(pickle.dumps(backend.tables[name]))
    backend.table_exports = pickle.loads(pickle.dumps(backend.table_exports))

    assert wait(aws["dynamodb"], before["ExportArn"]) == before
    with at(enabled + HOUR):
        assert list(by_key(lines_of(aws, incremental(aws, arn, enabled, enabled + HOUR)))) == [
            ("a", 2)
        ]


def test_an_export_in_progress_when_the_state_was_saved_is_failed_when_restored():
    """GIVEN an export still being written when the local cloud's state is pickled
    WHEN that state is restored (the thread writing it is gone)
    THEN the export says FAILED and why, instead of staying IN_PROGRESS for ever."""
    running = TableExport(
        arn="arn:aws:dynamodb:ap-southeast-2:123456789012:table/t/export/01-deadbeef",
        table_arn="arn:aws:dynamodb:ap-southeast-2:123456789012:table/t",
        table_name="t",
        table_id=str(uuid.uuid4()),
        client_token="token",
        s3_bucket="b",
        s3_bucket_owner=None,
        s3_prefix=None,
        s3_sse_algorithm="AES256",
        s3_sse_kms_key_id=None,
        export_format="DYNAMODB_JSON",
        export_type="FULL_EXPORT",
        start_us=1,
        export_time_us=1,
    )
    restored = pickle.loads(pickle.dumps(running))
    assert running.status == "IN_PROGRESS"
    assert restored.status == "FAILED"
    assert restored.description()["FailureMessage"] == (
        "the local cloud stopped while the export was being written"
    )


def test_journal_keeps_only_the_pitr_window():
    """GIVEN a journal with two full segments of writes
    WHEN a later segment is sealed with the PITR window starting after the first one
    THEN the first segment is dropped and the window's writes are read back in order,
    across sealed and recent ones."""
    journal = ChangeJournal()
    size = ChangeJournal.SEGMENT
    for n in range(2 * size):
        journal.record(f"k{n}", "{}", None, horizon_us=0)
    first_kept = next(journal.changes(0))[0]
    cut = list(journal.changes(0))[size][0]  # the first write of the second segment

    for n in range(size + 5):
        journal.record(f"later{n}", None, "{}", horizon_us=cut)

    assert len(journal) == 2 * size + 5
    times = [change[0] for change in journal.changes(0)]
    assert times[0] == cut > first_kept
    assert times == sorted(times) and len(set(times)) == len(times)
    middle = list(journal.changes(times[10], times[size + 2]))
    assert [c[0] for c in middle] == times[10 : size + 2]
