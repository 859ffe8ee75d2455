"""Port checks for the local cloud's servers, without loading any of them."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from local_cloud.defaults import HOST

#: Where `free_port` looks first: registered ports well above the well-known ones.
_FIRST_CHOSEN_PORT = 20_000
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


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


@dataclass(frozen=True)
class Listener:
    """A port a command is about to listen on: what serves there, and how to choose another."""

    port: int
    #: What would listen there, e.g. "the AWS emulator".
    what: str
    #: The command-line option that picks another port, e.g. "--aws-port".
    option: str


class PortInUse(RuntimeError):
    """Ports a command needs are taken; the message names each one and what to do."""

    def __init__(self, taken: list[Listener], host: str) -> None:
        self.taken = taken
        lines = []
        for listener in taken:
            holder = holder_of(listener.port, host)
            held = f" (held by {holder})" if holder else ""
            lines.append(
                f"port {listener.port} ({listener.what}) is in use on {host}{held}; "
                f"stop what holds it, or pass {listener.option} with a free port"
            )
        super().__init__("\n".join(lines))


def require_free(listeners: Iterable[Listener], host: str = HOST) -> None:
    """Raise `PortInUse`, naming every taken port at once, unless all of `listeners` are free.

    Checked before anything starts, so a taken port fails the command in well under a
    second and leaves nothing running.
    """
    wanted = list(listeners)
    taken = [listener for listener in wanted if not port_is_free(listener.port, host)]
    if taken:
        raise PortInUse(taken, host)


#: How much of the holder's command line a message shows.
_COMMAND_CHARS = 100


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
