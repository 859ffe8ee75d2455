"""Deploy and destroy the stacks with boto3, through change sets.

Everything goes through a boto3 session, so `AWS_ENDPOINT_URL` (which boto3
honours natively) points the same code at the local cloud.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import ClientError

from cloudformation.image_build import ImageBuildFailed, deploy_with_image
from cloudformation.naming import (
    ANALYTICS_STACK,
    ARTIFACTS_PURPOSE,
    ORCHESTRATION_STACK,
    STREAMING_STACK,
    Naming,
)
from cloudformation.outputs import AnalyticsOutput, StreamingOutput
from cloudformation.package import LambdaPackage, build_package
from cloudformation.stacks import STACKS, build_templates, render_compact

CAPABILITIES = ["CAPABILITY_NAMED_IAM"]
#: The orchestration stack's parameter for the first day of the batch side's write windows.
FIRST_WRITE_DAY_PARAMETER = "FirstWriteDay"
#: Larger template bodies must be passed by URL from S3.
MAX_TEMPLATE_BODY_BYTES = 51_200
_NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
_DONE = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}
# A stack whose first creation rolled back cannot be updated, only replaced.
_REPLACE_FIRST = {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED"}


class DeployError(RuntimeError):
    """A stack could not be created, updated or deleted; the message says why."""


Log = Callable[[str], None]


def _quiet(_: str) -> None:
    """Default log sink: say nothing."""


def deploy(
    naming: Naming,
    *,
    stacks: tuple[str, ...] | None = None,
    parameters: Mapping[str, Mapping[str, str]] | None = None,
    session: boto3.Session | None = None,
    poll_seconds: float = 5.0,
    log: Log = _quiet,
    after_each: Callable[[str], None] | None = None,
) -> dict[str, dict[str, str]]:
    """Package the function, then create or update each stack; return outputs by stack purpose.

    `parameters` maps a stack purpose to template parameter values given by the
    caller (for example analytics `SubnetIds`); the code location and the values
    one stack takes from another's outputs are filled in here. The orchestration
    stack runs the image of the current source, built in AWS (`image_build`).
    `after_each(stack_name)`, when given, runs after each stack is created or updated
    (the local cloud creates there what its emulator skips).
    """
    session = session or boto3.Session(region_name=naming.region)
    parameters = parameters or {}
    templates = build_templates(naming, stacks)
    cfn = session.client("cloudformation")
    s3 = session.client("s3")
    account_id = session.client("sts").get_caller_identity()["Account"]
    artifacts = naming.bucket(ARTIFACTS_PURPOSE, account_id)

    package = build_package()
    ensure_artifact_bucket(s3, artifacts, naming.region)
    upload_package(s3, artifacts, package, log)

    outputs: dict[str, dict[str, str]] = {}
    for purpose, template in templates.items():
        stack_name = naming.stack(purpose)
        known = _derived_parameters(purpose, artifacts, package, outputs, cfn, naming)
        values = {**known, **parameters.get(purpose, {})}

        def apply(
            values: Mapping[str, str], stack_name: str = stack_name, template: Any = template
        ) -> dict[str, str]:
            result = deploy_stack(
                cfn,
                s3,
                stack_name=stack_name,
                template_body=render_compact(template),
                template_parameters=template.parameters,
                values=values,
                artifacts_bucket=artifacts,
                region=naming.region,
                poll_seconds=poll_seconds,
                log=log,
            )
            if after_each is not None:
                after_each(stack_name)
            return result

        if purpose == ORCHESTRATION_STACK:
            try:
                outputs[purpose] = deploy_with_image(
                    session,
                    naming,
                    artifacts_bucket=artifacts,
                    values=values,
                    # A stack whose creation rolled back is created again, as from nothing.
                    stack_exists=_stack_status(cfn, stack_name) not in (None, *_REPLACE_FIRST),
                    apply=apply,
                    upload=lambda key, data: upload_artifact(s3, artifacts, key, data, log),
                    poll_seconds=poll_seconds,
                    log=log,
                )
            except ImageBuildFailed as error:
                raise DeployError(str(error)) from error
        else:
            outputs[purpose] = apply(values)
    return outputs


def destroy(
    naming: Naming,
    *,
    stacks: tuple[str, ...] | None = None,
    empty_buckets: bool = False,
    session: boto3.Session | None = None,
    poll_seconds: float = 5.0,
    log: Log = _quiet,
) -> list[str]:
    """Delete the stacks (dependents first); return the names of stacks deleted.

    With `empty_buckets`, the stacks' buckets are emptied first (every object
    version) so CloudFormation can delete them, and the artifact bucket made by
    `deploy` is emptied and deleted too. Without it, a non-empty bucket makes the
    deletion fail and its data stays.
    """
    session = session or boto3.Session(region_name=naming.region)
    wanted = tuple(STACKS) if stacks is None else stacks
    build_templates(naming, wanted)  # validates the purposes
    cfn = session.client("cloudformation")
    s3 = session.client("s3")
    deleted = []
    for purpose in reversed([p for p in STACKS if p in wanted]):
        stack_name = naming.stack(purpose)
        if _stack_status(cfn, stack_name) is None:
            log(f"{stack_name}: not deployed")
            continue
        if empty_buckets:
            for bucket in _stack_buckets(cfn, stack_name):
                empty_bucket(s3, bucket, log)
        log(f"{stack_name}: deleting")
        cfn.delete_stack(StackName=stack_name)
        _wait_deleted(cfn, stack_name, poll_seconds)
        deleted.append(stack_name)
    if empty_buckets and stacks is None:
        account_id = session.client("sts").get_caller_identity()["Account"]
        artifacts = naming.bucket(ARTIFACTS_PURPOSE, account_id)
        if empty_bucket(s3, artifacts, log):
            s3.delete_bucket(Bucket=artifacts)
            log(f"{artifacts}: deleted")
    return deleted


def ensure_artifact_bucket(s3: Any, bucket: str, region: str) -> None:
    """Create the private, encrypted artifact bucket unless it exists."""
    try:
        s3.head_bucket(Bucket=bucket)
        return
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("404", "NoSuchBucket", "NotFound"):
            raise
    kwargs: dict[str, Any] = {}
    if region != "us-east-1":  # the one region that rejects an explicit constraint
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(Bucket=bucket, **kwargs)
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )


def upload_package(s3: Any, bucket: str, package: LambdaPackage, log: Log = _quiet) -> None:
    """Upload the zip under its content-addressed key unless it is already there."""
    upload_artifact(s3, bucket, package.s3_key, package.data, log)


def upload_artifact(s3: Any, bucket: str, key: str, data: bytes, log: Log = _quiet) -> None:
    """Upload a content-addressed artifact unless it is already there."""
    try:
        s3.head_object(Bucket=bucket, Key=key)
        log(f"s3://{bucket}/{key}: already uploaded")
        return
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
            raise
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    log(f"s3://{bucket}/{key}: uploaded ({len(data)} bytes)")


def deploy_stack(
    cfn: Any,
    s3: Any,
    *,
    stack_name: str,
    template_body: str,
    template_parameters: Mapping[str, Any],
    values: Mapping[str, str],
    artifacts_bucket: str,
    region: str,
    poll_seconds: float = 5.0,
    log: Log = _quiet,
) -> dict[str, str]:
    """Create or update one stack through a change set; return its outputs.

    A change set with nothing to change is deleted and the stack left as it is.
    """
    status = _stack_status(cfn, stack_name)
    if status in _REPLACE_FIRST:
        log(f"{stack_name}: {status}, deleting before creating again")
        cfn.delete_stack(StackName=stack_name)
        _wait_deleted(cfn, stack_name, poll_seconds)
        status = None
    creating = status in (None, "REVIEW_IN_PROGRESS")
    stack_parameters = _parameter_list(template_parameters, values, updating=not creating)
    source = _template_source(s3, template_body, artifacts_bucket, stack_name, region)
    change_set = f"deploy-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}"
    try:
        cfn.create_change_set(
            StackName=stack_name,
            ChangeSetName=change_set,
            ChangeSetType="CREATE" if creating else "UPDATE",
            Parameters=stack_parameters,
            Capabilities=CAPABILITIES,
            **source,
        )
    except ClientError as error:
        # Some endpoints refuse an empty change set outright instead of failing it.
        if creating or not _is_no_changes(error.response["Error"].get("Message", "")):
            raise
        log(f"{stack_name}: no changes")
        return stack_outputs(cfn, stack_name)
    description = _wait_change_set(cfn, stack_name, change_set, poll_seconds)
    if description["Status"] == "FAILED":
        reason = description.get("StatusReason", "")
        if not creating and _is_no_changes(reason):
            cfn.delete_change_set(StackName=stack_name, ChangeSetName=change_set)
            log(f"{stack_name}: no changes")
            return stack_outputs(cfn, stack_name)
        raise DeployError(f"{stack_name}: change set failed: {reason}")
    log(f"{stack_name}: {'creating' if creating else 'updating'}")
    cfn.execute_change_set(StackName=stack_name, ChangeSetName=change_set)
    final = _wait_stack(cfn, stack_name, poll_seconds)
    if final not in _DONE:
        raise DeployError(f"{stack_name}: ended {final}: {_failure_reasons(cfn, stack_name)}")
    log(f"{stack_name}: {final}")
    return stack_outputs(cfn, stack_name)


def stack_outputs(cfn: Any, stack_name: str) -> dict[str, str]:
    """The stack's outputs as `{OutputKey: OutputValue}`."""
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def empty_bucket(s3: Any, bucket: str, log: Log = _quiet) -> bool:
    """Delete every object version and delete marker; False if the bucket does not exist."""
    try:
        pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket)
        removed = 0
        for page in pages:
            keys = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
            ]
            if keys:  # delete_objects takes at most 1,000 keys; a page holds at most that
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
                removed += len(keys)
    except ClientError as error:
        if error.response["Error"]["Code"] == "NoSuchBucket":
            return False
        raise
    log(f"{bucket}: emptied ({removed} object versions)")
    return True


