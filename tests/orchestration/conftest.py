"""The three stacks deployed into the emulator, in a network of their own, for the tests here."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import boto3
import pytest

from cloudformation.deploy import deploy
from cloudformation.naming import Naming
from local_cloud.cloud import LOCAL_ANALYTICS_PARAMETERS
from local_cloud.skipped_resources import create_skipped_resources


@dataclass(frozen=True)
class Deployment:
    """A deployment of the three stacks, and the network it was given."""

    naming: Naming
    outputs: dict[str, dict[str, str]]
    vpc: str
    subnets: list[str]
    log: list[str]


def private_network() -> tuple[str, list[str]]:
    """A VPC with two private subnets in two zones and DNS host names, as a user names them
    to the stacks."""
    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    # As VPC endpoints (the tasks' way to AWS's APIs without a NAT gateway) require.
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=zone)["Subnet"][
            "SubnetId"
        ]
        for i, zone in enumerate(("ap-southeast-2a", "ap-southeast-2b"))
    ]
    return vpc, subnets


def deploy_all(
    env: str, network: tuple[str, list[str]] | None = None, *, again: bool = False
) -> Deployment:
    """`stack deploy` of the three stacks into the emulator (no warehouse, as locally), the
    resources the emulator skips created from the templates after each stack; in a new
    network unless given one. `again`: a second deploy, which creates only the build
    project again (the emulator cannot update the Glue crawler the first one created)."""
    naming = Naming(env)
    vpc, subnets = network or private_network()
    session = boto3.Session(region_name=naming.region)
    log: list[str] = []

    def fill_skipped(stack: str) -> None:
        if not again or stack == naming.stack("orchestration"):
            create_skipped_resources(session, stack)

    moto_log = logging.getLogger("moto")
    level = moto_log.level
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # moto warns once per resource type it skips
        moto_log.setLevel(logging.ERROR)
        try:
            outputs = deploy(
                naming,
                parameters={
                    "analytics": LOCAL_ANALYTICS_PARAMETERS,
                    "orchestration": {"VpcId": vpc, "SubnetIds": ",".join(subnets)},
                },
                session=session,
                poll_seconds=0.05,
                log=log.append,
                after_each=fill_skipped,
            )
        finally:
            moto_log.setLevel(level)
    return Deployment(naming, outputs, vpc, subnets, log)


@pytest.fixture(scope="session")
def deployment(aws_endpoint) -> Deployment:
    """The three stacks of env `orch`, deployed once for the tests here."""
    return deploy_all("orch")
