"""Starting and stopping the local cloud leaves the process as it found it."""

from __future__ import annotations

import os
import threading

from local_cloud.cloud import LocalCloud
from local_cloud.ports import free_port


def test_stopping_leaves_no_threads_behind(tmp_path, aws_endpoint):
    """GIVEN a second local cloud started and stopped
    WHEN it has stopped
    THEN none of its threads are left running."""
    before = {t.ident for t in threading.enumerate()}
    local = LocalCloud(
        state_dir=tmp_path, aws_port=free_port(), mqtt_port=free_port(), env="lcstop"
    )
    local.start()
    local.stop()
    assert os.environ.get("AWS_ENDPOINT_URL") == aws_endpoint  # restored, not dropped
    leftover = [
        t for t in threading.enumerate() if t.ident not in before and t.is_alive() and t.daemon
    ]
    leftover += [t for t in threading.enumerate() if t.ident not in before and not t.daemon]
    assert leftover == [], [t.name for t in leftover]


def test_a_local_cloud_that_does_not_persist_neither_restores_nor_saves(tmp_path, aws_endpoint):
    """GIVEN a state dir where a local cloud saved a table holding an item
    WHEN a local cloud with `persist=False` (the demo's) starts there, and stops
    THEN it starts with the table as its stacks create it (empty), and the saved state is
    left exactly as it was."""
    import boto3

    from local_cloud import defaults
    from local_cloud.persistence import SNAPSHOT_FILE
    from stream_processor import contract

    def table_items(local: LocalCloud) -> int:
        client = boto3.client(
            "dynamodb", endpoint_url=local.endpoint_url, region_name=defaults.REGION
        )
        return int(client.scan(TableName=local.naming.table, Select="COUNT")["Count"])

    kept = LocalCloud(state_dir=tmp_path, aws_port=free_port(), mqtt_port=free_port())
    kept.start()
    try:
        boto3.client(
            "dynamodb", endpoint_url=kept.endpoint_url, region_name=defaults.REGION
        ).put_item(
            TableName=kept.naming.table,
            Item={contract.DEVICE_ID: {"S": "sensor-1"}, contract.TIMESTAMP: {"N": "1700000000"}},
        )
    finally:
        kept.stop()
    saved = (tmp_path / SNAPSHOT_FILE).read_bytes()

    throwaway = LocalCloud(
        state_dir=tmp_path, aws_port=free_port(), mqtt_port=free_port(), persist=False
    )
    throwaway.start()
    try:
        assert table_items(throwaway) == 0
    finally:
        throwaway.stop()

    assert (tmp_path / SNAPSHOT_FILE).read_bytes() == saved
