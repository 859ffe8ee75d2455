"""Port checks for the local cloud's servers, without loading any of them."""

from __future__ import annotations

import socket
from collections.abc import Mapping

from local_cloud.defaults import HOST


class PortInUse(RuntimeError):
    """A port a local server needs is taken; the message names it and says what to do."""

    def __init__(self, port: int, what: str, host: str = HOST, hint: str = "") -> None:
        self.port = port
        self.what = what
        self.host = host
        advice = hint or "stop what holds it (another `pipeline-platform up`?) or pick another port"
        super().__init__(f"port {port} for {what} is in use on {host}: {advice}")


def free_port(host: str = HOST) -> int:
    """Return a TCP port on `host` that nothing is listening on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int, host: str = HOST) -> bool:
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


def require_free(ports: Mapping[str, int], host: str = HOST, hint: str = "") -> None:
    """Raise `PortInUse` for the first of `ports` (what -> port) nothing could listen on now.

    Checked before anything starts, so a command fails within a second and leaves nothing
    running; the servers still report a bind that loses a race the same way.
    """
    for what, port in ports.items():
        if not port_is_free(port, host):
            raise PortInUse(port, what, host, hint)
