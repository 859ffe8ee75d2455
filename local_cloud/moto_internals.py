"""The one module of the local cloud that knows moto's internals.

moto's public surface is its server (the AWS APIs over HTTP) and `mock_aws`; the
local cloud also reads and calls moto's models directly: a shard's records (of a
Kinesis stream or of a table's stream) and EventBridge's pattern matcher for the event
source mapping runner, a table's items and its point-in-time recovery for
DynamoDB's exports, a crawler's crawl state for the crawler runner, every backend for
snapshots. Those internals change between releases without notice (moto 5.2.6 made a
Kinesis record's `created_at` a datetime, its `data` the payload bytes, and
`KinesisBackend.put_record` take bytes and return a pair). So every import from
moto, and every read or call of a moto object's internals outside the method
replacements in `moto_patches`, is a function here, written against the moto version
`pyproject.toml` pins. Each has a test in `tests/local_cloud/test_moto_internals.py`
named after the internal it relies on: the next upstream change fails that test, not
the demo.

`moto_patches` takes the classes it patches from `patch_targets()` here; its
replacements read the state of the very methods they replace, and each is tested
against moto's own method (`tests/local_cloud/test_moto_patches.py`).

moto is imported inside the functions: loading this module (or a module that imports
it) in a process that never starts the emulator must not load moto.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# --- the package and its clock --------------------------------------------------------


def version() -> str:
    """The installed moto's version (a snapshot of another version's state is not loaded)."""
    import moto

    return str(moto.__version__)


def default_account_id() -> str:
    """The account moto answers for when a request's credentials name none."""
    from moto.core import DEFAULT_ACCOUNT_ID

    return str(DEFAULT_ACCOUNT_ID)


def utcnow() -> dt.datetime:
    """moto's clock (naive UTC), as it stamps what it records."""
    from moto.core.utils import utcnow as moto_utcnow

    return moto_utcnow()


def private_state(model: Any) -> dict[str, Any]:
    """The attributes of one of moto's model objects (a table, an item, a backend).

    moto's models are plain objects: attributes the local cloud adds to them (a table's
    change journal, an item's image) live, are deep-copied (a transaction's rollback)
    and are pickled (snapshots) with the object.
    """
    attributes: dict[str, Any] = model.__dict__
    return attributes


# --- the server -----------------------------------------------------------------------


def server_application() -> Any:
    """moto's WSGI application answering every service (as `moto_server` runs it)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    return DomainDispatcherApplication(create_backend_app)


def server_request_handler() -> type[Any]:
    """The werkzeug request handler moto's server uses (it keeps connections alive)."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    handler: type[Any] = MotoRequestHandler
    return handler


# --- API answers ----------------------------------------------------------------------


def action_result_body(result: Any) -> Any:
    """What a response method's `ActionResult` holds (the body before serialisation)."""
    return result.result


def alarm_metric(alarm: Any) -> dict[str, Any]:
    """A CloudWatch alarm's metric as DescribeAlarmsForMetric filters on it: its
    dimensions (as a set of name and value), statistic, extended statistic, period, unit."""
    return {
        "Dimensions": frozenset((d.name, d.value) for d in alarm.dimensions),
        "Statistic": alarm.statistic,
        "ExtendedStatistic": alarm.extended_statistic,
        "Period": alarm.period,
        "Unit": alarm.unit,
    }


def action_result(body: dict[str, Any]) -> Any:
    """What a replaced API handler returns for moto to serialise as the service's answer."""
    from moto.core.responses import ActionResult

    return ActionResult(body)


def client_error(error_type: str, message: str) -> Exception:
    """An error moto answers with HTTP 400, `error_type` (`__type`) and `message`."""
    from moto.core.exceptions import JsonRESTError

    return JsonRESTError(error_type, message)


