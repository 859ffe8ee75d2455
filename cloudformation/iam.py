"""IAM building blocks: ARNs scoped to this account and region, roles and statements.

Policies are written with awacs so every action is a typed name (a typo fails at
import, not at deploy) and no statement ever needs a wildcard action.
"""

from __future__ import annotations

from collections.abc import Iterable

from awacs.aws import Action, Allow, Condition, Policy, Principal, Statement
from awacs.sts import AssumeRole
from troposphere import AWSHelperFn, Sub, iam

POLICY_VERSION = "2012-10-17"


#: The resource of actions that have no resource types (such as reading CloudWatch metrics).
NO_RESOURCE_TYPE = "*"
#: Those actions: the only ones a statement may grant on `NO_RESOURCE_TYPE`.
ACTIONS_WITHOUT_RESOURCE_TYPES = frozenset(
    {
        "cloudwatch:GetMetricStatistics",
        "cloudwatch:PutMetricData",  # narrowed by the `cloudwatch:namespace` condition key
        "ecr:GetAuthorizationToken",
        "ecs:DescribeTaskDefinition",
        "ec2:DescribeNetworkInterfaces",
        # ECS Exec: the SSM agent's channels in a task
        "ssmmessages:CreateControlChannel",
        "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel",
    }
)


def arn(service: str, resource: str) -> Sub:
    """An ARN in this stack's partition, region and account.

    `resource` is the part after the account id and may hold `${...}` references
    that `Fn::Sub` resolves (parameters, logical ids).
    """
    return Sub(f"arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:{resource}")


def global_arn(service: str, resource: str) -> Sub:
    """An ARN of a global service (S3 buckets and objects have no region or account)."""
    return Sub(f"arn:${{AWS::Partition}}:{service}:::{resource}")


def account_root() -> Sub:
    """The ARN of this account's root principal: "this account" in trust and key policies."""
    return Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")


def allow(
    actions: Iterable[Action],
    resources: Iterable[AWSHelperFn | str],
    *,
    sid: str | None = None,
    condition: Condition | None = None,
) -> Statement:
    """An Allow statement; `actions` are awacs actions, never wildcards."""
    optional: dict[str, str | Condition] = {}
    if sid:
        optional["Sid"] = sid
    if condition is not None:
        optional["Condition"] = condition
    return Statement(Effect=Allow, Action=list(actions), Resource=list(resources), **optional)


def document(statements: Iterable[Statement]) -> Policy:
    """A policy document holding `statements`."""
    return Policy(Version=POLICY_VERSION, Statement=list(statements))


def role(
    title: str,
    *,
    role_name: str,
    principal: Principal,
    policy_name: str,
    statements: Iterable[Statement],
    description: str,
) -> iam.Role:
    """A role that only `principal` may assume, with one inline least-privilege policy.

    The policy is inline (not a separate resource) so the role is complete the
    moment it exists: Lambda checks the stream permissions when the event source
    mapping is created, and a later-attached policy would race that check.
    """
    return iam.Role(
        title,
        RoleName=role_name,
        Description=description,
        AssumeRolePolicyDocument=document(
            [Statement(Effect=Allow, Action=[AssumeRole], Principal=principal)]
        ),
        Policies=[iam.Policy(PolicyName=policy_name, PolicyDocument=document(statements))],
    )


def service_role(
    title: str,
    *,
    role_name: str,
    service: str | AWSHelperFn,
    policy_name: str,
    statements: Iterable[Statement],
    description: str,
) -> iam.Role:
    """A `role` that only the AWS service `service` (such as `lambda.amazonaws.com`) may assume."""
    return role(
        title,
        role_name=role_name,
        principal=Principal("Service", service),
        policy_name=policy_name,
        statements=statements,
        description=description,
    )
