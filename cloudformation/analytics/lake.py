"""The lake bucket: DynamoDB exports and the partitioned Parquet lake, under two prefixes."""

from __future__ import annotations

from troposphere import AWSHelperFn, Parameter, Ref, Sub, Template
from troposphere.s3 import Bucket

from cloudformation.buckets import BucketSpec, hardened_bucket
from cloudformation.naming import Naming

#: DynamoDB exports land here (`exports/AWSDynamoDB/<ExportId>/...`).
EXPORTS_PREFIX = "exports/"
#: The Parquet lake: `lake/sensor_readings/dt=YYYY-MM-DD/`, `lake/quarantined_records/dt=.../`.
LAKE_PREFIX = "lake/"


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
        ),
    )
