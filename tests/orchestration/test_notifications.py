"""What the deployment tells its alarm topic: a failed run, a failed check, and the daemon's
heartbeat, against the local cloud's SNS (a queue subscribed to the topic reads what a
subscriber would receive) and CloudWatch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import dagster as dg
import pytest
from dagster._core.events import DagsterEventType

from cloudformation.dagster_tasks import (
    HEARTBEAT_DIMENSION,
    HEARTBEAT_METRIC,
    HEARTBEAT_NAMESPACE,
)
from cloudformation.outputs import StreamingOutput
from pipeline_platform.defs.notifications.sensors import (
    daemon_heartbeat,
    notify_failed_checks,
    notify_failed_runs,
)
from pipeline_platform.env_override import overridden
from pipeline_platform.resources.by_environment import cloud_resource

pytestmark = pytest.mark.integration


@dg.asset
def broken_export() -> None:
    """An asset whose step fails, as a run fails in production."""
    raise RuntimeError("the export of window 2026-12-01-10:00 failed: AccessDenied")


@dg.asset(check_specs=[dg.AssetCheckSpec("rows_reconcile", asset="loaded")])
def loaded():
    """An asset that materialises, with a check that fails (not blocking the run)."""
    yield dg.Output(1)
    yield dg.AssetCheckResult(
        check_name="rows_reconcile", passed=False, description="lake 10 rows, warehouse 9"
    )


@pytest.fixture
def alarm_queue(deployment) -> Iterator[str]:
    """A queue subscribed to the deployment's alarm topic; the settings name that deployment."""
    topic = deployment.outputs["streaming"][StreamingOutput.ALARM_TOPIC_ARN]
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=f"alarms-{datetime.now(UTC):%H%M%S%f}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    boto3.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    with overridden({"DEPLOYMENT_ENV": deployment.naming.env}):
        yield url


def _received(url: str) -> list[dict[str, str]]:
    messages = (
        boto3.client("sqs")
        .receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        .get("Messages", [])
    )
    return [json.loads(m["Body"]) for m in messages]


def test_a_failed_run_is_told_to_the_alarm_topic(alarm_queue, deployment):
    """GIVEN a run that failed WHEN the failed-run sensor evaluates it THEN the alarm topic's
    subscriber receives its job, run id and the step's error."""
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([broken_export], instance=instance, raise_on_error=False)
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    (failure,) = instance.get_records_for_run(
        result.run_id, of_type=DagsterEventType.RUN_FAILURE
    ).records
    with dg.build_run_status_sensor_context(
        sensor_name="notify_failed_runs",
        dagster_event=failure.event_log_entry.dagster_event,
        dagster_instance=instance,
        dagster_run=run,
        resources={"cloud": cloud_resource()},
    ) as context:
        notify_failed_runs(context.for_run_failure())

    (message,) = _received(alarm_queue)
    assert message["TopicArn"] == deployment.outputs["streaming"][StreamingOutput.ALARM_TOPIC_ARN]
    assert message["Subject"] == f"Dagster run failed: {run.job_name} {run.run_id[:8]}"
    assert f"Run: {result.run_id}" in message["Message"]
    assert (
        "Failed step broken_export: RuntimeError: the export of window 2026-12-01-10:00 "
        "failed: AccessDenied"
    ) in message["Message"]


def test_a_run_with_a_failed_check_is_told_and_a_clean_one_is_not(alarm_queue):
    """GIVEN a successful run whose check failed, and one without checks WHEN the failed-check
    sensor evaluates both THEN only the first reaches the topic, naming the check."""
    instance = dg.DagsterInstance.ephemeral()
    with_failed_check = dg.materialize([loaded], instance=instance)

    @dg.asset
    def clean() -> int:
        return 1

    without_checks = dg.materialize([clean], instance=instance)
    for result in (with_failed_check, without_checks):
        (success,) = instance.get_records_for_run(
            result.run_id, of_type=DagsterEventType.RUN_SUCCESS
        ).records
        with dg.build_run_status_sensor_context(
            sensor_name="notify_failed_checks",
            dagster_event=success.event_log_entry.dagster_event,
            dagster_instance=instance,
            dagster_run=instance.get_run_by_id(result.run_id),
            resources={"cloud": cloud_resource()},
        ) as context:
            notify_failed_checks(context)

    (message,) = _received(alarm_queue)
    assert message["Subject"].startswith("Dagster asset checks failed")
    assert with_failed_check.run_id in message["Message"]
    assert "loaded rows_reconcile: lake 10 rows, warehouse 9" in message["Message"]


def test_the_heartbeat_puts_the_metric_the_stack_alarms_on(deployment):
    """GIVEN the daemon evaluating the heartbeat sensor THEN CloudWatch holds a datapoint of
    the metric, namespace and deployment the orchestration stack's alarm watches."""
    with (
        overridden({"DEPLOYMENT_ENV": deployment.naming.env}),
        dg.build_sensor_context(resources={"cloud": cloud_resource()}) as context,
    ):
        daemon_heartbeat(context)
    now = datetime.now(UTC)
    stats = boto3.client("cloudwatch").get_metric_statistics(
        Namespace=HEARTBEAT_NAMESPACE,
        MetricName=HEARTBEAT_METRIC,
        Dimensions=[{"Name": HEARTBEAT_DIMENSION, "Value": deployment.naming.env}],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=1),
        Period=60,
        Statistics=["SampleCount"],
    )
    assert sum(p["SampleCount"] for p in stats["Datapoints"]) >= 1