# --- helpers -----------------------------------------------------------------


def _is_no_changes(message: str) -> bool:
    return any(marker in message for marker in _NO_CHANGES)


def _derived_parameters(
    purpose: str,
    artifacts: str,
    package: LambdaPackage,
    outputs: Mapping[str, Mapping[str, str]],
    cfn: Any,
    naming: Naming,
) -> dict[str, str]:
    """Parameter values this module knows: the code location, other stacks' outputs."""
    if purpose == STREAMING_STACK:
        return {"CodeS3Bucket": artifacts, "CodeS3Key": package.s3_key}

    def outputs_of(other: str) -> Mapping[str, str]:
        if other in outputs:
            return outputs[other]
        try:
            return stack_outputs(cfn, naming.stack(other))
        except ClientError as error:
            raise DeployError(
                f"the {purpose} stack needs the {other} stack's outputs; "
                f"deploy the {other} stack first"
            ) from error

    # A stack's parameters that carry another's outputs are named after them.
    if purpose == ANALYTICS_STACK:
        streaming = outputs_of(STREAMING_STACK)
        taken = (
            StreamingOutput.TABLE_ARN,
            StreamingOutput.QUARANTINE_BUCKET_NAME,
            StreamingOutput.QUARANTINE_PREFIX,
            StreamingOutput.DATA_KEY_ARN,
            StreamingOutput.ACCESS_LOG_BUCKET_NAME,
        )
        return {str(key): streaming[key] for key in taken}
    if purpose == ORCHESTRATION_STACK:
        streaming, analytics = outputs_of(STREAMING_STACK), outputs_of(ANALYTICS_STACK)
        values = {
            str(key): streaming[key]
            for key in (StreamingOutput.ALARM_TOPIC_ARN, StreamingOutput.DATA_KEY_ARN)
        }
        values.update(
            {
                str(key): analytics[key]
                for key in (
                    AnalyticsOutput.ORCHESTRATOR_ROLE_ARN,
                    AnalyticsOutput.LAKE_BUCKET_NAME,
                    AnalyticsOutput.LAKE_KEY_ARN,
                    AnalyticsOutput.WAREHOUSE_SECURITY_GROUP_ID,
                )
            }
        )
        if _stack_status(cfn, naming.stack(purpose)) is None:
            # Write windows start on the day of the first deploy (kept on later updates).
            values[FIRST_WRITE_DAY_PARAMETER] = datetime.now(UTC).date().isoformat()
        return values
    return {}


