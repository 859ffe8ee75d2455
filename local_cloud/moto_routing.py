"""Remember which moto service answers each host name, instead of working it out per request.

moto's server (5.2) routes every HTTP request by its host name: it lists moto's package
directory (a `listdir` and an `isdir` per service) and then tries each service's URL
patterns in turn, about 0.7 ms per request on a 2-core machine, under a lock that
every request thread shares. The answer depends only on the host name and on moto's
installed services, so it is computed once per host here. A host no service answers is
not remembered, so moto still reports it on every request as before.
"""

from __future__ import annotations

from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication

#: moto's own routing, kept for comparison and to undo the patch.
MOTO_GET_BACKEND_FOR_HOST = DomainDispatcherApplication.get_backend_for_host


def get_backend_for_host(app: DomainDispatcherApplication, host: str | None) -> Any:
    """moto's answer for `host`, computed on the first request for it."""
    known: dict[str | None, Any] = app.__dict__.setdefault("_backend_by_host", {})
    backend = known.get(host)
    if backend is None:
        backend = MOTO_GET_BACKEND_FOR_HOST(app, host)
        if backend is not None:
            known[host] = backend
    return backend


def remember_backend_per_host() -> None:
    """Route each host name once per server; safe to call twice."""
    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]
