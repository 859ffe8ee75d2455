"""The emulator's remembered routing sends each request to the service moto would."""

from __future__ import annotations

import uuid

import boto3
import pytest
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from local_cloud import moto_routing


@pytest.mark.parametrize(
    "host",
    [
        "dynamodb.ap-southeast-2.amazonaws.com",
        "kinesis.ap-southeast-2.amazonaws.com",
        "s3.amazonaws.com",
        "glue.ap-southeast-2.amazonaws.com",
        "moto_api",
        None,
    ],
)
def test_remembered_routing_agrees_with_moto(host):
    """GIVEN moto's dispatcher
    WHEN a host is routed twice with the remembered lookup
    THEN both answers are the one moto's own routing gives."""
    app = DomainDispatcherApplication(create_backend_app)
    expected = moto_routing.MOTO_GET_BACKEND_FOR_HOST(app, host)
    assert moto_routing.get_backend_for_host(app, host) == expected
    assert moto_routing.get_backend_for_host(app, host) == expected


def test_unknown_host_is_not_remembered(capsys):
    """GIVEN a host no moto service answers
    WHEN it is routed twice
    THEN moto reports it both times, as it does without the cache."""
    app = DomainDispatcherApplication(create_backend_app)
    for _ in range(2):
        assert moto_routing.get_backend_for_host(app, "nothing.example.amazonaws.com") is None
    assert capsys.readouterr().out.count("Unable to find appropriate backend") == 2


def test_requests_to_several_services_reach_each_service(aws_endpoint):
    """GIVEN the running emulator (which remembers routes)
    WHEN one client after another calls different services on the same endpoint
    THEN each call is answered by its own service."""
    dynamodb = boto3.client("dynamodb", endpoint_url=aws_endpoint)
    kinesis = boto3.client("kinesis", endpoint_url=aws_endpoint)
    sqs = boto3.client("sqs", endpoint_url=aws_endpoint)
    queue = sqs.create_queue(QueueName=f"route-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    for _ in range(2):
        assert "TableNames" in dynamodb.list_tables()
        assert "StreamNames" in kinesis.list_streams()
        assert queue in sqs.list_queues()["QueueUrls"]
