"""The lake bucket: DynamoDB exports, the partitioned Parquet lake and the pipeline's own
records, under three prefixes (`cloudformation.layout`)."""

from __future__ import annotations

from troposphere import AWSHelperFn, Parameter, Ref, Sub, Template
from troposphere.s3 import Bucket

from cloudformation.buckets import BucketSpec, hardened_bucket
from cloudformation.layout import (
    COMPUTE_LOGS_EXPIRE_DAYS,
    COMPUTE_LOGS_PREFIX,
    EXPORTS_PREFIX,
    LAKE_PREFIX,
    PIPELINE_PREFIX,
)
from cloudformation.naming import Naming

__all__ = ["EXPORTS_PREFIX", "LAKE_PREFIX", "PIPELINE_PREFIX", "add_lake_bucket"]


def add_lake_bucket(
    t: Template, naming: Naming, key_arn: AWSHelperFn, *, access_log_bucket: Parameter
) -> Bucket:
    """Add the lake bucket, encrypted with the lake key and logged to the access-log bucket."""
    return hardened_bucket(
        t,
        BucketSpec(
            title="LakeBucket",
            name=Sub(naming.bucket_sub("lake")),
            description="DynamoDB exports and the partitioned Parquet lake.",
            kms_key_arn=key_arn,
            log_bucket=Ref(access_log_bucket),
            log_prefix="lake/",  # where its access logs go in the log bucket
            # The Dagster runs' step output (written by the orchestration stack's tasks).
            expire_prefixes={COMPUTE_LOGS_PREFIX: COMPUTE_LOGS_EXPIRE_DAYS},
        ),
    )
