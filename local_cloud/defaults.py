"""Where the local cloud listens and what it accepts unless told otherwise.

This module owns these facts for every caller: the CLI, the demo, the UI runner,
the tests and the pipeline's `local` settings. It imports nothing of the local
cloud itself (no moto, no broker), so a plain install without the `local` extra
can read it.
"""

from __future__ import annotations

from pathlib import Path

from cloudformation.naming import DEFAULT_REGION, SENSOR_TOPIC

#: Every local service listens on loopback only.
HOST = "127.0.0.1"
#: The AWS API emulator (the port LocalStack made customary for local AWS endpoints).
AWS_PORT = 4566
#: The MQTT broker (MQTT's registered port, without TLS).
MQTT_PORT = 1883
#: The region the local cloud deploys into and clients default to.
REGION = DEFAULT_REGION
#: The topic the devices publish to.
TOPIC = SENSOR_TOPIC
#: All local state (checkpoints, function logs, the DuckDB warehouse), relative to the
#: working directory.
STATE_DIR = Path(".platform")
#: Credentials the emulator accepts; real AWS never sees them.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
#: Hosts that mean "this machine": an endpoint there is a local cloud, never AWS.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def endpoint_url(port: int = AWS_PORT, host: str = HOST) -> str:
    """The emulator's HTTP endpoint on `host:port`."""
    return f"http://{host}:{port}"


#: The emulator's endpoint with the default host and port.
ENDPOINT_URL = endpoint_url()
