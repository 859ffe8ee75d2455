"""An embedded MQTT broker (amqtt) whose published messages feed the rules engine.

The broker runs in a thread of its own with its own asyncio loop, so it serves devices
while the rest of the local cloud (the emulator, the rules engine, the stream processor)
runs in other threads of the same process. Anonymous clients are allowed, as on a laptop.

Each message the broker accepts for delivery (QoS 0 and 1) is handed to ``on_message``
with its topic, payload bytes and the PUBLISHER's client id. That comes from the
broker's ``broker_message_broadcast`` plugin event; an internal subscriber to ``#``
would only see its own id, which would make ``clientid()`` in rule SQL meaningless.
``on_message`` runs on the broker's loop, so it must not block (the rules engine's
``submit`` only queues).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from amqtt.broker import Broker
from amqtt.plugins.base import BasePlugin

from local_cloud import defaults
from local_cloud.ports import PortInUse, port_is_free

from .iot_rules import InboundMessage, now_ms

log = logging.getLogger(__name__)


MessageSink = Callable[[InboundMessage], None]


class RulesEngineHandoff(BasePlugin):
    """amqtt plugin: passes every accepted PUBLISH to the sink the broker wrapper sets."""

    @dataclass
    class Config:
        """No settings: the sink is attached after the broker is built."""

    sink: MessageSink | None = None

    async def on_broker_message_broadcast(self, *, client_id: str, message: Any) -> None:
        """Called by amqtt for each message it is about to deliver."""
        if self.sink is None:
            return
        try:
            self.sink(InboundMessage(message.topic, bytes(message.data), client_id, now_ms()))
        except Exception:  # a sink failure must never take the broker down
            log.exception("handing an MQTT message to the rules engine failed")


def _plugin_path() -> str:
    return f"{RulesEngineHandoff.__module__}.{RulesEngineHandoff.__qualname__}"


class MqttBroker:
    """An amqtt broker on ``host:port`` in its own thread; ``start()`` / ``stop()``."""

    def __init__(
        self,
        on_message: MessageSink | None = None,
        *,
        host: str = defaults.HOST,
        port: int = defaults.MQTT_PORT,
    ) -> None:
        self.on_message = on_message
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: Broker | None = None

    @property
    def url(self) -> str:
        """``mqtt://host:port`` for clients."""
        return f"mqtt://{self.host}:{self.port}"

    def _config(self) -> dict[str, Any]:
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            # Only what the local cloud needs: anonymous access and the hand-off. The
            # $SYS and packet-logging plugins would cost time on every message.
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
                _plugin_path(): {},
            },
        }

    def start(self, timeout: float = 10.0) -> MqttBroker:
        """Start the broker and block until it listens; raises if it cannot bind."""
        if self._thread is not None:
            return self
        started: Future[None] = Future()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name=f"mqtt-broker-{self.port}", daemon=True
        )
        self._thread.start()
        try:
            started.result(timeout)
        except Exception:
            self._thread.join(timeout)
            self._thread = None
            raise
        return self

    def _run(self, started: Future[None]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._start_broker())
        except Exception as exc:
            if port_is_free(self.port, self.host):
                error: Exception = RuntimeError(
                    f"MQTT broker could not start on {self.host}:{self.port}: {exc}"
                )
            else:
                error = PortInUse(self.port, "the MQTT broker", self.host)
            started.set_exception(error)
            loop.close()
            return
        started.set_result(None)
        try:
            loop.run_forever()
        finally:
            # Let cancelled tasks finish so the loop closes without warnings.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _start_broker(self) -> None:
        broker = Broker(self._config(), loop=asyncio.get_running_loop())
        plugin = broker.plugins_manager.get_plugin(RulesEngineHandoff.__name__)
        assert isinstance(plugin, RulesEngineHandoff)
        plugin.sink = self._deliver
        await broker.start()
        self._broker = broker

    def _deliver(self, message: InboundMessage) -> None:
        if self.on_message is not None:
            self.on_message(message)

    def stop(self, timeout: float = 10.0) -> None:
        """Disconnect every client, close the listener and end the broker's thread."""
        if self._thread is None or self._loop is None:
            return
        loop = self._loop
        if self._broker is not None:
            shutdown = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), loop)
            try:
                shutdown.result(timeout)
            except Exception:
                log.exception("MQTT broker shutdown failed")
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout)
        self._thread = None
        self._loop = None
        self._broker = None

    def __enter__(self) -> MqttBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
