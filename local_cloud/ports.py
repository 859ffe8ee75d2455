"""Port checks for the local cloud's servers, without loading any of them."""

from __future__ import annotations

import socket

from local_cloud.defaults import HOST


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
