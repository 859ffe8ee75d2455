"""Every change the local cloud makes to moto, in one place, on and off together.

moto stores much of what AWS acts on and leaves some hot paths slow; the local
cloud changes exactly these methods (written against moto 5.2.6, which
`pyproject.toml` pins to its minor version; the classes come from
`moto_internals.patch_targets()`, and what a replacement reads or calls of moto
beyond the method it replaces goes through `moto_internals`):

- `CloudFormationBackend.execute_change_set`: moto swaps in the change set's
  template but keeps the outputs parsed from the previous one, so a stack
  created through a change set had no outputs and registered no exports (and
  could not be deleted), and an update changing only parameters kept outputs
  of the old values. The stack's outputs and exports are parsed again after.
- `Shard.get_max_sequence_number` / `get_min_sequence_number`: moto copies every
  key of the shard on each `PutRecord` (2 ms per put at 60,000 records on a
  2-core machine); its records are an insertion-ordered dict numbered upwards,
  so both ends are read in constant time instead, with the same answers.
- `BackendDict.__getitem__`: moto registers the service as in use on every lookup
  of an account's backends (a walk of every service's entry under a lock, about
  20 us on a 2-core machine, several times per request and per Kinesis record); the
  registration happens with the account's first lookup, so a known account is
  answered at once. `BackendDict.reset()` forgets accounts and registrations together.
- `KinesisBackend._send_stream_metrics`: moto stores two CloudWatch datapoints
  (`IncomingBytes`, `IncomingRecords`) for every `PutRecord` and `PutRecords` call,
  kept for ever (1,000 records/s leave 7 million datapoints an hour, each searched by
  every `GetMetricStatistics` and written by every snapshot). Kinesis sends its
  stream-level metrics to CloudWatch once a minute; the same puts are recorded as one
  statistic set per stream, metric and minute (sum, sample count, minimum, maximum):
  the statistics moto answers for any period of whole minutes are unchanged.
- `moto.core.responses.method_names_from_class`: moto lists every method of a
  service's response class (`inspect.getmembers`, about 0.3 ms for DynamoDB's) on
  every request to see whether the action is one of them; the list depends only on
  the class, so it is made once per class (and again after `install`/`uninstall`,
  which swap methods of those classes).
- `DynamoType.__init__`: moto reads a value's type and content by building two lists
  from the one-entry dict (`list(d)[0]`, `list(d.values())[0]`), for every attribute
  of every item written or read; the entry is read directly, with the same result
  and the same error for an empty dict.
- `DomainDispatcherApplication.get_backend_for_host`: moto works out which
  service answers a host name on every request (about 0.7 ms, under a lock all
  request threads share); the answer depends only on the host, so it is kept
  per host. A host no service answers is not kept.
- `IoTDataPlaneBackend.publish`: moto only records the message; it is recorded
  and also handed to every `on_iot_data_publish` listener (the rules engine),
  like a device's message arriving over MQTT.
- `GlueBackend.start_crawler`: moto's checks and state, then every
  `on_start_crawler` listener (the crawler runner crawls for real).
- `FakeCrawler.as_dict`: `LastCrawl` as AWS reports it, the last finished crawl.
- `Rule.send_to_targets`: moto delivers a matching event to SQS, log group, archive
  and event-bus targets, and fails the whole PutEvents call (HTTP 500) on any other
  target. Targets it cannot deliver (SNS topics, Lambda functions) are handed to every
  `on_event_target` listener instead (`local_cloud.event_delivery` delivers them, as
  EventBridge does, after the call has answered); the others are still moto's.
- `LambdaBackend.send_kinesis_message`: moto would run the mapped function (in
  Docker) synchronously inside every `PutRecord`; the event source mapping
  runner invokes functions instead, as Lambda's pollers do.
- `LambdaBackend.send_dynamodb_items`: likewise inside every write to a table whose
  stream has a mapping (and a write with a binary attribute fails with HTTP 500 as it
  builds the event); when that call returns something, moto also empties the stream's
  shard. The runner reads the table's stream instead, and the shard keeps its records.
- `CloudWatchResponse.describe_alarms_for_metric`: moto matches the metric's name and
  namespace only, and ignores the dimensions, statistic, period and unit asked for; with
  an IteratorAge alarm per function, every one came back for each. The answer is
  filtered on them, as CloudWatch does.
- `DynamoHandler.parse_parameters`: moto walks every value of a request through
  botocore's shapes before the handler reads it (about 5 ms for a `BatchWriteItem`
  of 25 readings, a fifth of the emulator's time under a fleet). For a
  `BatchWriteItem` without binary attributes that walk yields exactly the request's
  JSON, which is taken as it is; any other request is parsed by moto.
- `Item.__init__`: moto re-adds up every attribute's size as each attribute is
  added (quadratic in the attributes), and sizes a set or map by wrapping each of
  its members in a new DynamoType; the item's size is checked once instead, each
  attribute sized by moto's rules directly, against the same limit, with the same
  error.
- `Table.query`: moto answers a Query on a table (not an index) by sorting every item
  of the table and keeping the partition's (a second for one device's readings in a
  table of 100,000); it answers from the partition's own items instead, which is what
  that filter keeps, so the answer is the same.
- `Table.put_item`, `Table.delete_item`, `DynamoDBBackend.update_item`: moto's
  writes, each also recorded (write time, keys, new and old image) in the
  table's change journal while point-in-time recovery is on. Every DynamoDB
  write call (PutItem, UpdateItem, DeleteItem, BatchWriteItem,
  TransactWriteItems, PartiQL) ends in one of these three.
- `DynamoHandler.export_table_to_point_in_time`, `describe_export`,
  `list_exports`: moto ignores `ExportType`, writes one data file of the table
  as it is now and no manifests; these answer as DynamoDB does, full and
  incremental exports in DynamoDB's S3 layout with its manifests and its
  validation errors (`local_cloud.dynamodb_exports`).

- `DBInstance.create_from_cloudformation_json`, `has_cfn_attr`, `get_cfn_attribute`:
  moto's CloudFormation hands RDS the parameter group resource where its name belongs
  (and fails), ignores `ManageMasterUserPassword` and knows no
  `MasterUserSecret.SecretArn`; the group goes by name, the instance gets the secret
  moto's RDS API makes for a managed password, and the attribute answers its ARN.
- `TaskDefinition.create_from_cloudformation_json`, `update_from_cloudformation_json`:
  moto's CloudFormation registers a task definition with its family, containers,
  volumes and memory only (and an update without turning the containers' keys into the
  API's), so a Fargate task of it could not be run; it is registered with every
  property the API takes.
- `EC2ContainerServiceBackend._calculate_task_resource_requirements`: moto adds up the
  containers' memory and fails on a container that names none; on Fargate a container
  may take the task's, which it is counted as.
- `moto.cloudformation.parsing.parse_and_update_resource`: a stack update replaces each
  changed resource whose type moto cannot update (an RDS instance, say) with nothing,
  and every later `Fn::GetAtt` of it fails the update; such a resource is kept as it
  was instead.

`install()` and `uninstall()` count their callers: the first install applies every
patch and the last uninstall restores moto's own methods, whatever the order in
which the local services of one process start and stop.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from local_cloud import moto_internals

log = logging.getLogger(__name__)

#: Called as `listener(backend, topic, payload_bytes)` after moto records an iot-data publish.
on_iot_data_publish: list[Callable[[Any, str, bytes], None]] = []
#: Called as `listener(backend, crawler)` after moto has started a crawl.
on_start_crawler: list[Callable[[Any, Any], None]] = []
#: Called as `listener(rule_arn, target, event)` for every target of a rule an event matched
#: that moto does not deliver itself; `target` is the rule's target as PutTargets stored it,
#: `event` the event as moto builds it.
on_event_target: list[Callable[[str, dict[str, Any], dict[str, Any]], None]] = []
#: The services whose targets moto delivers itself.
_MOTO_DELIVERS = ("logs", "sqs", "events")

# The crawl states that count as a finished crawl, and how AWS names them in LastCrawl.
_LAST_CRAWL_STATUS = {"COMPLETED": "SUCCEEDED", "FAILED": "FAILED", "STOPPED": "CANCELLED"}


@dataclass(frozen=True)
class Patch:
    """One method of one moto class (or one function of one moto module) and what replaces it."""

    owner: Any
    name: str
    #: A function, or a `classmethod` / `staticmethod` where moto's is one.
    replacement: Callable[..., Any] | classmethod[Any, Any, Any] | staticmethod[Any, Any]

    @property
    def key(self) -> str:
        """`Class.method` (or `module.function`, by the module's last name), as `without()`
        names it."""
        return f"{self.owner.__name__.rpartition('.')[2]}.{self.name}"


_lock = threading.RLock()
_users = 0
_originals: dict[str, Callable[..., Any]] = {}
# What the owner held, as it held it (a classmethod or staticmethod descriptor stays one).
_restore: dict[str, Any] = {}


def original(key: str) -> Callable[..., Any]:
    """moto's own method for `Class.method` (the patched one's fallback, and benchmarks')."""
    if key not in _originals:
        for patch in _patches():
            _originals.setdefault(patch.key, getattr(patch.owner, patch.name))
    return _originals[key]


def install() -> None:
    """Apply every patch (on the first call; later calls only count)."""
    global _users
    with _lock:
        if _users == 0:
            for patch in _patches():
                _originals.setdefault(patch.key, getattr(patch.owner, patch.name))
                _restore.setdefault(patch.key, inspect.getattr_static(patch.owner, patch.name))
                setattr(patch.owner, patch.name, patch.replacement)
            _method_names.clear()
        _users += 1


def uninstall() -> None:
    """Give moto back its own methods when the last installer is done."""
    global _users
    with _lock:
        if _users == 0:
            return
        _users -= 1
        if _users == 0:
            for patch in _patches():
                setattr(patch.owner, patch.name, _restore[patch.key])
            _method_names.clear()


def is_installed() -> bool:
    """Whether the patches are applied now."""
    return _users > 0


@contextlib.contextmanager
def without(*keys: str) -> Iterator[None]:
    """moto's own methods for `keys` (`Class.method`) inside the block; for benchmarks that
    measure what a patch saves. Restored to the patched ones after."""
    with _lock:
        chosen = [p for p in _patches() if p.key in keys]
        for patch in chosen:
            setattr(patch.owner, patch.name, _restore.get(patch.key) or original(patch.key))
    try:
        yield
    finally:
        with _lock:
            if _users:
                for patch in chosen:
                    setattr(patch.owner, patch.name, patch.replacement)


# --- the replacements --------------------------------------------------------------


def execute_change_set(self: Any, change_set_name: str, stack_name: str | None = None) -> Any:
    """moto's ExecuteChangeSet, then the stack's outputs and exports re-parsed as AWS has them."""
    result = original("CloudFormationBackend.execute_change_set")(self, change_set_name, stack_name)
    for stack in self.stacks.values():
        if not stack.template or stack.status.startswith("DELETE"):
            continue
        if stack.template_dict != stack.parse_template(stack.template):
            stack._parse_template()
        # Parameters alone can change outputs too (an update with the same template).
        stack.output_map = stack._create_output_map()
        for export in stack.exports:
            self.exports[export.name] = export
    return result


#: The attribute CloudFormation gives the secret of an instance's managed password by.
_MANAGED_SECRET_ATTRIBUTE = "MasterUserSecret.SecretArn"


def rds_instance_from_cloudformation(
    cls: Any,
    resource_name: str,
    cloudformation_json: Any,
    account_id: str,
    region_name: str,
    **kwargs: Any,
) -> Any:
    """moto's DB instance from a template, with its parameter group and managed password."""
    properties = dict(cloudformation_json["Properties"])
    group = properties.get("DBParameterGroupName")
    if group is not None and not isinstance(group, str):
        properties["DBParameterGroupName"] = group.name
    database = original("DBInstance.create_from_cloudformation_json")(
        resource_name,
        {**cloudformation_json, "Properties": properties},
        account_id,
        region_name,
        **kwargs,
    )
    if properties.get("ManageMasterUserPassword") and not database.manage_master_user_password:
        database.manage_master_user_password = True
        database.master_user_secret = moto_internals.rds_managed_secret(
            database, properties.get("MasterUserSecret", {}).get("KmsKeyId")
        )
    return database


def rds_instance_has_cfn_attr(cls: Any, attr: str) -> bool:
    """moto's attributes of a DB instance, and its managed secret's ARN."""
    return attr == _MANAGED_SECRET_ATTRIBUTE or bool(original("DBInstance.has_cfn_attr")(attr))


def rds_instance_cfn_attribute(self: Any, attribute_name: str) -> Any:
    """`Fn::GetAtt` of a DB instance, its managed secret's ARN included."""
    if attribute_name == _MANAGED_SECRET_ATTRIBUTE:
        return self.master_user_secret.secret_arn
    return original("DBInstance.get_cfn_attribute")(self, attribute_name)


#: A task definition's CloudFormation properties and `RegisterTaskDefinition`'s arguments.
_TASK_DEFINITION_ARGUMENTS = {
    "Family": "family",
    "ContainerDefinitions": "container_definitions",
    "Volumes": "volumes",
    "NetworkMode": "network_mode",
    "Tags": "tags",
    "PlacementConstraints": "placement_constraints",
    "RequiresCompatibilities": "requires_compatibilities",
    "Cpu": "cpu",
    "Memory": "memory",
    "TaskRoleArn": "task_role_arn",
    "ExecutionRoleArn": "execution_role_arn",
    "RuntimePlatform": "runtime_platform",
    "PidMode": "pid_mode",
    "IpcMode": "ipc_mode",
    "EphemeralStorage": "ephemeral_storage",
}


def _register_task_definition(properties: dict[str, Any], account_id: str, region_name: str) -> Any:
    arguments = {
        argument: moto_internals.camel_case_keys(properties[key])
        if isinstance(properties[key], (list, dict)) and key != "Tags"
        else properties[key]
        for key, argument in _TASK_DEFINITION_ARGUMENTS.items()
        if key in properties
    }
    if "tags" in arguments:
        arguments["tags"] = [{"key": t["Key"], "value": t["Value"]} for t in arguments["tags"]]
    return moto_internals.ecs_backend(account_id, region_name).register_task_definition(**arguments)


def task_definition_from_cloudformation(
    cls: Any,
    resource_name: str,
    cloudformation_json: Any,
    account_id: str,
    region_name: str,
    **kwargs: Any,
) -> Any:
    """A task definition from a template, registered with all its properties."""
    return _register_task_definition(cloudformation_json["Properties"], account_id, region_name)


def task_definition_update_from_cloudformation(
    cls: Any,
    original_resource: Any,
    new_resource_name: str,
    cloudformation_json: Any,
    account_id: str,
    region_name: str,
) -> Any:
    """A changed task definition: a new revision with all its properties; the old one is
    deregistered, as moto does."""
    revision = _register_task_definition(cloudformation_json["Properties"], account_id, region_name)
    ecs = moto_internals.ecs_backend(account_id, region_name)
    ecs.deregister_task_definition(original_resource.arn)
    return revision


def task_resource_requirements(task_definition: Any) -> dict[str, Any]:
    """moto's resources of a task; a container that names no memory takes the task's."""
    containers = [
        c
        if {"memory", "memoryReservation", "Memory", "MemoryReservation"} & set(c)
        else {**c, "memory": int(task_definition.memory or 0)}
        for c in task_definition.container_definitions
    ]
    return original("EC2ContainerServiceBackend._calculate_task_resource_requirements")(
        SimpleNamespace(container_definitions=containers)
    )


def parse_and_update_resource(
    logical_id: str,
    resource_json: dict[str, Any],
    resources_map: Any,
    account_id: str,
    region_name: str,
) -> Any:
    """moto's update of one stack resource; a resource it cannot update stays as it was."""
    updated = original("parsing.parse_and_update_resource")(
        logical_id, resource_json, resources_map, account_id, region_name
    )
    return resources_map[logical_id] if updated is None else updated


def _end_key(records: Any, reverse: bool) -> int:
    while True:
        try:
            return next(reversed(records) if reverse else iter(records), 0)
        except RuntimeError:  # another thread added a record between the two calls
            continue


def get_max_sequence_number(shard: Any) -> int:
    """The shard's highest sequence number (0 when empty), without copying its keys."""
    return _end_key(shard.records, reverse=True)


def get_min_sequence_number(shard: Any) -> int:
    """The shard's lowest sequence number (0 when empty), without copying its keys."""
    return _end_key(shard.records, reverse=False)


def backend_dict_getitem(backends: Any, account_id: str) -> Any:
    """An account's backends of one service; moto's own lookup (which registers the
    service as in use) only the first time the account is asked for."""
    try:
        return dict.__getitem__(backends, account_id)
    except KeyError:
        return original("BackendDict.__getitem__")(backends, account_id)


#: The attribute of moto's CloudWatch backend holding each stream's statistic sets of the
#: current minute, by (stream name, metric name).
_KINESIS_MINUTE_ATTR = "_local_cloud_kinesis_minute"
_kinesis_metrics_lock = threading.Lock()


def send_stream_metrics(
    self: Any, stream_name: str, incoming_bytes: int, incoming_records: int
) -> None:
    """Kinesis's IncomingBytes and IncomingRecords of one put, added to the stream's
    statistic sets of this minute (a new set for each minute, as Kinesis sends them)."""
    cloudwatch = moto_internals.cloudwatch_backend(self.account_id, self.region_name)
    minute = moto_internals.utcnow().replace(second=0, microsecond=0)
    with _kinesis_metrics_lock:
        current: dict[tuple[str, str], Any] = moto_internals.private_state(cloudwatch).setdefault(
            _KINESIS_MINUTE_ATTR, {}
        )
        for name, value, unit in (
            ("IncomingBytes", float(incoming_bytes), "Bytes"),
            ("IncomingRecords", float(incoming_records), "Count"),
        ):
            datum = current.get((stream_name, name))
            if datum is None or datum.timestamp != minute:
                datum = moto_internals.cloudwatch_minute_datum(
                    self.account_id, self.region_name, name, unit, stream_name, value, minute
                )
                current[(stream_name, name)] = datum
            datum.sample_count += 1
            datum.sum += value
            datum.min = min(datum.min, value)
            datum.max = max(datum.max, value)


_method_names: dict[type, list[str]] = {}


def method_names_from_class(clazz: type) -> list[str]:
    """moto's list of the methods of a response class, made once per class."""
    names = _method_names.get(clazz)
    if names is None:
        names = _method_names[clazz] = original("responses.method_names_from_class")(clazz)
    return names


def dynamo_type_init(self: Any, type_as_dict: Any) -> None:
    """moto's DynamoType: the type and content of `{type: content}` (or of another DynamoType),
    lists and maps holding DynamoTypes."""
    value_class = type(self)
    if type(type_as_dict) is value_class:
        self.type = type_as_dict.type
        self.value = type_as_dict.value
    else:
        for kind, value in type_as_dict.items():
            self.type = kind
            self.value = value
            break
        else:
            raise IndexError("list index out of range")  # moto's error for {}
    if self.type == "L":
        self.value = [value_class(member) for member in self.value]
    elif self.type == "M":
        self.value = {name: value_class(member) for name, member in self.value.items()}


def get_backend_for_host(app: Any, host: str | None) -> Any:
    """moto's answer for `host`, computed on the first request for it."""
    known: dict[str | None, Any] = app.__dict__.setdefault("_backend_by_host", {})
    backend = known.get(host)
    if backend is None:
        backend = original("DomainDispatcherApplication.get_backend_for_host")(app, host)
        if backend is not None:
            known[host] = backend
    return backend


def publish(self: Any, topic: str, payload: Any) -> None:
    """moto's iot-data Publish (the message is recorded), then every listener."""
    original("IoTDataPlaneBackend.publish")(self, topic, payload)
    data = payload.encode() if isinstance(payload, str) else bytes(payload or b"")
    for listener in list(on_iot_data_publish):
        try:
            listener(self, topic, data)
        except Exception:  # the API call itself must still succeed
            log.exception("handing an iot-data message to the rules engine failed")


def start_crawler(self: Any, name: str) -> None:
    """moto's StartCrawler (its checks and state), then every listener."""
    original("GlueBackend.start_crawler")(self, name)
    crawler = self.get_crawler(name)
    for listener in list(on_start_crawler):
        listener(self, crawler)


def crawler_as_dict(crawler: Any) -> dict[str, Any]:
    """moto's GetCrawler body with `LastCrawl` as AWS reports it (the last finished crawl)."""
    data: dict[str, Any] = original("FakeCrawler.as_dict")(crawler)
    finished = [c for c in crawler.crawls if c.status in _LAST_CRAWL_STATUS]
    data.pop("LastCrawl", None)
    if finished:
        last = finished[-1]
        data["LastCrawl"] = {
            "Status": _LAST_CRAWL_STATUS[last.status],
            "LogGroup": last.log_group,
            "LogStream": last.log_stream,
            "MessagePrefix": last.message_prefix,
            "StartTime": last.start_time,
        }
        message = getattr(last, "error_message", None)
        if message:
            data["LastCrawl"]["ErrorMessage"] = message
    return data


def send_to_targets(rule: Any, event: Any, transform_input: bool = True) -> None:
    """moto's delivery for the targets it knows; every other target to the listeners."""
    if not moto_internals.rule_matches(rule, event):
        return
    targets = moto_internals.rule_targets(rule)
    theirs = [t for t in targets if t["Arn"].split(":")[2] not in _MOTO_DELIVERS]
    if len(theirs) < len(targets):
        ours = moto_internals.rule_with_targets(rule, [t for t in targets if t not in theirs])
        original("Rule.send_to_targets")(ours, event, transform_input)
    rule_arn = moto_internals.rule_arn(rule)
    for target in theirs:
        for listener in list(on_event_target):
            try:
                listener(rule_arn, copy.deepcopy(target), copy.deepcopy(dict(event)))
            except Exception:  # PutEvents has accepted the event whatever its delivery does
                log.exception("handing an event to its target %s failed", target.get("Arn"))


def send_kinesis_message(self: Any, *args: Any, **kwargs: Any) -> None:
    """Nothing: the event source mapping runner invokes mapped functions."""


def send_dynamodb_items(self: Any, *args: Any, **kwargs: Any) -> None:
    """Nothing (so moto keeps the stream's records): the runner invokes mapped functions."""


def describe_alarms_for_metric(self: Any) -> Any:
    """DescribeAlarmsForMetric filtering as CloudWatch does: on the dimensions, statistic,
    extended statistic, period and unit asked for, not only the metric's name and namespace
    (a stack with an IteratorAge alarm per function answered every one for each)."""
    result = original("CloudWatchResponse.describe_alarms_for_metric")(self)
    wanted: dict[str, Any] = {
        name: self._get_param(name)
        for name in ("Statistic", "ExtendedStatistic", "Period", "Unit")
        if self._get_param(name) is not None
    }
    if self._get_param("Dimensions"):
        wanted["Dimensions"] = frozenset(
            (d["Name"], d["Value"]) for d in self._get_param("Dimensions")
        )
    if not wanted:
        return result
    body = moto_internals.action_result_body(result)
    body["MetricAlarms"] = [
        alarm
        for alarm in body["MetricAlarms"]
        if all(moto_internals.alarm_metric(alarm)[name] == value for name, value in wanted.items())
    ]
    return result


# A blob attribute ("B" or "BS") is the one value botocore's shapes turn into something
# other than its JSON (bytes); a map key spelt so only sends the request the long way.
_BINARY_ATTRIBUTE = re.compile(rb'"BS?"\s*:')


def parse_dynamodb_parameters(self: Any, request: Any) -> None:
    """A `BatchWriteItem`'s parameters as its JSON when that is what moto's parsing yields."""
    if self._get_action() == "BatchWriteItem":
        body = request.get_data()
        if not _BINARY_ATTRIBUTE.search(body):
            self.params = json.loads(body)
            return
    original("DynamoHandler.parse_parameters")(self, request)


def dynamodb_query(table: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
    """moto's Query, over the one partition's items when it is the table's own key."""
    own_key = moto_internals.query_index_name(args, kwargs) is None
    if not own_key or hash_key is None or moto_internals.table_key_names(table)[1] is None:
        return original("Table.query")(table, hash_key, *args, **kwargs)
    partition = moto_internals.table_partition(table, hash_key)
    return original("Table.query")(partition, hash_key, *args, **kwargs)


def dynamodb_item_init(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
    """moto's `Item`, its size checked once for all its attributes."""
    values = {key: moto_internals.value_from_json(value) for key, value in attrs.items()}
    if (
        sum(_text_size(key) + attribute_size(value) for key, value in values.items())
        > moto_internals.ITEM_MAX_BYTES
    ):
        raise moto_internals.item_size_error()
    moto_internals.fill_item(self, hash_key, range_key, values)


def attribute_size(value: Any) -> int:
    """moto's `DynamoType.size()` of an attribute value, without wrapping every member of a
    set or map in a new DynamoType first: the same sizes, by the same rules."""
    kind, inner = moto_internals.value_parts(value)
    if kind == "N":
        return moto_internals.number_size(inner)
    if kind == "S" and type(inner) is str:
        return len(inner) if inner.isascii() else len(inner.encode("utf-8"))
    if kind == "L":
        return sum(attribute_size(member) for member in inner)
    if kind == "M":
        return sum(_text_size(key) + attribute_size(member) for key, member in inner.items())
    if kind in ("SS", "NS", "BS"):
        if kind == "NS":
            return sum(moto_internals.number_size(member) for member in inner)
        return sum(_text_size(member) for member in inner)
    if isinstance(inner, bool):
        return 1
    return int(value.size())  # anything else (binary, odd values): moto's own


def _text_size(text: Any) -> int:
    """moto's `bytesize`: UTF-8 bytes of a string, length of bytes."""
    if type(text) is str:
        return len(text) if text.isascii() else len(text.encode("utf-8"))
    return moto_internals.text_size(text)


def _with_original(key: str, hook: Callable[..., Any]) -> Callable[..., Any]:
    """A replacement that calls `hook` with moto's own method (for `key`) first."""

    def replacement(*args: Any, **kwargs: Any) -> Any:
        return hook(original(key), *args, **kwargs)

    replacement.__name__ = getattr(hook, "__name__", key)
    replacement.__doc__ = hook.__doc__
    return replacement


@functools.cache
def _patches() -> tuple[Patch, ...]:
    from local_cloud import dynamodb_exports as exports

    moto = moto_internals.patch_targets()
    return (
        Patch(moto.cloudformation_backend, "execute_change_set", execute_change_set),
        Patch(moto.shard, "get_max_sequence_number", get_max_sequence_number),
        Patch(moto.shard, "get_min_sequence_number", get_min_sequence_number),
        Patch(moto.backend_dict, "__getitem__", backend_dict_getitem),
        Patch(moto.kinesis_backend, "_send_stream_metrics", send_stream_metrics),
        Patch(moto.server_application, "get_backend_for_host", get_backend_for_host),
        Patch(moto.iot_data_backend, "publish", publish),
        Patch(moto.glue_backend, "start_crawler", start_crawler),
        Patch(moto.crawler, "as_dict", crawler_as_dict),
        Patch(moto.lambda_backend, "send_kinesis_message", send_kinesis_message),
        Patch(moto.lambda_backend, "send_dynamodb_items", send_dynamodb_items),
        Patch(moto.cloudwatch_handler, "describe_alarms_for_metric", describe_alarms_for_metric),
        Patch(moto.dynamodb_handler, "parse_parameters", parse_dynamodb_parameters),
        Patch(moto.item, "__init__", dynamodb_item_init),
        Patch(moto.dynamo_type, "__init__", dynamo_type_init),
        Patch(moto.responses, "method_names_from_class", method_names_from_class),
        Patch(moto.table, "put_item", _with_original("Table.put_item", exports.put_item)),
        Patch(moto.table, "delete_item", _with_original("Table.delete_item", exports.delete_item)),
        Patch(moto.event_rule, "send_to_targets", send_to_targets),
        Patch(moto.table, "query", dynamodb_query),
        Patch(
            moto.dynamodb_backend,
            "update_item",
            _with_original("DynamoDBBackend.update_item", exports.update_item),
        ),
        Patch(
            moto.dynamodb_handler,
            "export_table_to_point_in_time",
            exports.export_table_to_point_in_time,
        ),
        Patch(moto.dynamodb_handler, "describe_export", exports.describe_export),
        Patch(moto.dynamodb_handler, "list_exports", exports.list_exports),
        Patch(
            moto.rds_instance,
            "create_from_cloudformation_json",
            classmethod(rds_instance_from_cloudformation),
        ),
        Patch(moto.rds_instance, "has_cfn_attr", classmethod(rds_instance_has_cfn_attr)),
        Patch(moto.rds_instance, "get_cfn_attribute", rds_instance_cfn_attribute),
        Patch(moto.cloudformation_parsing, "parse_and_update_resource", parse_and_update_resource),
        Patch(
            moto.ecs_task_definition,
            "create_from_cloudformation_json",
            classmethod(task_definition_from_cloudformation),
        ),
        Patch(
            moto.ecs_task_definition,
            "update_from_cloudformation_json",
            classmethod(task_definition_update_from_cloudformation),
        ),
        Patch(
            moto.ecs_backend,
            "_calculate_task_resource_requirements",
            staticmethod(task_resource_requirements),
        ),
    )
