"""Hardened S3 buckets: encrypted, private, TLS-only, versioned, expiring, logged."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from awacs import s3
from awacs.aws import Bool, Condition, Deny, Principal, Statement, StringEquals, StringLike
from troposphere import AccountId, AWSHelperFn, GetAtt, Join, NoValue, Ref, Template
from troposphere.s3 import (
    AbortIncompleteMultipartUpload,
    Bucket,
    BucketEncryption,
    BucketPolicy,
    LifecycleConfiguration,
    LifecycleRule,
    LoggingConfiguration,
    NoncurrentVersionExpiration,
    OwnershipControls,
    OwnershipControlsRule,
    PublicAccessBlockConfiguration,
    ServerSideEncryptionByDefault,
    ServerSideEncryptionRule,
    VersioningConfiguration,
)

from cloudformation.iam import allow, document

ABORT_INCOMPLETE_UPLOADS_DAYS = 7
NONCURRENT_VERSION_DAYS = 30


@dataclass
class BucketSpec:
    """How one bucket is hardened.

    `kms_key_arn` None means SSE-S3 (only for the access-log bucket: S3 server
    access logging cannot deliver to a KMS-encrypted bucket). `expire_days` None
    keeps current objects until deleted; `expire_prefixes` expires the objects under each
    of its key prefixes after its number of days.
    """

    title: str
    name: AWSHelperFn
    description: str
    kms_key_arn: AWSHelperFn | None = None
    log_bucket: AWSHelperFn | None = None
    log_prefix: str = ""
    expire_days: AWSHelperFn | int | None = None
    expire_prefixes: dict[str, int] = field(default_factory=dict)
    receives_access_logs: bool = False
    extra_statements: list[Statement] = field(default_factory=list)
    checkov_skips: list[dict[str, str]] = field(default_factory=list)


def tls_only_statement(bucket: Bucket) -> Statement:
    """Deny every request that does not arrive over TLS."""
    return Statement(
        Sid="DenyInsecureTransport",
        Effect=Deny,
        Principal=Principal("*"),
        Action=[s3.Action("*")],  # a Deny: the one place a wildcard narrows access
        Resource=[GetAtt(bucket, "Arn"), Join("", [GetAtt(bucket, "Arn"), "/*"])],
        Condition=Condition(Bool("aws:SecureTransport", "false")),
    )


def _encryption(kms_key_arn: AWSHelperFn | None) -> BucketEncryption:
    if kms_key_arn is None:
        default = ServerSideEncryptionByDefault(SSEAlgorithm="AES256")
        return BucketEncryption(
            ServerSideEncryptionConfiguration=[
                ServerSideEncryptionRule(ServerSideEncryptionByDefault=default)
            ]
        )
    default = ServerSideEncryptionByDefault(SSEAlgorithm="aws:kms", KMSMasterKeyID=kms_key_arn)
    return BucketEncryption(
        ServerSideEncryptionConfiguration=[
            # Bucket keys cut KMS requests (and cost) for many small objects.
            ServerSideEncryptionRule(ServerSideEncryptionByDefault=default, BucketKeyEnabled=True)
        ]
    )


def _lifecycle(
    expire_days: AWSHelperFn | int | None, expire_prefixes: dict[str, int]
) -> LifecycleConfiguration:
    rules = [
        LifecycleRule(
            Id="AbortIncompleteUploads",
            Status="Enabled",
            AbortIncompleteMultipartUpload=AbortIncompleteMultipartUpload(
                DaysAfterInitiation=ABORT_INCOMPLETE_UPLOADS_DAYS
            ),
            NoncurrentVersionExpiration=NoncurrentVersionExpiration(
                NoncurrentDays=NONCURRENT_VERSION_DAYS
            ),
        )
    ]
    if expire_days is not None:
        rules.append(
            LifecycleRule(Id="ExpireObjects", Status="Enabled", ExpirationInDays=expire_days)
        )
    for number, (prefix, days) in enumerate(sorted(expire_prefixes.items()), start=1):
        rules.append(
            LifecycleRule(
                Id=f"ExpirePrefix{number}", Status="Enabled", Prefix=prefix, ExpirationInDays=days
            )
        )
    return LifecycleConfiguration(Rules=rules)


def hardened_bucket(template: Template, spec: BucketSpec) -> Bucket:
    """Add the bucket and its TLS-only policy to `template`; return the bucket."""
    logging = (
        LoggingConfiguration(DestinationBucketName=spec.log_bucket, LogFilePrefix=spec.log_prefix)
        if spec.log_bucket is not None
        else NoValue
    )
    bucket = Bucket(
        spec.title,
        BucketName=spec.name,
        BucketEncryption=_encryption(spec.kms_key_arn),
        PublicAccessBlockConfiguration=PublicAccessBlockConfiguration(
            BlockPublicAcls=True,
            BlockPublicPolicy=True,
            IgnorePublicAcls=True,
            RestrictPublicBuckets=True,
        ),
        OwnershipControls=OwnershipControls(
            Rules=[OwnershipControlsRule(ObjectOwnership="BucketOwnerEnforced")]
        ),
        VersioningConfiguration=VersioningConfiguration(Status="Enabled"),
        LifecycleConfiguration=_lifecycle(spec.expire_days, spec.expire_prefixes),
        LoggingConfiguration=logging,
    )
    if spec.checkov_skips:
        bucket.Metadata = {"checkov": {"skip": spec.checkov_skips}}
    template.add_resource(bucket)
    statements = [tls_only_statement(bucket), *spec.extra_statements]
    if spec.receives_access_logs:
        statements.append(access_log_delivery_statement(bucket))
    template.add_resource(
        BucketPolicy(
            f"{spec.title}Policy",
            Bucket=Ref(bucket),
            PolicyDocument=document(statements),
        )
    )
    return bucket


def access_log_delivery_statement(bucket: Bucket, prefix: str = "") -> Statement:
    """Let S3's logging service deliver access logs of this account's buckets."""
    statement = allow(
        [s3.PutObject],
        [Join("", [GetAtt(bucket, "Arn"), f"/{prefix}*"])],
        sid="AllowServerAccessLogDelivery",
        condition=Condition(StringEquals("aws:SourceAccount", AccountId)),
    )
    statement.Principal = Principal("Service", "logging.s3.amazonaws.com")
    return statement


def objects_under(bucket: Bucket | AWSHelperFn, prefix: str | AWSHelperFn) -> Join:
    """ARN of every object under `prefix` in `bucket` (a bucket resource or an ARN)."""
    bucket_arn = GetAtt(bucket, "Arn") if isinstance(bucket, Bucket) else bucket
    return Join("", [bucket_arn, "/", prefix, "*"])


def list_prefixes(
    bucket_arn: AWSHelperFn, prefixes: Sequence[str | AWSHelperFn], sid: str | None = None
) -> Statement:
    """ListBucket limited to keys under `prefixes` (literals, or references to parameters).

    Without `sid` the statement is named for its literal prefixes (`ListLake`,
    `ListExportsAndLake`).
    """
    patterns = [
        pattern
        for prefix in prefixes
        for pattern in (
            prefix,
            f"{prefix}*" if isinstance(prefix, str) else Join("", [prefix, "*"]),
        )
    ]
    return allow(
        [s3.ListBucket],
        [bucket_arn],
        sid=sid or "List" + "And".join(str(p).strip("/").capitalize() for p in prefixes),
        condition=Condition(StringLike("s3:prefix", patterns)),
    )
