"""The ECS cluster Dagster runs in (Fargate and Fargate Spot), and the tasks' log group."""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import AWSHelperFn, Ref, Template
from troposphere.ecs import (
    CapacityProviderStrategyItem,
    Cluster,
    ClusterConfiguration,
    ClusterSetting,
    ExecuteCommandConfiguration,
)
from troposphere.logs import LogGroup

from cloudformation.naming import Naming
from cloudformation.orchestration.parameters import OrchestrationParameters
from cloudformation.parameters import skip

#: Services and runs start on on-demand Fargate unless a run's tags ask for Spot.
ON_DEMAND = "FARGATE"
SPOT = "FARGATE_SPOT"


@dataclass(frozen=True)
class DagsterCluster:
    """The cluster and the log group of its tasks."""

    cluster: Cluster
    log_group: LogGroup


def on_demand() -> list[CapacityProviderStrategyItem]:
    """A capacity provider strategy of on-demand Fargate only."""
    return [CapacityProviderStrategyItem(CapacityProvider=ON_DEMAND, Weight=1)]


def add_cluster(
    t: Template, naming: Naming, params: OrchestrationParameters, *, key_arn: AWSHelperFn
) -> DagsterCluster:
    """Add the cluster and the encrypted log group every Dagster task writes to."""
    log_group = t.add_resource(
        LogGroup(
            "TaskLogGroup",
            LogGroupName=naming.dagster_log_group,
            RetentionInDays=Ref(params.log_retention_days),
            KmsKeyId=key_arn,
        )
    )
    cluster = t.add_resource(
        Cluster(
            "DagsterCluster",
            ClusterName=naming.dagster_cluster,
            CapacityProviders=[ON_DEMAND, SPOT],
            DefaultCapacityProviderStrategy=on_demand(),
            ClusterSettings=[ClusterSetting(Name="containerInsights", Value="disabled")],
            # ECS Exec sessions (the UI's port forwarding) are encrypted with the stack's key.
            Configuration=ClusterConfiguration(
                ExecuteCommandConfiguration=ExecuteCommandConfiguration(
                    KmsKeyId=key_arn, Logging="DEFAULT"
                )
            ),
            Metadata={
                "checkov": {
                    "skip": [
                        skip(
                            "CKV_AWS_65",
                            "Container Insights is off: run monitoring marks a dead run task "
                            "failed, the heartbeat alarm watches the daemon, and its custom "
                            "metrics would cost more than the tasks it watches.",
                        )
                    ]
                }
            },
        )
    )
    return DagsterCluster(cluster=cluster, log_group=log_group)
