"""The AWS API emulator: moto's server, run in this process on loopback.

Running it in-process (rather than as a child process) lets the local cloud
extend moto where it stores configuration but does not act on it, by hooking
the same backends the HTTP API serves.
"""

from __future__ import annotations

import logging
import time
import urllib.request
from dataclasses import dataclass

from moto.server import ThreadedMotoServer

from local_cloud import defaults, moto_patches


@dataclass
class Emulator:
    """A running moto server; `endpoint_url` is what boto3 clients point at."""

    host: str = defaults.HOST
    port: int = defaults.AWS_PORT
    _server: ThreadedMotoServer | None = None

    @property
    def endpoint_url(self) -> str:
        """The HTTP endpoint of the emulator."""
        return defaults.endpoint_url(self.port, self.host)

    def start(self, timeout: float = 10.0) -> Emulator:
        """Start serving and block until the emulator answers HTTP."""
        moto_patches.install()
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
            moto_patches.uninstall()
