"""The one switch between the embedded local cloud and a real AWS deployment.

`get_environment()` decides; `load_settings()` turns that decision into the
endpoint, region, resource names and warehouse location the pipeline uses.
Both read the process environment when called, never at import time, so tests
and the CLI can change the environment without re-importing anything.

- `local` (default): the AWS emulator on `http://127.0.0.1:4566` (or
  `AWS_ENDPOINT_URL`), region `ap-southeast-2`, names from the naming
  convention, a DuckDB file as the warehouse (`WAREHOUSE_PATH`).
- `aws`: real endpoints; names and ARNs come from the deployed stacks' outputs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import boto3

from cloudformation.naming import DEFAULT_ENV, DEFAULT_REGION, NO_WAREHOUSE, Naming
from stream_processor.config import DEFAULT_QUARANTINE_PREFIX

ENV_PLATFORM_ENV = "PLATFORM_ENV"
ENV_DEPLOYMENT = "DEPLOYMENT_ENV"
ENV_ENDPOINT_URL = "AWS_ENDPOINT_URL"
ENV_REGION = "AWS_DEFAULT_REGION"
ENV_WAREHOUSE_PATH = "WAREHOUSE_PATH"

LOCAL_ENDPOINT_URL = "http://127.0.0.1:4566"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WAREHOUSE_PATH = PROJECT_ROOT / ".platform" / "warehouse.duckdb"

STREAMING_STACK = "streaming"
ANALYTICS_STACK = "analytics"
# Output keys of the two CloudFormation stacks this pipeline reads in `aws`.
STREAMING_OUTPUTS = (
    "TableName",
    "TableArn",
    "StreamName",
    "StreamArn",
    "FunctionName",
    "QuarantineBucketName",
    "QuarantinePrefix",
)
ANALYTICS_OUTPUTS = (
    "LakeBucketName",
    "GlueDatabaseName",
    "CrawlerName",
    "RedshiftEndpointAddress",
    "RedshiftPort",
    "RedshiftDatabaseName",
    "RedshiftCopyRoleArn",
    "RedshiftSecretArn",
)


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
    lake_bucket: str
    glue_database: str
    crawler_name: str
    warehouse_path: str
    #: None locally, and in `aws` when the analytics stack was deployed without a warehouse.
    redshift: RedshiftSettings | None = None

    @property
    def dbt_target(self) -> str:
        """The dbt profile target matching the warehouse."""
        return "redshift" if self.environment is Environment.AWS else "local"


def _region() -> str:
    return os.environ.get(ENV_REGION) or os.environ.get("AWS_REGION") or DEFAULT_REGION


def _naming(region: str) -> Naming:
    return Naming(os.environ.get(ENV_DEPLOYMENT, DEFAULT_ENV), region)


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


def stack_outputs(stack_name: str, required: tuple[str, ...], region: str) -> dict[str, str]:
    """Outputs of a deployed stack; fails naming the stack and every missing key."""
    cfn = boto3.client("cloudformation", region_name=region)
    stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    missing = [key for key in required if key not in outputs]
    if missing:
        raise SettingMissing(f"stack {stack_name} has no output(s): {', '.join(missing)}")
    return outputs


def _local_settings() -> Settings:
    region = _region()
    endpoint = os.environ.get(ENV_ENDPOINT_URL) or LOCAL_ENDPOINT_URL
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
        lake_bucket=naming.lake_bucket(account),
        glue_database=naming.glue_database,
        crawler_name=naming.crawler,
        warehouse_path=os.environ.get(ENV_WAREHOUSE_PATH) or str(DEFAULT_WAREHOUSE_PATH),
    )


def _aws_settings() -> Settings:
    region = _region()
    naming = _naming(region)
    streaming = stack_outputs(naming.stack(STREAMING_STACK), STREAMING_OUTPUTS, region)
    analytics = stack_outputs(naming.stack(ANALYTICS_STACK), ANALYTICS_OUTPUTS, region)
    return Settings(
        environment=Environment.AWS,
        region=region,
        endpoint_url=None,
        table_name=streaming["TableName"],
        stream_name=streaming["StreamName"],
        function_name=streaming["FunctionName"],
        quarantine_bucket=streaming["QuarantineBucketName"],
        quarantine_prefix=streaming["QuarantinePrefix"],
        lake_bucket=analytics["LakeBucketName"],
        glue_database=analytics["GlueDatabaseName"],
        crawler_name=analytics["CrawlerName"],
        warehouse_path="",
        redshift=_redshift_settings(analytics),
    )


def _redshift_settings(analytics: dict[str, str]) -> RedshiftSettings | None:
    if analytics["RedshiftEndpointAddress"] == NO_WAREHOUSE:
        return None
    return RedshiftSettings(
        host=analytics["RedshiftEndpointAddress"],
        port=int(analytics["RedshiftPort"]),
        database=analytics["RedshiftDatabaseName"],
        copy_role_arn=analytics["RedshiftCopyRoleArn"],
        secret_arn=analytics["RedshiftSecretArn"],
    )


def load_settings() -> Settings:
    """Resolve the settings of the current environment (reads env vars and, in aws, stacks)."""
    if get_environment() is Environment.AWS:
        return _aws_settings()
    return _local_settings()
