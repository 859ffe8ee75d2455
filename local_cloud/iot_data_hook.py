"""Route the IoT Data API's ``publish`` through the rules engine.

``aws iot-data publish`` and boto3's ``iot-data`` ``publish`` reach moto's IoT data-plane
backend, which only records the message. `moto_patches` hands every such message to
its listeners after moto recorded it; a hook is one listener, giving the message to
the rules engine like a device's message arriving over MQTT. ``clientid()`` of such a
message is ``n/a``, as in AWS.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from local_cloud import moto_patches
from local_cloud.iot_rules import NON_MQTT_CLIENT_ID, InboundMessage, now_ms

_lock = threading.Lock()


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

    def _deliver(self, backend: Any, topic: str, payload: bytes) -> None:
        if self.accepts(backend.region_name, backend.account_id):
            self.on_message(InboundMessage(topic, payload, NON_MQTT_CLIENT_ID, now_ms()))

    def start(self) -> IotDataPublishHook:
        """Start receiving publishes (idempotent)."""
        with _lock:
            if self._deliver not in moto_patches.on_iot_data_publish:
                moto_patches.on_iot_data_publish.append(self._deliver)
        return self

    def stop(self) -> None:
        """Stop receiving publishes."""
        with _lock:
            if self._deliver in moto_patches.on_iot_data_publish:
                moto_patches.on_iot_data_publish.remove(self._deliver)
