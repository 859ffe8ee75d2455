"""The AWS API emulator: moto's server, run in this process on loopback.

Running it in-process (rather than as a child process) lets the local cloud
extend moto where it stores configuration but does not act on it, by hooking
the same backends the HTTP API serves.
"""

from __future__ import annotations

import logging
import socket
import time
import urllib.request
from dataclasses import dataclass

from moto.cloudformation.models import CloudFormationBackend
from moto.server import ThreadedMotoServer

from local_cloud.moto_kinesis import use_constant_time_sequence_lookups
from local_cloud.moto_routing import remember_backend_per_host

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4566
DEFAULT_REGION = "ap-southeast-2"

# Credentials the emulator accepts; real AWS never sees them.
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def _keep_change_set_outputs() -> None:
    """Make stacks created or updated through a change set report their outputs.

    moto (5.2) swaps in the change set's template on execution but keeps the
    outputs parsed from the previous one: a stack created through a change set
    has none, and its exports are never registered (so deleting it fails).
    Re-parse and register after executing, as AWS does.
    """
    execute = CloudFormationBackend.execute_change_set
    if getattr(execute, "keeps_outputs", False):
        return

    def execute_change_set(self, change_set_name, stack_name=None):
        execute(self, change_set_name, stack_name)
        for stack in self.stacks.values():
            if stack.template and stack.template_dict != stack.parse_template(stack.template):
                stack._parse_template()
                stack.output_map = stack._create_output_map()
                for export in stack.exports:
                    self.exports[export.name] = export

    execute_change_set.keeps_outputs = True
    CloudFormationBackend.execute_change_set = execute_change_set


def free_port(host: str = DEFAULT_HOST) -> int:
    """Return a TCP port on `host` that nothing is listening on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_free(port: int, host: str = DEFAULT_HOST) -> bool:
    """Whether a server could listen on `port` now.

    As the servers do, this sets SO_REUSEADDR: a port whose last connections linger in
    TIME_WAIT after a server stopped is free to listen on again.
    """
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


@dataclass
class Emulator:
    """A running moto server; `endpoint_url` is what boto3 clients point at."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    _server: ThreadedMotoServer | None = None

    @property
    def endpoint_url(self) -> str:
        """The HTTP endpoint of the emulator."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> Emulator:
        """Start serving and block until the emulator answers HTTP."""
        _keep_change_set_outputs()
        use_constant_time_sequence_lookups()  # PutRecord slows as a shard fills otherwise
        remember_backend_per_host()  # routing each request cost about 0.7 ms
        # One access-log line per request drowns everything else the local cloud says.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=1):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"AWS emulator did not start on {self.endpoint_url}"
                    ) from None
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop serving; state held by the emulator is discarded."""
        if self._server is not None:
            self._server.stop()
            self._server = None
