"""Fixtures shared by every test package."""

from __future__ import annotations

import os

import pytest

from pipeline_platform.local_cloud.emulator import (
    DEFAULT_REGION,
    LOCAL_CREDENTIALS,
    Emulator,
    free_port,
)


@pytest.fixture(scope="session")
def aws_endpoint() -> str:
    """An AWS emulator (moto server over HTTP) for the whole session.

    Sets the environment so any boto3 client made afterwards talks to it, the
    same way `AWS_ENDPOINT_URL` points the code at the local cloud.
    """
    emulator = Emulator(port=free_port()).start()
    saved = {
        k: os.environ.get(k) for k in [*LOCAL_CREDENTIALS, "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION"]
    }
    os.environ.update(LOCAL_CREDENTIALS)
    os.environ["AWS_ENDPOINT_URL"] = emulator.endpoint_url
    os.environ["AWS_DEFAULT_REGION"] = DEFAULT_REGION
    yield emulator.endpoint_url
    emulator.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
