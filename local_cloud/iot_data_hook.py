"""Route the IoT Data API's ``publish`` through the rules engine.

``aws iot-data publish`` and boto3's ``iot-data`` ``publish`` reach moto's IoT data-plane
backend, which only records the message. The emulator runs in this process, so this
module wraps that backend's ``publish``: moto's own behaviour is kept (the message is
still recorded) and the message is also handed to the rules engine, like a device's
message arriving over MQTT. ``clientid()`` of such a message is ``n/a``, as in AWS.

The wrapper is installed on the backend class once, however many hooks are active, and
removed when the last hook is removed, leaving moto exactly as it was.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import Any

from moto.iotdata.models import IoTDataPlaneBackend

from .iot_rules import NON_MQTT_CLIENT_ID, InboundMessage, now_ms

log = logging.getLogger(__name__)

_lock = threading.Lock()
_hooks: list[IotDataPublishHook] = []
_original_publish: Callable[..., None] | None = None


def _dispatch(backend: IoTDataPlaneBackend, topic: str, payload: Any) -> None:
    data = payload.encode() if isinstance(payload, str) else bytes(payload or b"")
    message = InboundMessage(topic, data, NON_MQTT_CLIENT_ID, now_ms())
    for hook in list(_hooks):
        if hook.accepts(backend.region_name, backend.account_id):
            try:
                hook.on_message(message)
            except Exception:  # the API call itself must still succeed
                log.exception("handing an iot-data message to the rules engine failed")


def _install() -> None:
    global _original_publish
    original = IoTDataPlaneBackend.publish
    _original_publish = original

    @functools.wraps(original)
    def publish(self: IoTDataPlaneBackend, topic: str, payload: bytes) -> None:
        original(self, topic, payload)
        _dispatch(self, topic, payload)

    IoTDataPlaneBackend.publish = publish  # type: ignore[method-assign]


def _uninstall() -> None:
    global _original_publish
    if _original_publish is not None:
        IoTDataPlaneBackend.publish = _original_publish  # type: ignore[method-assign]
        _original_publish = None


def is_installed() -> bool:
    """Whether moto's iot-data ``publish`` is currently wrapped."""
    return _original_publish is not None


class IotDataPublishHook:
    """Hands every iot-data ``publish`` in ``region`` (and account) to ``on_message``.

    ``start()`` installs, ``stop()`` removes; ``region`` / ``account_id`` of None accept
    any.
    """

    def __init__(
        self,
        on_message: Callable[[InboundMessage], None],
        *,
        region: str | None = None,
        account_id: str | None = None,
    ) -> None:
        self.on_message = on_message
        self.region = region
        self.account_id = account_id

    def accepts(self, region: str, account_id: str) -> bool:
        """Whether a publish made in this region and account is for this hook."""
        return (self.region is None or self.region == region) and (
            self.account_id is None or self.account_id == account_id
        )

    def start(self) -> IotDataPublishHook:
        """Install the hook (idempotent)."""
        with _lock:
            if self not in _hooks:
                if not _hooks:
                    _install()
                _hooks.append(self)
        return self

    def stop(self) -> None:
        """Remove the hook; moto's own ``publish`` is restored when none is left."""
        with _lock:
            if self in _hooks:
                _hooks.remove(self)
                if not _hooks:
                    _uninstall()
