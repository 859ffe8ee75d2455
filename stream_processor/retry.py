"""Retrying transient AWS failures within the invocation's remaining time.

botocore's own retries are switched off on our clients: they cannot see the
Lambda deadline, and they would resend items DynamoDB already stored instead
of only the `UnprocessedItems`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from botocore.exceptions import ChecksumError, ClientError, ConnectionError, HTTPClientError

#: Used when there is no Lambda context (local tools, tests without one).
DEFAULT_BUDGET_S = 30.0
#: Time kept back from the deadline to report failures and log before Lambda stops us.
SAFETY_MARGIN_S = 1.0
BASE_DELAY_S = 0.025
MAX_DELAY_S = 2.0

#: Error codes that mean "try again later" rather than "this request is wrong".
TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "Throttling",
        "SlowDown",
        "InternalServerError",
        "InternalError",
        "ServiceUnavailable",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)

T = TypeVar("T")


class Deadline:
    """When this invocation must stop retrying, from the Lambda context if there is one."""

    def __init__(self, context: object | None, margin_s: float = SAFETY_MARGIN_S) -> None:
        remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
        budget = remaining_ms() / 1000 if remaining_ms else DEFAULT_BUDGET_S
        self._ends_at = time.monotonic() + budget - margin_s

    def remaining(self) -> float:
        """Seconds left for work, possibly negative."""
        return self._ends_at - time.monotonic()


def is_transient(error: BaseException) -> bool:
    """True for throttling, 5xx answers, network failures and damaged answers: worth retrying."""
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in TRANSIENT_CODES or status >= 500
    return isinstance(error, ConnectionError | HTTPClientError | ChecksumError)


def backoff_delay(attempt: int) -> float:
    """Exponential backoff with full jitter (uniform in [0, base * 2**attempt], capped)."""
    return random.uniform(0, min(MAX_DELAY_S, BASE_DELAY_S * 2**attempt))


def wait_for_retry(attempt: int, deadline: Deadline) -> bool:
    """Sleep before attempt `attempt + 1`; False when the deadline leaves no room for it."""
    delay = backoff_delay(attempt)
    if deadline.remaining() <= delay:
        return False
    time.sleep(delay)
    return True


def call_with_retries(call: Callable[[], T], deadline: Deadline) -> T:
    """Run `call`, retrying transient errors until the deadline; re-raises the last error."""
    attempt = 0
    while True:
        try:
            return call()
        except Exception as error:
            if not is_transient(error) or not wait_for_retry(attempt, deadline):
                raise
            attempt += 1
