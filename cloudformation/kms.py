"""Customer managed KMS keys with rotation and an explicit key policy."""

from __future__ import annotations

from collections.abc import Iterable

from awacs import kms as k
from awacs.aws import Action, ArnEquals, ArnLike, Condition, Principal, Statement
from troposphere import GetAtt, Ref, Sub, Template
from troposphere.kms import Alias, Key

from cloudformation.iam import account_root, allow, arn, document

# The account administers the key through IAM. The actions are listed one by one
# (rather than `kms:*`) so no policy in the project grants a wildcard action; the
# list covers everything needed to manage, rotate, use and delete the key, which
# also satisfies KMS's lock-out check (the creator keeps `PutKeyPolicy`).
ACCOUNT_ADMIN_ACTIONS: tuple[Action, ...] = (
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
USE_ACTIONS: tuple[Action, ...] = (k.Decrypt, k.GenerateDataKey)
#: CloudWatch Logs encrypts a log group's events itself, so it needs more than `USE_ACTIONS`.
LOGS_ACTIONS: tuple[Action, ...] = (*USE_ACTIONS, k.Encrypt, k.DescribeKey)


def account_admin_statement() -> Statement:
    """Let the account's IAM policies decide who administers and uses the key."""
    return Statement(
        Sid="AccountAdministersTheKey",
        Effect="Allow",
        Principal=Principal("AWS", account_root()),
        Action=list(ACCOUNT_ADMIN_ACTIONS),
        Resource=["*"],  # in a key policy "*" means this key
    )


def service_statement(
    sid: str,
    service: str | Sub,
    actions: Iterable[Action],
    condition: Condition | None = None,
) -> Statement:
    """Let an AWS service principal use the key (for example CloudWatch Logs)."""
    statement = allow(actions, ["*"], sid=sid, condition=condition)
    statement.Principal = Principal("Service", service)
    return statement


def logs_statement(sid: str, log_group: str) -> Statement:
    """Let CloudWatch Logs of this region encrypt the log group(s) `log_group` with the key.

    A name with `*` covers every log group it matches (ArnLike); any other names
    exactly one (ArnEquals), so the key encrypts no one else's logs.
    """
    operator = ArnLike if "*" in log_group else ArnEquals
    return service_statement(
        sid,
        Sub("logs.${AWS::Region}.amazonaws.com"),
        LOGS_ACTIONS,
        condition=Condition(
            operator("kms:EncryptionContext:aws:logs:arn", arn("logs", f"log-group:{log_group}"))
        ),
    )


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
    template.add_resource(Alias(f"{title}Alias", AliasName=f"alias/{alias}", TargetKeyId=Ref(key)))
    return key


def key_arn(key: Key) -> GetAtt:
    """The key's ARN, the form IAM statements and most properties want."""
    return GetAtt(key, "Arn")
