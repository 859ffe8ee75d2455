"""The streaming stack's buckets: S3 access logs, and quarantined records with rule errors."""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import AWSHelperFn, Parameter, Ref, Sub, Template
from troposphere.s3 import Bucket

from cloudformation.buckets import BucketSpec, hardened_bucket
from cloudformation.naming import Naming
from cloudformation.parameters import skip

#: Days S3 access logs are kept.
ACCESS_LOG_RETENTION_DAYS = 365


@dataclass(frozen=True)
class StreamingBuckets:
    """The two buckets, for the concerns that write to them."""

    access_logs: Bucket
    quarantine: Bucket


def add_buckets(
    t: Template, naming: Naming, key_arn: AWSHelperFn, *, quarantine_retention_days: Parameter
) -> StreamingBuckets:
    """Add the access-log bucket and the quarantine bucket (logged into the first)."""
    access_logs = hardened_bucket(
        t,
        BucketSpec(
            title="AccessLogBucket",
            name=Sub(naming.bucket_sub("accesslogs")),
            description="S3 server access logs of the project's buckets.",
            # S3 server access logging cannot deliver to a KMS-encrypted bucket.
            kms_key_arn=None,
            expire_days=ACCESS_LOG_RETENTION_DAYS,
            receives_access_logs=True,
            checkov_skips=[
                skip("CKV_AWS_18", "This is the access-log target; logging it into itself loops."),
            ],
        ),
    )
    quarantine = hardened_bucket(
        t,
        BucketSpec(
            title="QuarantineBucket",
            name=Sub(naming.bucket_sub("quarantine")),
            description="Quarantined records and topic rule errors.",
            kms_key_arn=key_arn,
            log_bucket=Ref(access_logs),
            log_prefix="quarantine/",
            expire_days=Ref(quarantine_retention_days),
        ),
    )
    return StreamingBuckets(access_logs=access_logs, quarantine=quarantine)
