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
