"""Outgoing SMS: a small gateway protocol, a logging backend, and the place for a real operator gateway.

``MADRASA_SMS_BACKEND`` chooses the backend: ``log`` (the default: messages are logged and kept in
memory, nothing leaves the machine). A real gateway (an operator's HTTP API, an SMPP link) is a class
with the same ``send`` method, added to :func:`make_sms_gateway` under its own name.
"""

from __future__ import annotations

import logging
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
    """Logs every message and keeps it in memory (the default; also what tests read)."""

    def __init__(self) -> None:
        self.sent: list[Sms] = []

    async def send(self, sms: Sms) -> None:
        """Record and log the message."""
        self.sent.append(sms)
        del self.sent[:-1000]
        log.info("sms (logging backend: not sent)", extra={"to": sms.to, "chars": len(sms.text)})


# A real gateway goes here: a class with ``async def send(self, sms: Sms) -> None`` that calls the
# operator's API off the event loop (``asyncio.to_thread`` for a synchronous client), raises on a
# refused message, and is selected in make_sms_gateway() by its MADRASA_SMS_BACKEND name.


def make_sms_gateway(settings: Settings) -> SmsGateway:
    """The gateway named by ``settings.sms_backend``."""
    if settings.sms_backend == "log":
        return LoggingSmsGateway()
    raise ValueError(f"unknown SMS backend {settings.sms_backend!r}")
