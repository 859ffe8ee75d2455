"""The naming convention: `{service}-{env}-{region code}-{purpose}-{nn}`.

Every resource name in the project is made here, so the templates, the local
cloud and the pipeline always agree (for example `dynamodb-dev-apse2-iotdata-01`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import overload

DEFAULT_ENV = "dev"
DEFAULT_REGION = "ap-southeast-2"
#: The stacks' purposes: the `{purpose}` of their names and the keys of their outputs.
STREAMING_STACK = "streaming"
ANALYTICS_STACK = "analytics"
ORCHESTRATION_STACK = "orchestration"
#: The `{purpose}` of the bucket `stack deploy` uploads the function's zip and the image's
#: source to (made by the deployer, not a stack).
ARTIFACTS_PURPOSE = "artifacts"
#: The MQTT topic devices publish readings to (the streaming stack's default SensorTopic).
SENSOR_TOPIC = "iot/sensors"
#: What the analytics stack outputs as the Redshift names when DeployWarehouse is false.
NO_WAREHOUSE = "not-deployed"

_DIRECTIONS = {
    "north": "n",
    "south": "s",
    "east": "e",
    "west": "w",
    "central": "c",
    "northeast": "ne",
    "northwest": "nw",
    "southeast": "se",
    "southwest": "sw",
}
_REGION = re.compile(r"^(?P<area>[a-z]{2}(?:-gov)?)-(?P<direction>[a-z]+)-(?P<number>\d+)$")
_TOKEN = re.compile(r"^[a-z0-9]+$")


def region_code(region: str) -> str:
    """Short code of an AWS region: `ap-southeast-2` -> `apse2`, `us-east-1` -> `use1`."""
    match = _REGION.match(region)
    if not match or match["direction"] not in _DIRECTIONS:
        raise ValueError(f"not an AWS region name: {region!r}")
    area = match["area"].replace("-gov", "gov")
    return f"{area}{_DIRECTIONS[match['direction']]}{match['number']}"


class _ResourceName:
    """A `Naming` attribute that names one resource: `naming.table` is
    `naming.name("dynamodb", "iotdata")`, so the class lists each name on one line.
    """

    def __init__(self, service: str, purpose: str) -> None:
        self.service = service
        self.purpose = purpose

    @overload
    def __get__(self, naming: None, owner: type[Naming]) -> _ResourceName: ...
    @overload
    def __get__(self, naming: Naming, owner: type[Naming]) -> str: ...
    def __get__(self, naming: Naming | None, owner: type[Naming]) -> str | _ResourceName:
        return self if naming is None else naming.name(self.service, self.purpose)


@dataclass(frozen=True)
class Naming:
    """Names for one deployment (an environment in a region)."""

    env: str = DEFAULT_ENV
    region: str = DEFAULT_REGION

    def __post_init__(self) -> None:
        if not _TOKEN.match(self.env):
            raise ValueError(f"env must be lowercase letters and digits, got {self.env!r}")
        region_code(self.region)  # validates

    def name(self, service: str, purpose: str, nn: int = 1) -> str:
        """A resource name such as `kinesis-dev-apse2-iotdata-01`."""
        for label, token in (("service", service), ("purpose", purpose)):
            if not _TOKEN.match(token):
                raise ValueError(f"{label} must be lowercase letters and digits, got {token!r}")
        if not 1 <= nn <= 99:
            raise ValueError(f"nn must be between 1 and 99, got {nn}")
        return f"{service}-{self.env}-{region_code(self.region)}-{purpose}-{nn:02d}"

    def bucket(self, purpose: str, account_id: str, nn: int = 1) -> str:
        """An S3 bucket name, made globally unique by the account id."""
        if not re.fullmatch(r"\d{12}", account_id):
            raise ValueError(f"account id must be 12 digits, got {account_id!r}")
        return f"{self.name('s3', purpose, nn)}-{account_id}"

    def bucket_sub(self, purpose: str, nn: int = 1) -> str:
        """`bucket()` as an `Fn::Sub` string: the stack fills in `${AWS::AccountId}`."""
        return f"{self.name('s3', purpose, nn)}-${{AWS::AccountId}}"

    def stack(self, purpose: str) -> str:
        """A CloudFormation stack name, e.g. `stack-dev-apse2-streaming-01`."""
        return self.name("stack", purpose)

    # The project's resources, so callers never spell a purpose twice.
    #: The DynamoDB table of readings.
    table = _ResourceName("dynamodb", "iotdata")
    #: The Kinesis data stream the topic rule feeds.
    stream = _ResourceName("kinesis", "iotdata")
    #: The stream processor Lambda function.
    function = _ResourceName("lambda", "streamprocessor")
    #: The IoT policy to attach to device certificates.
    device_policy = _ResourceName("iotpolicy", "sensors")
    #: The Glue Data Catalog database.
    glue_database = _ResourceName("database", "iot")
    #: The Glue crawler over the lake.
    crawler = _ResourceName("crawler", "iot")
    #: The Redshift cluster's identifier.
    redshift_cluster = _ResourceName("redshift", "iot")
    #: The per-device alert state (raised alerts, silence, when each device was last seen).
    alert_state_table = _ResourceName("dynamodb", "alertstate")
    #: The event bus alert state changes go to.
    alert_bus = _ResourceName("eventbus", "alerts")
    #: The rule routing alert events to the alert topic.
    alert_rule = _ResourceName("eventrule", "alertnotify")
    #: The topic people and programs subscribe to for alerts.
    alert_topic = _ResourceName("sns", "alerts")
    #: The queue of alert events the rule could not deliver to the topic.
    alert_dead_letter_queue = _ResourceName("sqs", "alertdlq")
    #: The function announcing silent devices, and the schedule running it.
    silence_check_function = _ResourceName("lambda", "silencecheck")
    silence_schedule = _ResourceName("eventrule", "silencecheck")
    #: The function putting the alert state's outbox events on the bus, and the queue of
    #: the state table's stream batches it gave up on.
    alert_notifier_function = _ResourceName("lambda", "alertnotifier")
    alert_notifier_failure_queue = _ResourceName("sqs", "alertnotifyfail")
    #: The SNS topic the streaming stack's alarms (and the orchestrator's) notify.
    alarm_topic = _ResourceName("sns", "alarms")
    #: The ECS cluster Dagster's services and runs are tasks of.
    dagster_cluster = _ResourceName("ecs", "dagster")
    #: The PostgreSQL instance holding Dagster's runs, event log and schedules.
    dagster_database = _ResourceName("rds", "dagster")
    #: The ECR repository of the project's image.
    image_repository = _ResourceName("ecr", "dagster")
    #: The CodeBuild project that builds the image from the uploaded source.
    image_build = _ResourceName("codebuild", "dagsterimage")

    @property
    def dagster_log_group(self) -> str:
        """The log group of every Dagster task (webserver, daemon, runs), by stream prefix."""
        return f"/ecs/{self.dagster_cluster}"

    def dagster_service(self, role: str) -> str:
        """The ECS service of one Dagster process (`webserver`, `daemon`)."""
        return self.name("ecssvc", role)

    def dagster_task_family(self, role: str) -> str:
        """The task definition family of one Dagster process (`webserver`, `daemon`, `run`)."""
        return self.name("ecstask", role)

    @property
    def function_log_group(self) -> str:
        """The stream processor's log group, the one Lambda writes to for that name."""
        return f"/aws/lambda/{self.function}"

    @property
    def silence_check_log_group(self) -> str:
        """The silence check's log group, the one Lambda writes to for that name."""
        return f"/aws/lambda/{self.silence_check_function}"

    @property
    def alert_notifier_log_group(self) -> str:
        """The alert notifier's log group, the one Lambda writes to for that name."""
        return f"/aws/lambda/{self.alert_notifier_function}"

    def alerts_tail_queue(self, session: str) -> str:
        """The queue `alerts tail` subscribes to the alert topic for one session (a short
        lowercase token), e.g. `sqs-dev-apse2-alertstail-01-3f9a1c2e`."""
        if not _TOKEN.match(session):
            raise ValueError(f"session must be lowercase letters and digits, got {session!r}")
        return f"{self.name('sqs', 'alertstail')}-{session}"

    @property
    def topic_rule(self) -> str:
        """The IoT topic rule; rule names allow only letters, digits and underscores."""
        return self.name("iotrule", "sensors").replace("-", "_")

    def quarantine_bucket(self, account_id: str) -> str:
        """Bucket for records the stream processor quarantined and rule errors."""
        return self.bucket("quarantine", account_id)

    def lake_bucket(self, account_id: str) -> str:
        """Bucket for table exports and the Parquet lake."""
        return self.bucket("lake", account_id)
