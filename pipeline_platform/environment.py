"""The one switch between the embedded local cloud and a real AWS deployment.

`get_environment()` decides, from the process environment alone; `load_settings()`
turns that decision into the resource names and warehouse location the pipeline
uses, asking AWS (STS locally, the stacks' outputs in `aws`). Loading the code
location calls only the first: settings that need AWS resolve when a run starts.
Both read the process environment when called, never at import time, so tests
and the CLI can change the environment without re-importing anything.

- `local` (default): the local cloud's emulator (`local_cloud.defaults`, or
  `AWS_ENDPOINT_URL`), names from the naming convention, a DuckDB file as the
  warehouse (`WAREHOUSE_PATH`).
- `aws`: real endpoints; names and ARNs come from the deployed stacks' outputs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import astuple, dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path

import boto3

from cloudformation.layout import RULE_ERRORS_PREFIX
from cloudformation.naming import (
    ANALYTICS_STACK,
    DEFAULT_ENV,
    DEFAULT_REGION,
    NO_WAREHOUSE,
    STREAMING_STACK,
    Naming,
)
from cloudformation.outputs import AnalyticsOutput, StreamingOutput
from local_cloud.defaults import ENDPOINT_URL as LOCAL_ENDPOINT_URL
from stream_processor.config import DEFAULT_QUARANTINE_PREFIX

ENV_PLATFORM_ENV = "PLATFORM_ENV"
ENV_DEPLOYMENT = "DEPLOYMENT_ENV"
ENV_ENDPOINT_URL = "AWS_ENDPOINT_URL"
ENV_REGION = "AWS_DEFAULT_REGION"
ENV_WAREHOUSE_PATH = "WAREHOUSE_PATH"
ENV_FIRST_WRITE_DAY = "FIRST_WRITE_DAY"
#: The first day of write windows when `FIRST_WRITE_DAY` is not set.
DEFAULT_FIRST_WRITE_DAY = "2026-11-01"

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WAREHOUSE_PATH = PROJECT_ROOT / ".platform" / "warehouse.duckdb"


class Environment(StrEnum):
    """Where the pipeline runs."""

    LOCAL = "local"
    AWS = "aws"


class SettingMissing(RuntimeError):
    """A required setting (environment variable or stack output) is absent."""


def get_environment() -> Environment:
    """`local` (default) or `aws`, from `PLATFORM_ENV`."""
    raw = os.environ.get(ENV_PLATFORM_ENV, Environment.LOCAL.value).strip().lower()
    try:
        return Environment(raw)
    except ValueError:
        choices = ", ".join(e.value for e in Environment)
        raise SettingMissing(f"{ENV_PLATFORM_ENV}={raw!r} is not one of: {choices}") from None


@dataclass(frozen=True)
class RedshiftSettings:
    """Where the Redshift warehouse is and how COPY reaches S3."""

    host: str
    port: int
    database: str
    copy_role_arn: str
    secret_arn: str


@dataclass(frozen=True)
class AwsLocation:
    """Which AWS API the pipeline talks to: known from the process environment alone."""

    region: str
    #: None for real AWS; the emulator's URL locally.
    endpoint_url: str | None


def aws_location() -> AwsLocation:
    """Region and endpoint of the current environment, without asking AWS anything."""
    region = os.environ.get(ENV_REGION) or os.environ.get("AWS_REGION") or DEFAULT_REGION
    if get_environment() is Environment.AWS:
        return AwsLocation(region, None)
    return AwsLocation(region, os.environ.get(ENV_ENDPOINT_URL) or LOCAL_ENDPOINT_URL)


def warehouse_path() -> str:
    """The local DuckDB warehouse file, absolute (dbt runs in its project folder)."""
    return str(Path(os.environ.get(ENV_WAREHOUSE_PATH) or DEFAULT_WAREHOUSE_PATH).resolve())


def first_write_day() -> date:
    """The first UTC day whose write windows the batch assets have: a deployment's first day.

    Windows before the lake's first (full) export are covered by it, so a deployment
    sets this to the day it started, and Dagster shows no window before it as missing.
    """
    raw = os.environ.get(ENV_FIRST_WRITE_DAY, DEFAULT_FIRST_WRITE_DAY).strip()
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise SettingMissing(f"{ENV_FIRST_WRITE_DAY}={raw!r} is not a day (YYYY-MM-DD)") from None
    if day > datetime.now(UTC).date():
        raise SettingMissing(f"{ENV_FIRST_WRITE_DAY}={raw} is after today (UTC)")
    return day


@dataclass(frozen=True)
class Settings:
    """Everything the batch pipeline needs to know about its deployment."""

    environment: Environment
    region: str
    endpoint_url: str | None
    table_name: str
    stream_name: str
    function_name: str
    quarantine_bucket: str
    #: Where the stream processor writes quarantined records in that bucket (a stack parameter).
    quarantine_prefix: str
    #: Where the topic rule's error action keeps the messages it could not route.
    rule_errors_prefix: str
    lake_bucket: str
    glue_database: str
    crawler_name: str
    warehouse_path: str
    #: The SNS topic failed runs and failed checks are told to (the streaming stack's alarms').
    alarm_topic_arn: str = ""
    #: None locally, and in `aws` when the analytics stack was deployed without a warehouse.
    redshift: RedshiftSettings | None = None


def _naming(region: str) -> Naming:
    return Naming(os.environ.get(ENV_DEPLOYMENT, DEFAULT_ENV), region)


def deployment_naming() -> Naming:
    """The names of the deployment the environment points at (`DEPLOYMENT_ENV`, the region)."""
    return _naming(aws_location().region)


def account_id(endpoint_url: str | None, region: str) -> str:
    """The caller's AWS account id, asked of STS (the emulator answers 123456789012)."""
    from botocore.exceptions import BotoCoreError, ClientError

    sts = boto3.client("sts", endpoint_url=endpoint_url, region_name=region)
    try:
        return sts.get_caller_identity()["Account"]
    except (BotoCoreError, ClientError) as error:
        where = endpoint_url or f"AWS ({region})"
        raise SettingMissing(
            f"cannot ask STS for the account id at {where} ({error}); start the local cloud "
            f"or set {ENV_ENDPOINT_URL} / {ENV_PLATFORM_ENV}"
        ) from error


