"""Customer managed KMS keys with rotation and an explicit key policy."""

from __future__ import annotations

from collections.abc import Iterable

from awacs import kms as k
from awacs.aws import Principal, Statement
from troposphere import GetAtt, Sub, Template
from troposphere.kms import Alias, Key

from cloudformation.iam import allow, document

# The account administers the key through IAM. The actions are listed one by one
# (rather than `kms:*`) so no policy in the project grants a wildcard action; the
# list covers everything needed to manage, rotate, use and delete the key, which
# also satisfies KMS's lock-out check (the creator keeps `PutKeyPolicy`).
ACCOUNT_ADMIN_ACTIONS = (
    k.CancelKeyDeletion,
    k.CreateAlias,
    k.CreateGrant,
    k.Decrypt,
    k.DeleteAlias,
    k.DescribeKey,
    k.DisableKey,
    k.DisableKeyRotation,
    k.EnableKey,
    k.EnableKeyRotation,
    k.Encrypt,
    k.GenerateDataKey,
    k.GenerateDataKeyWithoutPlaintext,
    k.GetKeyPolicy,
    k.GetKeyRotationStatus,
    k.ListAliases,
    k.ListGrants,
    k.ListKeyPolicies,
    k.ListResourceTags,
    k.PutKeyPolicy,
    k.ReEncryptFrom,
    k.ReEncryptTo,
    k.RetireGrant,
    k.RevokeGrant,
    k.RotateKeyOnDemand,
    k.ScheduleKeyDeletion,
    k.TagResource,
    k.UntagResource,
    k.UpdateAlias,
    k.UpdateKeyDescription,
)

#: What a principal needs to write and read data encrypted under the key.
USE_ACTIONS = (k.Decrypt, k.GenerateDataKey)


def account_admin_statement() -> Statement:
    """Let the account's IAM policies decide who administers and uses the key."""
    return Statement(
        Sid="AccountAdministersTheKey",
        Effect="Allow",
        Principal=Principal("AWS", Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")),
        Action=list(ACCOUNT_ADMIN_ACTIONS),
        Resource=["*"],  # in a key policy "*" means this key
    )


def service_statement(sid: str, service: str | Sub, actions, condition=None) -> Statement:
    """Let an AWS service principal use the key (for example CloudWatch Logs)."""
    statement = allow(actions, ["*"], sid=sid, condition=condition)
    statement.Principal = Principal("Service", service)
    return statement


def customer_key(
    template: Template,
    title: str,
    *,
    alias: str,
    description: str,
    service_statements: Iterable[Statement] = (),
) -> Key:
    """Add a rotating customer managed key and its alias; return the key."""
    key = template.add_resource(
        Key(
            title,
            Description=description,
            EnableKeyRotation=True,
            PendingWindowInDays=30,
            KeyPolicy=document([account_admin_statement(), *service_statements]),
        )
    )
    template.add_resource(Alias(f"{title}Alias", AliasName=f"alias/{alias}", TargetKeyId=key.ref()))
    return key


def key_arn(key: Key) -> GetAtt:
    """The key's ARN, the form IAM statements and most properties want."""
    return GetAtt(key, "Arn")
