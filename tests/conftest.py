"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local_cloud import defaults
from local_cloud.emulator import Emulator
from local_cloud.ports import free_port
from pipeline_platform.env_override import overridden
from tests.support.warehouses import RedshiftOnPostgres, redshift_on_postgres


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    """An AWS emulator (moto server over HTTP) for the whole session.

    Sets the environment so any boto3 client made afterwards talks to it, the
    same way `AWS_ENDPOINT_URL` points the code at the local cloud.
    """
    emulator = Emulator(port=free_port()).start()
    variables = {
        **defaults.CREDENTIALS,
        "AWS_ENDPOINT_URL": emulator.endpoint_url,
        "AWS_DEFAULT_REGION": defaults.REGION,
    }
    with overridden(variables):
        yield emulator.endpoint_url
        emulator.stop()


@pytest.fixture(scope="session")
def redshift_postgres(aws_endpoint: str) -> Iterator[RedshiftOnPostgres]:
    """A PostgreSQL server answering as Redshift (through the test proxy), for the whole
    session: its COPY reads the emulator's S3. Started by the first test that needs it."""
    with redshift_on_postgres(aws_endpoint, defaults.REGION) as warehouse:
        yield warehouse
