"""What a deployment tells its alarm topic: failed runs, failed asset checks, and the daemon's
heartbeat (whose silence the orchestration stack's alarm reports).

The alarm topic is the streaming stack's (`Settings.alarm_topic_arn`), so one
subscription hears the stream's alarms and the batch side's. The sensors run in the
daemon, on the laptop (`make ui`, against the local cloud's SNS) as in AWS.
"""

from __future__ import annotations

import os

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import AssetCheckEvaluation
from dagster._core.events import DagsterEventType

from cloudformation.dagster_tasks import (
    HEARTBEAT_DIMENSION,
    HEARTBEAT_INTERVAL_SECONDS,
    HEARTBEAT_METRIC,
    HEARTBEAT_NAMESPACE,
)
from cloudformation.naming import DEFAULT_ENV
from pipeline_platform.environment import ENV_DEPLOYMENT
from pipeline_platform.resources.cloud import CloudResource

#: SNS takes subjects of at most 100 characters.
SUBJECT_MAX = 100
#: A failure's message is cut to this many characters (SNS takes 256 KB; a mail reader less).
DETAIL_MAX = 4000


def failed_checks(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """`<asset key> <check name>: <description>` of every check that failed in the run."""
    records = instance.get_records_for_run(
        run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    failed = []
    for record in records:
        event = record.event_log_entry.dagster_event
        evaluation = event.event_specific_data if event is not None else None
        if not isinstance(evaluation, AssetCheckEvaluation) or evaluation.passed:
            continue
        described = f": {evaluation.description}" if evaluation.description else ""
        failed.append(f"{evaluation.asset_key.to_user_string()} {evaluation.check_name}{described}")
    return failed


def step_errors(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """`<step>: <error>` of every step that failed in the run."""
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_FAILURE).records
    errors = []
    for record in records:
        event = record.event_log_entry.dagster_event
        failure = event.event_specific_data if event is not None else None
        error = getattr(failure, "error", None)
        cause = getattr(error, "cause", None) or error
        if event is not None and cause is not None:
            errors.append(f"{event.step_key}: {cause.message.strip()}")  # "<class>: <text>"
    return errors


def run_message(run: dg.DagsterRun, headline: str, details: list[str]) -> tuple[str, str]:
    """The subject and body of a notification about `run`."""
    subject = f"{headline}: {run.job_name} {run.run_id[:8]}"[:SUBJECT_MAX]
    body = "\n".join(
        [
            f"{headline}.",
            f"Job: {run.job_name}",
            f"Run: {run.run_id}",
            *(f"{k}: {v}" for k, v in sorted(run.tags.items()) if not k.startswith(".")),
            "",
            *details,
        ]
    )
    return subject, body[:DETAIL_MAX]


def publish(cloud: CloudResource, subject: str, body: str) -> str:
    """Publish to the deployment's alarm topic; return the message id."""
    response = cloud.client("sns").publish(
        TopicArn=cloud.settings.alarm_topic_arn, Subject=subject, Message=body
    )
    return str(response["MessageId"])


@dg.run_failure_sensor(
    name="notify_failed_runs",
    default_status=dg.DefaultSensorStatus.RUNNING,
    monitor_all_code_locations=True,
)
def notify_failed_runs(context: dg.RunFailureSensorContext, cloud: CloudResource) -> None:
    """Tell the alarm topic about a failed run: its job, tags, error and failed checks."""
    run = context.dagster_run
    error = context.failure_event.message or "no error message"
    steps = step_errors(context.instance, run.run_id)
    checks = failed_checks(context.instance, run.run_id)
    details = [
        f"Error: {error}",
        *(f"Failed step {s}" for s in steps),
        *(f"Failed check: {c}" for c in checks),
    ]
    publish(cloud, *run_message(run, "Dagster run failed", details))


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    name="notify_failed_checks",
    default_status=dg.DefaultSensorStatus.RUNNING,
    monitor_all_code_locations=True,
)
def notify_failed_checks(context: dg.RunStatusSensorContext, cloud: CloudResource) -> None:
    """Tell the alarm topic about a run that succeeded with failed (non-blocking) checks."""
    run = context.dagster_run
    checks = failed_checks(context.instance, run.run_id)
    if checks:
        details = [f"Failed check: {c}" for c in checks]
        publish(cloud, *run_message(run, "Dagster asset checks failed", details))


@dg.sensor(
    name="daemon_heartbeat",
    minimum_interval_seconds=HEARTBEAT_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def daemon_heartbeat(context: dg.SensorEvaluationContext, cloud: CloudResource) -> dg.SkipReason:
    """One datapoint a minute while the daemon evaluates sensors; the stack's alarm fires on
    their absence."""
    deployment = os.environ.get(ENV_DEPLOYMENT, DEFAULT_ENV)
    cloud.client("cloudwatch").put_metric_data(
        Namespace=HEARTBEAT_NAMESPACE,
        MetricData=[
            {
                "MetricName": HEARTBEAT_METRIC,
                "Dimensions": [{"Name": HEARTBEAT_DIMENSION, "Value": deployment}],
                "Value": 1.0,
                "Unit": "Count",
            }
        ],
    )
    return dg.SkipReason(f"heartbeat sent for {deployment}")


sensors = [notify_failed_runs, notify_failed_checks, daemon_heartbeat]
