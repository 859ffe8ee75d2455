"""boto3 clients tuned for a short-lived, latency-bound function.

No endpoint is passed anywhere: boto3 reads `AWS_ENDPOINT_URL` itself, which
is how the same code reaches the local cloud.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

_session_lock = threading.Lock()
_session: boto3.session.Session | None = None


#: Seconds a request may wait for its answer: the stream processor is latency-bound.
READ_TIMEOUT_S = 5.0


def client_config(pool_size: int, read_timeout: float = READ_TIMEOUT_S) -> Config:
    """Settings shared by our clients.

    - parameter validation off: we build the requests and validate the data ourselves;
    - botocore retries off: our retries know the Lambda deadline and resend only
      what DynamoDB did not process;
    - a connection pool as large as the write concurrency, so threads never queue for one;
    - checksums only where an API requires them (PutObject does not).
    """
    return Config(
        parameter_validation=False,
        retries={"total_max_attempts": 1, "mode": "standard"},
        max_pool_connections=pool_size,
        connect_timeout=2,
        read_timeout=read_timeout,
        tcp_keepalive=True,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


def make_client(
    service: str,
    pool_size: int,
    endpoint_url: str | None = None,
    read_timeout: float = READ_TIMEOUT_S,
) -> Any:
    """A low-level client for `service` from one process-wide session.

    `endpoint_url` is for tools and tests that point one client elsewhere;
    left as None, boto3 honours `AWS_ENDPOINT_URL`. `read_timeout` is longer for work
    that reads much in one request (the silence check's scan). boto3 ships no type information
    (its clients are generated at runtime), hence `Any`.

    Creating clients from a shared session is not thread-safe, hence the lock;
    the clients themselves are safe to share between threads.
    """
    global _session
    with _session_lock:
        if _session is None:
            _session = boto3.session.Session()
        return _session.client(
            service, config=client_config(pool_size, read_timeout), endpoint_url=endpoint_url
        )
