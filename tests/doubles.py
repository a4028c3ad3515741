"""Test doubles shared by the tests: a recording SMS gateway and a plugin that records domain events.

Production code keeps no record of what it sent or emitted; a test that wants to see it plugs one of these
in, through the same surfaces a real plugin or backend uses:

* :class:`RecordingGateway` — an SMS gateway (``services.sms``) that keeps the messages instead of sending
  them; assign it to a shared world's ``services.sms`` for the test and put the previous one back (a
  world of its own can get it from a test plugin's ``madrasa_backends``:
  ``Backend(kind="sms", name="record", factory=lambda settings: RecordingGateway())`` with
  ``sms_backend="record"``);
* :class:`FlakyGateway` — a :class:`RecordingGateway` that fails its first sends (a gateway that is down);
* :class:`OutboxMailer` — a mailer (``services.mailer``) that keeps the messages instead of sending them;
* :class:`EventRecorder` — a plugin implementing ``madrasa_handle_event`` that keeps the events delivered
  after commit; :func:`plugged` registers it with a running plugin host for the duration of a test.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from core.mail import Mailer
from core.plugin_api import Event, Mail, PluginInfo, Sms, hookimpl
from core.plugins import PluginHost

P = TypeVar("P")


class OutboxMailer(Mailer):
    """A mailer that keeps every message it is asked to send (nothing leaves the process)."""

    def __init__(self) -> None:
        self.sent: list[Mail] = []

    async def send(self, mail: Mail) -> None:
        """Keep the message."""
        self.sent.append(mail)


class RecordingGateway:
    """An SMS gateway that keeps every message it is asked to send (nothing leaves the process)."""

    def __init__(self) -> None:
        self.sent: list[Sms] = []

    async def send(self, sms: Sms) -> None:
        """Keep the message."""
        self.sent.append(sms)


class FlakyGateway(RecordingGateway):
    """An SMS gateway that fails its first ``failures`` sends (a gateway down), then keeps the messages."""

    def __init__(self, failures: int = 0) -> None:
        super().__init__()
        self.failures = failures
        self.calls = 0

    async def send(self, sms: Sms) -> None:
        """Fail while failures are left, else keep the message."""
        self.calls += 1
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("SMS gateway unavailable")
        await super().send(sms)


class EventRecorder:
    """A plugin that records the domain events delivered to it (``madrasa_handle_event``)."""

    def __init__(self, name: str = "test_event_recorder") -> None:
        self.name = name
        self.events: list[Event] = []

    @hookimpl
    def madrasa_plugin_info(self) -> PluginInfo:
        """Infrastructure for tests: cannot be switched off, so it hears the events of every tenant."""
        return PluginInfo(name=self.name, label="Event recorder", toggleable=False)

    @hookimpl
    def madrasa_handle_event(self, event: Event) -> None:
        """Keep the event."""
        self.events.append(event)

    def named(self, name: str) -> list[Event]:
        """The recorded events called ``name``, oldest first."""
        return [e for e in self.events if e.name == name]

    def where(self, **data: Any) -> list[Event]:
        """The recorded events whose data has all of ``data``."""
        return [e for e in self.events if all(e.data.get(k) == v for k, v in data.items())]


@contextmanager
def plugged(host: PluginHost, plugin: P) -> Iterator[P]:
    """``plugin`` registered with a running ``host`` until the block ends (for a shared test world)."""
    info = host.register(plugin)
    try:
        yield plugin
    finally:
        # PluginHost has no public way to remove a plugin: undo what ``register`` did.
        host.pm.unregister(plugin)
        host.infos.pop(info.name, None)
        host._objects.pop(info.name, None)
        host._subset_cache.clear()
        host._own_cache.clear()
