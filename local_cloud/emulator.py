"""The AWS API emulator: moto's server, run in this process on loopback.

Running it in-process (rather than as a child process) lets the local cloud
extend moto where it stores configuration but does not act on it, by hooking
the same backends the HTTP API serves.

The listening socket is bound in the caller's thread before anything serves, so a
taken port fails `start()` at once with `PortInUse` (moto's own threaded server
binds in its thread and, when the port is taken, leaves its caller waiting forever).
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from local_cloud import defaults, moto_internals, moto_patches
from local_cloud.ports import PortInUse


@dataclass
class Emulator:
    """A running moto server; `endpoint_url` is what boto3 clients point at."""

    host: str = defaults.HOST
    port: int = defaults.AWS_PORT
    #: WSGI middleware applied around moto's application (persistence counts writes here).
    wrap_app: Any = None
    _server: Any = None
    _thread: threading.Thread | None = None
    _patched: bool = field(default=False, repr=False)

    @property
    def endpoint_url(self) -> str:
        """The HTTP endpoint of the emulator."""
        return defaults.endpoint_url(self.port, self.host)

    @property
    def listening_socket(self) -> socket.socket | None:
        """The server's listening socket while it serves (a snapshot child closes its copy)."""
        return None if self._server is None else self._server.socket

    def start(self, timeout: float = 10.0) -> Emulator:
        """Bind, start serving and block until the emulator answers HTTP.

        Raises `PortInUse` when the port is taken.
        """
        from werkzeug.serving import make_server

        sock = _listen(self.host, self.port)
        moto_patches.install()
        self._patched = True
        try:
            # One access-log line per request drowns everything else the local cloud says.
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
            app: Any = moto_internals.server_application()
            if self.wrap_app is not None:
                app = self.wrap_app(app)
            with sock:
                self._server = make_server(
                    self.host,
                    self.port,
                    app,
                    threaded=True,
                    request_handler=moto_internals.server_request_handler(),
                    fd=sock.fileno(),
                )
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name=f"aws-emulator-{self.port}",
                daemon=True,
            )
            self._thread.start()
            self._wait_until_serving(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_serving(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"AWS emulator did not start on {self.endpoint_url}"
                    ) from None
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop serving; state held by the emulator stays in this process's moto backends."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        if self._patched:
            self._patched = False
            moto_patches.uninstall()


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port, or `PortInUse`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # As werkzeug does: a port whose old connections linger in TIME_WAIT is free.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            raise PortInUse(port, "the AWS emulator", host) from None
        raise
    sock.set_inheritable(False)
    return sock
