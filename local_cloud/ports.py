"""Port checks for the local cloud's servers, without loading any of them."""

from __future__ import annotations

import random
import socket
from collections.abc import Mapping
from pathlib import Path

from local_cloud.defaults import HOST

#: Where `free_port` looks first: registered ports well above the well-known ones.
_FIRST_CHOSEN_PORT = 20_000
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
#: How much of the holder's command line a message shows.
_COMMAND_CHARS = 100


class PortInUse(RuntimeError):
    """A port a local server needs is taken; the message names it, who holds it (when this
    user may see that) and what to do."""

    def __init__(self, port: int, what: str, host: str = HOST, hint: str = "") -> None:
        self.port = port
        self.what = what
        self.host = host
        holder = holder_of(port, host)
        held = f" (held by {holder})" if holder else ""
        advice = hint or "stop what holds it (another `pipeline-platform up`?) or pick another port"
        super().__init__(f"port {port} for {what} is in use on {host}{held}: {advice}")


def free_port(host: str = HOST) -> int:
    """Return a TCP port on `host` that nothing is listening on right now.

    Where the system says which ports it hands out to outgoing connections (Linux), the
    port is chosen below that range: a port the kernel picked (bind to port 0) is one
    of those, and on a busy machine a client connection elsewhere can take it between
    this call and the server's bind ("address already in use").
    """
    try:
        first_ephemeral = int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        first_ephemeral = 0
    if first_ephemeral > _FIRST_CHOSEN_PORT:
        chooser = random.SystemRandom()
        for _ in range(100):
            port = chooser.randrange(_FIRST_CHOSEN_PORT, first_ephemeral)
            if port_is_free(port, host):
                return port
    with socket.socket() as sock:
        sock.bind((host, 0))
        chosen: int = sock.getsockname()[1]
        return chosen


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


def require_free(
    ports: Mapping[str, int], host: str = HOST, hint: str | Mapping[str, str] = ""
) -> None:
    """Raise `PortInUse` for the first of `ports` (what -> port) nothing could listen on now.

    Checked before anything starts, so a command fails within a second and leaves nothing
    running; the servers still report a bind that loses a race the same way. `hint` says
    what to do: one text for every port, or one per `what` (e.g. the option that picks
    another port for it).
    """
    for what, port in ports.items():
        if not port_is_free(port, host):
            advice = hint if isinstance(hint, str) else hint.get(what, "")
            raise PortInUse(port, what, host, advice)


def holder_of(port: int, host: str = HOST) -> str | None:
    """'pid N: command line' of the process listening on `port`, when this user may see it."""
    try:
        import psutil
    except ImportError:  # psutil comes with dagster; without it the message names no process
        return None
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return None
    for connection in connections:
        if (
            connection.status == psutil.CONN_LISTEN
            and connection.laddr
            and connection.laddr.port == port
            and connection.laddr.ip in (host, "0.0.0.0", "::")
            and connection.pid
        ):
            try:
                command = " ".join(" ".join(psutil.Process(connection.pid).cmdline()).split())
            except psutil.Error:
                command = "?"
            if len(command) > _COMMAND_CHARS:
                command = command[: _COMMAND_CHARS - 3] + "..."
            return f"pid {connection.pid}: {command}"
    return None
