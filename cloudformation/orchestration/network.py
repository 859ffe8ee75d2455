"""Who may talk to whom: the Dagster tasks' security group, the database's, the warehouse rule.

Nothing is let in from outside: the webserver listens on the task's loopback and is
reached through SSM port forwarding, which needs no inbound rule. The tasks may reach
AWS's APIs over HTTPS, the database and the warehouse; the database only the tasks.
"""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import GetAtt, Ref, Template
from troposphere.ec2 import (
    SecurityGroup,
    SecurityGroupEgress,
    SecurityGroupIngress,
    SecurityGroupRule,
)

from cloudformation.naming import Naming
from cloudformation.orchestration.parameters import HAS_WAREHOUSE, OrchestrationParameters

POSTGRES_PORT = 5432
#: The Redshift cluster's port: the analytics stack keeps Redshift's default.
WAREHOUSE_PORT = 5439
HTTPS_PORT = 443


@dataclass(frozen=True)
class Network:
    """The two security groups."""

    tasks: SecurityGroup
    database: SecurityGroup


def add_network(t: Template, naming: Naming, params: OrchestrationParameters) -> Network:
    """Add the security groups and the rules between them (and the warehouse's)."""
    tasks = t.add_resource(
        SecurityGroup(
            "TaskSecurityGroup",
            GroupName=naming.name("sg", "dagstertasks"),
            GroupDescription="Dagster tasks: no inbound; out to AWS APIs, the database and the "
            "warehouse.",
            VpcId=Ref(params.vpc),
            SecurityGroupEgress=[
                SecurityGroupRule(
                    Description="AWS APIs, ECR and S3 over HTTPS (NAT gateway or VPC endpoints)",
                    IpProtocol="tcp",
                    FromPort=HTTPS_PORT,
                    ToPort=HTTPS_PORT,
                    CidrIp="0.0.0.0/0",
                )
            ],
        )
    )
    database = t.add_resource(
        SecurityGroup(
            "DatabaseSecurityGroup",
            GroupName=naming.name("sg", "dagsterdb"),
            GroupDescription="Dagster database: PostgreSQL from the Dagster tasks only.",
            VpcId=Ref(params.vpc),
            SecurityGroupIngress=[
                SecurityGroupRule(
                    Description="PostgreSQL from the Dagster tasks",
                    IpProtocol="tcp",
                    FromPort=POSTGRES_PORT,
                    ToPort=POSTGRES_PORT,
                    SourceSecurityGroupId=Ref(tasks),
                )
            ],
            # No egress rule of its own: a database answers, it never calls out.
            SecurityGroupEgress=[
                SecurityGroupRule(
                    Description="Nothing: the loopback range only",
                    IpProtocol="-1",
                    CidrIp="127.0.0.1/32",
                )
            ],
        )
    )
    t.add_resource(
        SecurityGroupEgress(
            "TasksToDatabase",
            GroupId=GetAtt(tasks, "GroupId"),
            Description="Dagster storage",
            IpProtocol="tcp",
            FromPort=POSTGRES_PORT,
            ToPort=POSTGRES_PORT,
            DestinationSecurityGroupId=GetAtt(database, "GroupId"),
        )
    )
    t.add_resource(
        SecurityGroupEgress(
            "TasksToWarehouse",
            Condition=HAS_WAREHOUSE,
            GroupId=GetAtt(tasks, "GroupId"),
            Description="The Redshift warehouse (loads and dbt)",
            IpProtocol="tcp",
            FromPort=WAREHOUSE_PORT,
            ToPort=WAREHOUSE_PORT,
            DestinationSecurityGroupId=Ref(params.stacks.warehouse_security_group),
        )
    )
    t.add_resource(
        SecurityGroupIngress(
            "WarehouseFromTasks",
            Condition=HAS_WAREHOUSE,
            GroupId=Ref(params.stacks.warehouse_security_group),
            Description=f"Dagster runs ({naming.env})",
            IpProtocol="tcp",
            FromPort=WAREHOUSE_PORT,
            ToPort=WAREHOUSE_PORT,
            SourceSecurityGroupId=GetAtt(tasks, "GroupId"),
        )
    )
    return Network(tasks=tasks, database=database)
