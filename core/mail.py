"""Outgoing e-mail: one interface, an SMTP backend, and a logging one for development (nothing is sent)."""

from __future__ import annotations

import asyncio
import logging
import smtplib
from email.message import EmailMessage

import msgspec

from core.config import Settings

log = logging.getLogger("madrasa.mail")


class Mail(msgspec.Struct, frozen=True):
    """A plain-text message to one recipient."""

    to: str
    subject: str
    body: str


class Mailer:
    """Sends :class:`Mail`."""

    async def send(self, mail: Mail) -> None:  # pragma: no cover - interface
        """Deliver one message."""
        raise NotImplementedError


class SmtpMailer(Mailer):
    """Delivery through an SMTP relay (``MADRASA_SMTP_HOST``), off the event loop."""

    def __init__(self, host: str, port: int, sender: str) -> None:
        self.host, self.port, self.sender = host, port, sender

    def _send_sync(self, mail: Mail) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message.set_content(mail.body)
        with smtplib.SMTP(self.host, self.port, timeout=10) as smtp:
            smtp.send_message(message)

    async def send(self, mail: Mail) -> None:
        """Deliver one message over SMTP."""
        await asyncio.to_thread(self._send_sync, mail)


class LoggingMailer(Mailer):
    """Logs each message's recipient and subject and sends nothing (the embedded default, without SMTP)."""

    async def send(self, mail: Mail) -> None:
        """Log the message."""
        log.info("mail (not sent: no MADRASA_SMTP_HOST)", extra={"to": mail.to, "subject": mail.subject})


def make_mailer(settings: Settings) -> Mailer:
    """SMTP when a host is configured, else the log."""
    if settings.smtp_host:
        return SmtpMailer(settings.smtp_host, settings.smtp_port, settings.mail_from)
    return LoggingMailer()
