"""Deploy what the emulator's CloudFormation skips, from the same template.

moto's CloudFormation creates most resource types but silently skips some
(IoT topic rules, Glue databases and crawlers, CloudWatch alarms, CodeBuild projects) and
drops some properties
(DynamoDB point-in-time recovery). Rather than describe those resources a
second time, this module reads them from the rendered template, resolves the
intrinsic functions they use against the deployed stack, and creates them
through the service APIs, exactly as CloudFormation would have.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import boto3

Resolved = dict[str, Any]

_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


class TemplateResolver:
    """Evaluates the intrinsic functions of one deployed stack's template."""

    def __init__(
        self,
        template: dict[str, Any],
        parameters: dict[str, str],
        physical_ids: dict[str, str],
        arns: Callable[[str, str, str], str],
        pseudo: dict[str, str],
    ) -> None:
        self.template = template
        self.physical_ids = physical_ids
        self._arns = arns
        self.values = {**self._parameter_defaults(), **parameters, **pseudo}

    def _parameter_defaults(self) -> dict[str, str]:
        return {
            name: str(spec["Default"])
            for name, spec in self.template.get("Parameters", {}).items()
            if "Default" in spec
        }

    def condition(self, name: str) -> bool:
        """The truth of a named template condition."""
        return bool(self.resolve(self.template["Conditions"][name]))

    def ref(self, name: str) -> str:
        """What `Ref` returns: a parameter value or a resource's physical id."""
        if name in self.values:
            return self.values[name]
        if name in self.physical_ids:
            return self.physical_ids[name]
        raise KeyError(f"Ref to {name!r}: not a parameter and not a deployed resource")

    def resolve(self, node: Any) -> Any:
        """Return `node` with every intrinsic function replaced by its value."""
        if isinstance(node, list):
            return [v for v in (self.resolve(item) for item in node) if v is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            handler = self._FUNCTIONS.get(key)
            if handler is not None:
                return handler(self, arg)
        resolved = {k: self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def _ref(self, name: str) -> Any:
        return _NO_VALUE if name == "AWS::NoValue" else self.ref(name)

    def _get_att(self, arg: list[str] | str) -> str:
        logical, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
        resource_type = self.template["Resources"][logical]["Type"]
        if attribute == "Arn":
            return self._arns(resource_type, logical, self.ref(logical))
        if (resource_type, attribute) == ("AWS::SQS::Queue", "QueueName"):
            return self.ref(logical).rsplit("/", 1)[-1]  # a queue's Ref is its URL
        if (resource_type, attribute) == ("AWS::ECR::Repository", "RepositoryUri"):
            account, region = self.values["AWS::AccountId"], self.values["AWS::Region"]
            return f"{account}.dkr.ecr.{region}.amazonaws.com/{self.ref(logical)}"
        raise NotImplementedError(f"Fn::GetAtt {logical}.{attribute} is not supported")

    def _sub(self, arg: str | list[Any]) -> str:
        text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in extra:
                return str(extra[name])
            if "." in name:
                return self._get_att(name)
            return str(self.ref(name))

        return _SUB_VARIABLE.sub(substitute, text)

    def _join(self, arg: list[Any]) -> str:
        separator, items = arg
        return separator.join(str(v) for v in self.resolve(items))

    def _if(self, arg: list[Any]) -> Any:
        name, when_true, when_false = arg
        return self.resolve(when_true if self.condition(name) else when_false)

    def _equals(self, arg: list[Any]) -> bool:
        left, right = self.resolve(arg)
        return str(left) == str(right)

    def _not(self, arg: list[Any]) -> bool:
        return not self.resolve(arg[0])

    def _and(self, arg: list[Any]) -> bool:
        return all(self.resolve(arg))

    def _or(self, arg: list[Any]) -> bool:
        return any(self.resolve(arg))

    def _condition(self, name: str) -> bool:
        return self.condition(name)

    _FUNCTIONS: dict[str, Callable[[TemplateResolver, Any], Any]] = {
        "Ref": _ref,
        "Fn::GetAtt": _get_att,
        "Fn::Sub": _sub,
        "Fn::Join": _join,
        "Fn::If": _if,
        "Fn::Equals": _equals,
        "Fn::Not": _not,
        "Fn::And": _and,
        "Fn::Or": _or,
        "Condition": _condition,
    }


class _NoValue:
    """`AWS::NoValue`: the property is removed."""


_NO_VALUE = _NoValue()


def _camel(node: Any) -> Any:
    """CloudFormation's PascalCase property names to the IoT API's camelCase."""
    if isinstance(node, list):
        return [_camel(v) for v in node]
    if isinstance(node, dict):
        return {k[:1].lower() + k[1:]: _camel(v) for k, v in node.items()}
    return node


# --- The resources moto skips, created through their APIs --------------------
# Each filler receives a boto3 session bound to the emulator and the resolved
# properties, and returns the physical id CloudFormation would report.


def _topic_rule(session: boto3.Session, props: Resolved) -> str:
    iot = session.client("iot")
    name = props["RuleName"]
    payload = _camel(props["TopicRulePayload"])
    existing = {r["ruleName"] for r in iot.list_topic_rules().get("rules", [])}
    if name in existing:
        iot.replace_topic_rule(ruleName=name, topicRulePayload=payload)
    else:
        iot.create_topic_rule(ruleName=name, topicRulePayload=payload)
    return name


def _glue_database(session: boto3.Session, props: Resolved) -> str:
    glue = session.client("glue")
    database = props["DatabaseInput"]
    try:
        glue.create_database(DatabaseInput=database)
    except glue.exceptions.AlreadyExistsException:
        glue.update_database(Name=database["Name"], DatabaseInput=database)
    return database["Name"]


_CRAWLER_API_FIELDS = (
    "Name",
    "Role",
    "DatabaseName",
    "Description",
    "Targets",
    "Schedule",
    "Classifiers",
    "TablePrefix",
    "SchemaChangePolicy",
    "RecrawlPolicy",
    "LineageConfiguration",
    "Configuration",
)


def _glue_crawler(session: boto3.Session, props: Resolved) -> str:
    glue = session.client("glue")
    fields = {k: props[k] for k in _CRAWLER_API_FIELDS if k in props}
    if isinstance(fields.get("Schedule"), dict):
        fields["Schedule"] = fields["Schedule"]["ScheduleExpression"]
    try:
        glue.create_crawler(**fields)
    except glue.exceptions.AlreadyExistsException:
        glue.update_crawler(**fields)
    return fields["Name"]


def _codebuild_project(session: boto3.Session, props: Resolved) -> str:
    codebuild = session.client("codebuild")
    project = _camel(props)
    # The API spells the source's buildspec in lower case.
    source = dict(project["source"])
    if "buildSpec" in source:
        source["buildspec"] = source.pop("buildSpec")
    project["source"] = source
    name = project["name"]
    # The emulator has no UpdateProject, and its builds read nothing of a project but its
    # name: a project made before stays, with its builds.
    if not codebuild.batch_get_projects(names=[name])["projects"]:
        codebuild.create_project(**project)
    return str(name)


def _table_settings(session: boto3.Session, props: Resolved) -> str:
    """moto creates the table but drops point-in-time recovery; apply it."""
    name = props["TableName"]
    if props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"):
        session.client("dynamodb").update_continuous_backups(
            TableName=name,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )
    return name


_ALARM_API_FIELDS = (
    "AlarmName",
    "AlarmDescription",
    "ActionsEnabled",
    "OKActions",
    "AlarmActions",
    "InsufficientDataActions",
    "MetricName",
    "Namespace",
    "Statistic",
    "ExtendedStatistic",
    "Dimensions",
    "Period",
    "Unit",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
)
_ALARM_NUMBERS = {"Period": int, "EvaluationPeriods": int, "DatapointsToAlarm": int}


def _metric_alarm(session: boto3.Session, props: Resolved) -> str:
    """A CloudWatch alarm, as `PutMetricAlarm` creates it (the emulator evaluates none: its
    state changes only through `SetAlarmState`)."""
    fields = {k: props[k] for k in _ALARM_API_FIELDS if k in props}
    for name, kind in _ALARM_NUMBERS.items():
        if name in fields:
            fields[name] = kind(fields[name])
    if "Threshold" in fields:
        fields["Threshold"] = float(fields["Threshold"])  # a parameter's Ref is a string
    session.client("cloudwatch").put_metric_alarm(**fields)
    return fields["AlarmName"]


#: Resource types created here when the emulator skipped them, in dependency order.
_FILLERS: dict[str, Callable[[boto3.Session, Resolved], str]] = {
    "AWS::Glue::Database": _glue_database,
    "AWS::Glue::Crawler": _glue_crawler,
    "AWS::IoT::TopicRule": _topic_rule,
    "AWS::CloudWatch::Alarm": _metric_alarm,
    "AWS::CodeBuild::Project": _codebuild_project,
}
#: Resource types the emulator deploys but whose settings it partly drops.
_AMENDERS: dict[str, Callable[[boto3.Session, Resolved], str]] = {
    "AWS::DynamoDB::Table": _table_settings,
}


def _arn(session: boto3.Session, account: str, region: str) -> Callable[[str, str, str], str]:
    def arn(resource_type: str, logical: str, physical: str) -> str:
        if physical.startswith("arn:"):
            return physical
        if resource_type == "AWS::IAM::Role":
            return session.client("iam").get_role(RoleName=physical)["Role"]["Arn"]
        if resource_type == "AWS::S3::Bucket":
            return f"arn:aws:s3:::{physical}"
        if resource_type == "AWS::Kinesis::Stream":
            return f"arn:aws:kinesis:{region}:{account}:stream/{physical}"
        if resource_type == "AWS::DynamoDB::Table":
            return f"arn:aws:dynamodb:{region}:{account}:table/{physical}"
        if resource_type == "AWS::KMS::Key":
            return f"arn:aws:kms:{region}:{account}:key/{physical}"
        if resource_type == "AWS::Lambda::Function":
            return f"arn:aws:lambda:{region}:{account}:function:{physical}"
        if resource_type == "AWS::SNS::Topic":
            return physical
        if resource_type == "AWS::SQS::Queue":
            return f"arn:aws:sqs:{region}:{account}:{physical.rsplit('/', 1)[-1]}"
        raise NotImplementedError(f"no ARN rule for {resource_type} ({logical})")

    return arn


def create_skipped_resources(session: boto3.Session, stack_name: str) -> dict[str, str]:
    """Create what the emulator skipped of a deployed stack; return {logical id: physical id}.

    The template and parameter values are read back from the deployed stack, so
    what is created here is exactly what CloudFormation was asked for.
    Resources with a false `Condition` are left out, as CloudFormation does.
    """
    cfn = session.client("cloudformation")
    body = cfn.get_template(StackName=stack_name)["TemplateBody"]
    template = json.loads(body) if isinstance(body, str) else body
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}
    account = session.client("sts").get_caller_identity()["Account"]
    region = session.region_name
    physical_ids = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack_name)
        for r in page["StackResourceSummaries"]
    }
    resolver = TemplateResolver(
        template,
        parameters,
        physical_ids,
        _arn(session, account, region),
        {
            "AWS::AccountId": account,
            "AWS::Region": region,
            "AWS::StackName": stack_name,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        },
    )
    created: dict[str, str] = {}
    resources = template.get("Resources", {})
    for resource_type, filler in [*_FILLERS.items(), *_AMENDERS.items()]:
        for logical, resource in resources.items():
            if resource["Type"] != resource_type:
                continue
            if "Condition" in resource and not resolver.condition(resource["Condition"]):
                continue
            if resource_type in _FILLERS and logical in physical_ids:
                continue  # the emulator deployed it after all
            props = resolver.resolve(resource.get("Properties", {}))
            physical = filler(session, props)
            physical_ids.setdefault(logical, physical)
            created[logical] = physical
    return created