class ApiError(Exception):
    """An AWS API error moto raised: its message, HTTP status and error code."""

    def __init__(self, message: str, status: int, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


def handler_request(handler: Any) -> tuple[Any, dict[str, Any]]:
    """A DynamoDB response handler's backend and its request's parsed JSON body."""
    return handler.dynamodb_backend, dict(handler.body)


# --- Kinesis --------------------------------------------------------------------------


def kinesis_stream(region: str, account_id: str, name: str) -> Any | None:
    """moto's in-process stream object, or None when this process's moto has no such stream."""
    from moto.kinesis.models import kinesis_backends

    if account_id not in kinesis_backends or region not in kinesis_backends[account_id]:
        return None
    return kinesis_backends[account_id][region].streams.get(name)


def stream_shards(stream: Any) -> dict[str, Any]:
    """A stream's shards by shard id."""
    shards: dict[str, Any] = stream.shards
    return shards


def shard_records(shard: Any) -> dict[int, Any]:
    """A shard's records by sequence number, in order: moto numbers them 1, 2, 3... in an
    insertion-ordered dict that grows while it is read (its own methods copy or scan it)."""
    records: dict[int, Any] = shard.records
    return records


def record_partition_key(record: Any) -> str:
    """A Kinesis record's partition key."""
    return str(record.partition_key)


def record_data(record: Any) -> bytes:
    """A Kinesis record's payload bytes (moto keeps them as `put_record` was given them)."""
    data: bytes = record.data
    return data


def record_arrival(record: Any) -> float:
    """When a Kinesis record arrived, in epoch seconds (moto keeps a naive UTC datetime)."""
    created: dt.datetime = record.created_at
    return created.replace(tzinfo=dt.UTC).timestamp()


def put_kinesis_record(
    region: str, account_id: str, stream_name: str, partition_key: str, data: bytes
) -> str:
    """PutRecord through moto's Kinesis backend in this process: the record's sequence
    number, or `ApiError` where moto's PutRecord handler answers with an error."""
    from moto.core.exceptions import JsonRESTError
    from moto.kinesis.models import kinesis_backends

    backend = kinesis_backends[account_id][region]
    try:
        # moto annotates these two as str; its own PutRecord handler passes None when the
        # request has neither, as here.
        sequence, _shard_id = backend.put_record(
            stream_arn=None,  # type: ignore[arg-type]
            stream_name=stream_name,
            partition_key=partition_key,
            explicit_hash_key=None,  # type: ignore[arg-type]
            data=data,
        )
    except JsonRESTError as exc:
        raise ApiError(exc.message, int(exc.code), exc.error_type) from None
    return str(sequence)


def kinesis_record_classes() -> tuple[type[Any], type[Any]]:
    """moto's `Shard` and `Record` classes (snapshots write a shard's records as rows)."""
    from moto.kinesis.models import Record, Shard

    return Shard, Record


# --- DynamoDB: values, items, tables, backends ----------------------------------------


def number_size(value: Any) -> int:
    """The bytes a DynamoDB number counts towards an item's size, by moto's rule (since
    5.2.6 DynamoDB's: one byte per two significant digits, plus one)."""
    from moto.dynamodb.models.utilities import number_size as moto_number_size

    return moto_number_size(str(value))


def text_size(text: Any) -> int:
    """The bytes a name or string counts towards an item's size, by moto's rule."""
    from moto.dynamodb.models.utilities import bytesize

    return bytesize(text)


def item_size_error() -> Exception:
    """The error moto answers an item over its size limit with."""
    from moto.dynamodb.exceptions import ItemSizeTooLarge

    return ItemSizeTooLarge()


#: moto's item size limit (`LimitedSizeDict`): between the 409 and 410 KB AWS accepts.
ITEM_MAX_BYTES = 405000


def value_parts(value: Any) -> tuple[str, Any]:
    """A DynamoDB value's type (`S`, `N`, `M`, ...) and content (members of a list or map
    are values themselves; binary content is bytes)."""
    return value.type, value.value


def new_value(kind: str, content: Any) -> Any:
    """A DynamoDB value without moto's checks (for keys to look up and for snapshots, whose
    values passed them when written); list and map members must be values already."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    value = DynamoType.__new__(DynamoType)
    value.type, value.value = kind, content
    return value


def value_from_json(attribute: dict[str, Any]) -> Any:
    """A DynamoDB value from its DynamoDB JSON (`{"S": "x"}`), as moto makes one."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    return DynamoType(attribute)


def fill_item(item: Any, hash_key: Any, range_key: Any, attributes: dict[str, Any]) -> None:
    """Give an item its keys and `attributes` (values) without moto's size checks, which
    add up every attribute's size again as each is added (quadratic in the attributes)."""
    from moto.dynamodb.models.dynamo_type import LimitedSizeDict

    item.hash_key = hash_key
    item.range_key = range_key
    item.attrs = LimitedSizeDict.__new__(LimitedSizeDict)
    dict.update(item.attrs, attributes)


def new_item(item_class: Any, hash_key: Any, range_key: Any, attributes: dict[str, Any]) -> Any:
    """An item of `item_class` holding `attributes` (values), without moto's size checks
    (for snapshots: the item passed them when it was written)."""
    item = item_class.__new__(item_class)
    fill_item(item, hash_key, range_key, attributes)
    return item


def item_attributes(item: Any) -> dict[str, Any]:
    """An item's attributes (name to value), in the order they were written."""
    attributes: dict[str, Any] = item.attrs
    return attributes


def item_keys(item: Any) -> tuple[Any, Any | None]:
    """An item's partition key value and sort key value (None without a sort key)."""
    return item.hash_key, item.range_key


def dynamodb_classes() -> tuple[type[Any], type[Any]]:
    """moto's `Item` and `DynamoType` classes (snapshots write both compactly)."""
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    return Item, DynamoType


def table_key_names(table: Any) -> tuple[str, str | None]:
    """A table's partition key name and sort key name (None without a sort key)."""
    return table.hash_key_attr, table.range_key_attr


def table_arn(table: Any) -> str:
    """A table's ARN."""
    return str(table.table_arn)


def table_name(table: Any) -> str:
    """A table's name."""
    return str(table.name)


def table_items(table: Any) -> list[Any]:
    """Every item of a table now (moto keeps them by partition key, then by sort key)."""
    if table.range_key_attr:
        items: list[Any] = []
        for by_range in list(table.items.values()):
            items.extend(list(by_range.values()))
        return items
    return list(table.items.values())


def stored_item(table: Any, hash_value: Any, range_value: Any | None) -> Any | None:
    """The item stored under these key values (moto values), or None."""
    stored = table.items.get(hash_value)
    if table.range_key_attr is None or stored is None:
        return stored
    return stored.get(range_value)


def query_index_name(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """The index a call of `Table.query` reads (None for the table itself): its eighth
    parameter, after the partition key value and six others."""
    if "index_name" in kwargs:
        return kwargs["index_name"]
    return args[6] if len(args) > 6 else None


def table_partition(table: Any, hash_value: Any) -> Any:
    """A shallow copy of a table holding only one partition's items: what a Query on the
    table's own key reads, without moto sorting every item of the table."""
    partition = copy.copy(table)
    found = dict.get(table.items, hash_value)  # a plain get: the defaultdict must not grow
    partition.items = {hash_value: found} if found else {}
    return partition


def pitr_description(table: Any) -> dict[str, Any]:
    """A table's `PointInTimeRecoveryDescription` (status, window, earliest time)."""
    description: dict[str, Any] = table.continuous_backups["PointInTimeRecoveryDescription"]
    return description


def dynamodb_backend(account_id: str, region: str) -> Any:
    """moto's DynamoDB backend of an account and region."""
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[account_id][region]


def dynamodb_put_item(backend: Any, table_name: str, item: dict[str, Any]) -> None:
    """PutItem through moto's DynamoDB backend in this process (no HTTP, no parsing):
    for loading a large table quickly."""
    backend.put_item(table_name, item)


def dynamodb_tables(backend: Any) -> list[Any]:
    """Every table of a DynamoDB backend (one account and region)."""
    return list(backend.tables.values())


def dynamodb_table(backend: Any, name: str) -> Any:
    """The named table of a DynamoDB backend (moto's ResourceNotFound error when missing)."""
    return backend.get_table(name)


def item_at_key(backend: Any, table: Any, key: dict[str, Any]) -> Any | None:
    """The item under a request's `Key` (DynamoDB JSON), or None; moto's validation error
    for a key that does not fit the table."""
    return table.get_item(*backend.get_keys_value(table, key))


def table_exports(backend: Any) -> dict[str, Any]:
    """The exports a DynamoDB backend keeps, by ARN (the local cloud's own records)."""
    exports: dict[str, Any] = backend.table_exports
    return exports


def backend_location(backend: Any) -> tuple[str, str, str]:
    """A backend's account id, region and partition (`aws`)."""
    return backend.account_id, backend.region_name, backend.partition


# --- DynamoDB streams -------------------------------------------------------------------


def table_stream_shard(region: str, account_id: str, table_name: str) -> Any | None:
    """The shard of a table's stream in this process's moto, or None when this process's
    moto has no such table or the table has no stream (moto gives a stream one shard)."""
    from moto.dynamodb.models import dynamodb_backends

    if account_id not in dynamodb_backends or region not in dynamodb_backends[account_id]:
        return None
    table = dynamodb_backends[account_id][region].tables.get(table_name)
    return None if table is None else table.stream_shard


def stream_shard_id(shard: Any) -> str:
    """A table stream shard's id (moto's is the same for every table)."""
    return str(shard.id)


def stream_shard_first_sequence(shard: Any) -> int:
    """The sequence number of a table stream shard's first record."""
    return int(shard.starting_sequence_number)


def stream_shard_records(shard: Any) -> list[Any]:
    """A table stream shard's records, in order: record `i` has the sequence number
    `stream_shard_first_sequence(shard) + i`; the list grows while it is read."""
    records: list[Any] = shard.items
    return records


def stream_record_body(record: Any) -> dict[str, Any]:
    """A table stream record as moto keeps it: `eventID`, `eventName` and `dynamodb`
    (`Keys`, the images the view type holds, `SequenceNumber`, `SizeBytes`,
    `StreamViewType`, `ApproximateCreationDateTime` as a naive UTC datetime; a binary
    value is bytes). moto's own object: read it, never change it."""
    body: dict[str, Any] = record.record
    return body


def stream_record_arrival(record: Any) -> float:
    """When a table stream record was written, in epoch seconds."""
    created: dt.datetime = record.record["dynamodb"]["ApproximateCreationDateTime"]
    return created.replace(tzinfo=dt.UTC).timestamp()


# --- EventBridge patterns -------------------------------------------------------------


def event_pattern_matcher(pattern: str) -> Any:
    """moto's EventBridge pattern matcher for a pattern's JSON text: a function taking an
    event (a dict) and answering whether the pattern matches it. ValueError for a pattern
    EventBridge rejects."""
    from moto.events.exceptions import InvalidEventPatternException
    from moto.events.models import EventPattern

    try:
        matcher = EventPattern.load(pattern)
    except InvalidEventPatternException as exc:
        raise ValueError(f"invalid event pattern {pattern!r}: {exc.message}") from None
    except AttributeError:  # JSON, but not an object
        raise ValueError(f"invalid event pattern {pattern!r}: not a JSON object") from None
    return matcher.matches_event


# --- S3 -------------------------------------------------------------------------------


def s3_backend(account_id: str, partition: str) -> Any:
    """moto's S3 backend of an account (S3's backends are per partition, not per region)."""
    from moto.s3.models import s3_backends

    return s3_backends[account_id][partition]


def s3_bucket_exists(s3: Any, bucket: str) -> bool:
    """Whether the S3 backend has the bucket."""
    return bucket in s3.buckets


def s3_put_object(s3: Any, bucket: str, key: str, data: bytes) -> str:
    """PutObject through moto's S3 backend in this process: the object's ETag, unquoted."""
    stored = s3.put_object(bucket, key, data)
    return str(stored.etag).strip('"')


# --- Glue -----------------------------------------------------------------------------


def crawler_name(crawler: Any) -> str:
    """A crawler's name."""
    return str(crawler.name)


def crawler_description(crawler: Any) -> dict[str, Any]:
    """A crawler as GetCrawler describes it (targets, exclusions, prefix, policy)."""
    description: dict[str, Any] = crawler.as_dict()
    return description


def current_crawl(crawler: Any) -> Any:
    """The crawl moto has just started for a crawler (its newest)."""
    return crawler.crawls[-1]


def pin_crawl_running(crawl: Any) -> None:
    """Keep moto from moving a crawl on by itself: moto walks a started crawl through its
    states on a timer; this crawl stays RUNNING until `finish_crawl`."""
    crawl._transitions = []


def finish_crawl(crawler: Any, crawl: Any, error: str | None, elapsed_ms: int) -> None:
    """Record a crawl's end as moto reports it: STOPPED if it was asked to stop, else
    FAILED with the error or COMPLETED; the crawler's elapsed time and the end time."""
    crawl.error_message = error
    crawler.crawl_elapsed_time = elapsed_ms
    crawl.end_time = utcnow()
    if crawl._status == "STOPPING":
        crawl.status = "STOPPED"
    else:
        crawl.status = "FAILED" if error else "COMPLETED"


# --- ECS and RDS (the orchestration stack's resources) ---------------------------------


def rule_arn(rule: Any) -> str:
    """An EventBridge rule's ARN."""
    return str(rule.arn)


def rule_matches(rule: Any, event: Any) -> bool:
    """Whether an event matches an EventBridge rule's pattern."""
    return bool(rule.event_pattern.matches_event(event))


def rule_targets(rule: Any) -> list[dict[str, Any]]:
    """An EventBridge rule's targets as PutTargets took them (`Arn`, `Id`, `InputTransformer`)."""
    return list(rule.targets)


def rule_with_targets(rule: Any, targets: list[dict[str, Any]]) -> Any:
    """A shallow copy of a rule with only these targets (the rule itself is left as it is)."""
    copied = copy.copy(rule)
    copied.targets = targets
    return copied


def ecs_backend(account_id: str, region: str) -> Any:
    """moto's ECS backend of an account and region."""
    from moto.ecs.models import ecs_backends

    return ecs_backends[account_id][region]


def camel_case_keys(value: Any) -> Any:
    """A template's nested property keys (`PortMappings`) as the ECS API names them
    (`portMappings`), by moto's own conversion."""
    from moto.core.utils import pascal_to_camelcase, remap_nested_keys

    return remap_nested_keys(value, pascal_to_camelcase)


def rds_managed_secret(database: Any, kms_key_id: str | None) -> Any:
    """The Secrets Manager secret moto's RDS API makes for a managed master password."""
    from moto.rds.models import MasterUserSecret

    return MasterUserSecret(database, kms_key_id)


# --- every backend, for snapshots -----------------------------------------------------


def backends_in_use() -> Iterator[tuple[str, str, str, Any]]:
    """(service, account, region, backend) of every backend this process's moto has made."""
    from moto.core.base_backend import BackendDict

    in_use: list[Any] = list(getattr(BackendDict, "_instances"))  # noqa: B009
    for backend_dict in in_use:
        for account, region, backend in backend_dict.iter_backends():
            yield backend_dict.service_name, account, region, backend


def put_backend(service: str, account_id: str, region: str, backend: Any) -> None:
    """Put `backend` in place of moto's for the service, account and region (which
    registers the service as in use, for the next snapshot)."""
    from moto.backends import get_backend

    backend_dict = get_backend(service)  # type: ignore[call-overload]
    dict.__setitem__(backend_dict[account_id], region, backend)


# --- what moto_patches patches --------------------------------------------------------


@dataclass(frozen=True)
class PatchTargets:
    """moto's classes and modules whose methods `moto_patches` replaces."""

    cloudformation_backend: type[Any]
    shard: type[Any]
    backend_dict: type[Any]
    kinesis_backend: type[Any]
    server_application: type[Any]
    iot_data_backend: type[Any]
    glue_backend: type[Any]
    crawler: type[Any]
    lambda_backend: type[Any]
    dynamodb_handler: type[Any]
    dynamodb_backend: type[Any]
    item: type[Any]
    dynamo_type: type[Any]
    table: type[Any]
    event_rule: type[Any]
    responses: Any
    rds_instance: type[Any]
    ecs_task_definition: type[Any]
    ecs_backend: type[Any]
    cloudformation_parsing: Any
    cloudwatch_handler: type[Any]


def patch_targets() -> PatchTargets:
    """The classes (and the one module) `moto_patches` patches."""
    from moto.awslambda.models import LambdaBackend
    from moto.cloudformation import parsing
    from moto.cloudformation.models import CloudFormationBackend
    from moto.cloudwatch.responses import CloudWatchResponse
    from moto.core import responses
    from moto.core.base_backend import BackendDict
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType, Item
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler
    from moto.ecs.models import EC2ContainerServiceBackend, TaskDefinition
    from moto.events.models import Rule
    from moto.glue.models import FakeCrawler, GlueBackend
    from moto.iotdata.models import IoTDataPlaneBackend
    from moto.kinesis.models import KinesisBackend, Shard
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.rds.models import DBInstance

    return PatchTargets(
        cloudformation_backend=CloudFormationBackend,
        shard=Shard,
        backend_dict=BackendDict,
        kinesis_backend=KinesisBackend,
        server_application=DomainDispatcherApplication,
        iot_data_backend=IoTDataPlaneBackend,
        glue_backend=GlueBackend,
        crawler=FakeCrawler,
        lambda_backend=LambdaBackend,
        dynamodb_handler=DynamoHandler,
        dynamodb_backend=DynamoDBBackend,
        item=Item,
        dynamo_type=DynamoType,
        table=Table,
        event_rule=Rule,
        responses=responses,
        rds_instance=DBInstance,
        ecs_task_definition=TaskDefinition,
        ecs_backend=EC2ContainerServiceBackend,
        cloudformation_parsing=parsing,
        cloudwatch_handler=CloudWatchResponse,
    )


def cloudwatch_minute_datum(
    account_id: str, region: str, name: str, unit: str, stream_name: str, value: float, at: Any
) -> Any:
    """A CloudWatch statistic set (one minute of a Kinesis metric) added to moto's metrics."""
    from moto.cloudwatch.models import MetricAggregatedDatum, cloudwatch_backends

    datum = MetricAggregatedDatum(
        namespace="AWS/Kinesis",
        name=name,
        min_stat=value,
        max_stat=value,
        sample_count=0.0,
        sum_stat=0.0,
        dimensions=[{"Name": "StreamName", "Value": stream_name}],
        timestamp=at,
        unit=unit,
    )
    cloudwatch_backends[account_id][region].metric_data.append(datum)
    return datum


def cloudwatch_backend(account_id: str, region: str) -> Any:
    """moto's CloudWatch backend of an account and region."""
    from moto.cloudwatch.models import cloudwatch_backends

    return cloudwatch_backends[account_id][region]