def _parameter_list(
    template_parameters: Mapping[str, Any], values: Mapping[str, str], *, updating: bool
) -> list[dict[str, Any]]:
    """The API's parameter list; fails before any change if a required value is missing."""
    unknown = sorted(set(values) - set(template_parameters))
    if unknown:
        raise DeployError(f"unknown parameter(s) {unknown}")
    result: list[dict[str, Any]] = []
    missing = []
    for name, parameter in template_parameters.items():
        if name in values:
            result.append({"ParameterKey": name, "ParameterValue": str(values[name])})
        elif updating:
            # Keep what the stack was deployed with rather than falling back to the default.
            result.append({"ParameterKey": name, "UsePreviousValue": True})
        elif "Default" not in parameter.properties:
            missing.append(name)
    if missing:
        raise DeployError(f"missing required parameter(s) {missing}")
    return result


def _template_source(
    s3: Any, body: str, artifacts_bucket: str, stack_name: str, region: str
) -> dict[str, str]:
    if len(body.encode()) <= MAX_TEMPLATE_BODY_BYTES:
        return {"TemplateBody": body}
    key = f"templates/{stack_name}/{uuid.uuid4().hex}.json"
    s3.put_object(Bucket=artifacts_bucket, Key=key, Body=body.encode())
    return {"TemplateURL": f"https://{artifacts_bucket}.s3.{region}.amazonaws.com/{key}"}


