"""A Kinesis stream mapped to a handler of a benchmark, deployed into a running emulator."""

from __future__ import annotations

import io
import uuid
import zipfile
from typing import Any

import boto3

from local_cloud import defaults


def deploy_mapped_stream(
    endpoint: str, handler: str, shards: int = 1, **mapping: Any
) -> tuple[str, str]:
    """Create a stream, a function running `handler` (a dotted path) and their event source
    mapping with `mapping`'s settings; returns (stream name, stream ARN)."""
    kw = {"endpoint_url": endpoint, "region_name": defaults.REGION}
    name = f"bench-{uuid.uuid4().hex[:8]}"
    kinesis, lambda_ = boto3.client("kinesis", **kw), boto3.client("lambda", **kw)
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    arn = kinesis.describe_stream(StreamName=name)["StreamDescription"]["StreamARN"]
    role = boto3.client("iam", **kw).create_role(RoleName=name, AssumeRolePolicyDocument="{}")
    # The local runtime imports the handler from this checkout; the zip only has to exist.
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("placeholder.py", "")
    lambda_.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role["Role"]["Arn"],
        Handler=handler,
        Code={"ZipFile": code.getvalue()},
    )
    lambda_.create_event_source_mapping(
        FunctionName=name,
        EventSourceArn=arn,
        StartingPosition="TRIM_HORIZON",
        FunctionResponseTypes=["ReportBatchItemFailures"],
        **mapping,
    )
    return name, arn
