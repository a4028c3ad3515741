"""Outgoing SMS: a small gateway protocol and a logging backend.

``MADRASA_SMS_BACKEND`` chooses the backend: ``log`` (the default: messages are logged, nothing
leaves the machine). A real gateway (an operator's HTTP API, an SMPP link) is a plugin: a class with
the same ``send`` method, offered through the ``madrasa_backends`` hook as
``Backend(kind="sms", name="…", factory=lambda settings: MyGateway(settings))`` and chosen by its name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Protocol, runtime_checkable

import msgspec

from core.config import Settings

log = logging.getLogger("madrasa.sms")

#: Longest text sent: three concatenated GSM segments of Unicode (Arabic) text.
MAX_SMS_CHARS = 201


class Sms(msgspec.Struct, frozen=True):
    """A short text to one phone number (E.164, ``+212…``)."""

    to: str
    text: str


@runtime_checkable
class SmsGateway(Protocol):
    """Anything that delivers :class:`Sms`; ``send`` raises on a delivery failure."""

    async def send(self, sms: Sms) -> None:
        """Deliver one message."""
        ...


class LoggingSmsGateway:
    """Logs every message and sends nothing (the default)."""

    async def send(self, sms: Sms) -> None:
        """Log the message (its length, not its text)."""
        log.info("sms (logging backend: not sent)", extra={"to": sms.to, "chars": len(sms.text)})


def make_sms_gateway(
    settings: Settings, provided: Mapping[str, Callable[[Settings], SmsGateway]] | None = None
) -> SmsGateway:
    """The gateway named by ``settings.sms_backend``: ``log``, or one that a plugin provides."""
    if settings.sms_backend == "log":
        return LoggingSmsGateway()
    factory = (provided or {}).get(settings.sms_backend)
    if factory is None:
        raise ValueError(f"unknown SMS backend {settings.sms_backend!r}: no plugin provides it")
    return factory(settings)