def _stack_status(cfn: Any, stack_name: str) -> str | None:
    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if "does not exist" in error.response["Error"].get("Message", ""):
            return None
        raise
    status = stacks[0]["StackStatus"] if stacks else None
    return None if status == "DELETE_COMPLETE" else status


def _wait_change_set(
    cfn: Any, stack_name: str, change_set: str, poll_seconds: float
) -> dict[str, Any]:
    while True:
        description: dict[str, Any] = cfn.describe_change_set(
            StackName=stack_name, ChangeSetName=change_set
        )
        if description["Status"] in ("CREATE_COMPLETE", "FAILED"):
            return description
        time.sleep(poll_seconds)


def _wait_stack(cfn: Any, stack_name: str, poll_seconds: float) -> str:
    while True:
        status = _stack_status(cfn, stack_name)
        if status is None or not status.endswith("_IN_PROGRESS"):
            return status or "DELETE_COMPLETE"
        time.sleep(poll_seconds)


def _wait_deleted(cfn: Any, stack_name: str, poll_seconds: float) -> None:
    final = _wait_stack(cfn, stack_name, poll_seconds)
    if final != "DELETE_COMPLETE":
        raise DeployError(f"{stack_name}: ended {final}: {_failure_reasons(cfn, stack_name)}")


def _failure_reasons(cfn: Any, stack_name: str) -> str:
    events = cfn.describe_stack_events(StackName=stack_name)["StackEvents"]
    reasons = [
        f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}"
        for e in events
        if e["ResourceStatus"].endswith("_FAILED")
    ]
    return "; ".join(reasons[:10]) or "no failure reason recorded"


def _stack_buckets(cfn: Any, stack_name: str) -> list[str]:
    pages = cfn.get_paginator("list_stack_resources").paginate(StackName=stack_name)
    return [
        r["PhysicalResourceId"]
        for page in pages
        for r in page["StackResourceSummaries"]
        if r["ResourceType"] == "AWS::S3::Bucket" and r.get("PhysicalResourceId")
    ]