def stack_outputs(stack_name: str, required: Iterable[str], region: str) -> dict[str, str]:
    """Outputs of a deployed stack; fails naming the stack and every missing key."""
    cfn = boto3.client("cloudformation", region_name=region)
    stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    missing = [key for key in required if key not in outputs]
    if missing:
        raise SettingMissing(f"stack {stack_name} has no output(s): {', '.join(missing)}")
    return outputs


def _local_settings() -> Settings:
    region, endpoint = astuple(aws_location())
    naming = _naming(region)
    account = account_id(endpoint, region)
    return Settings(
        environment=Environment.LOCAL,
        region=region,
        endpoint_url=endpoint,
        table_name=naming.table,
        stream_name=naming.stream,
        function_name=naming.function,
        quarantine_bucket=naming.quarantine_bucket(account),
        # The local cloud deploys the streaming stack with its default parameters.
        quarantine_prefix=DEFAULT_QUARANTINE_PREFIX,
        rule_errors_prefix=RULE_ERRORS_PREFIX,
        lake_bucket=naming.lake_bucket(account),
        glue_database=naming.glue_database,
        crawler_name=naming.crawler,
        warehouse_path=warehouse_path(),
        alarm_topic_arn=f"arn:aws:sns:{region}:{account}:{naming.alarm_topic}",
    )


def _aws_settings() -> Settings:
    region = aws_location().region
    naming = _naming(region)
    streaming = stack_outputs(naming.stack(STREAMING_STACK), StreamingOutput, region)
    analytics = stack_outputs(naming.stack(ANALYTICS_STACK), AnalyticsOutput, region)
    return Settings(
        environment=Environment.AWS,
        region=region,
        endpoint_url=None,
        table_name=streaming[StreamingOutput.TABLE_NAME],
        stream_name=streaming[StreamingOutput.STREAM_NAME],
        function_name=streaming[StreamingOutput.FUNCTION_NAME],
        quarantine_bucket=streaming[StreamingOutput.QUARANTINE_BUCKET_NAME],
        quarantine_prefix=streaming[StreamingOutput.QUARANTINE_PREFIX],
        rule_errors_prefix=streaming[StreamingOutput.RULE_ERRORS_PREFIX],
        lake_bucket=analytics[AnalyticsOutput.LAKE_BUCKET_NAME],
        glue_database=analytics[AnalyticsOutput.GLUE_DATABASE_NAME],
        crawler_name=analytics[AnalyticsOutput.CRAWLER_NAME],
        warehouse_path="",
        alarm_topic_arn=streaming[StreamingOutput.ALARM_TOPIC_ARN],
        redshift=_redshift_settings(analytics),
    )


def _redshift_settings(analytics: dict[str, str]) -> RedshiftSettings | None:
    if analytics[AnalyticsOutput.REDSHIFT_ENDPOINT_ADDRESS] == NO_WAREHOUSE:
        return None
    return RedshiftSettings(
        host=analytics[AnalyticsOutput.REDSHIFT_ENDPOINT_ADDRESS],
        port=int(analytics[AnalyticsOutput.REDSHIFT_PORT]),
        database=analytics[AnalyticsOutput.REDSHIFT_DATABASE_NAME],
        copy_role_arn=analytics[AnalyticsOutput.REDSHIFT_COPY_ROLE_ARN],
        secret_arn=analytics[AnalyticsOutput.REDSHIFT_SECRET_ARN],
    )


def load_settings() -> Settings:
    """Resolve the settings of the current environment (reads env vars and, in aws, stacks)."""
    if get_environment() is Environment.AWS:
        return _aws_settings()
    return _local_settings()
