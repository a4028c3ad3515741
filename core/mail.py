"""Outgoing e-mail: one interface, an SMTP backend, and a logging one for development (nothing is sent).

Links in mail come from :func:`public_link`: the configured public URL (``MADRASA_PUBLIC_URL``) or a tenant's
registered custom domain, never the request's ``Host`` or ``X-Forwarded-*`` headers, which a client chooses.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
from email.message import EmailMessage
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import msgspec

from core.config import Settings

if TYPE_CHECKING:
    from core.db import Database
    from core.tenancy import TenantInfo

log = logging.getLogger("madrasa.mail")


class Mail(msgspec.Struct, frozen=True):
    """A plain-text message to one recipient."""

    to: str
    subject: str
    body: str
    #: The message's one-time link, if any: the development log shows it (see :class:`LoggingMailer`).
    link: str = ""


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
    """Logs each message's recipient and subject and sends nothing (the embedded default, without SMTP).

    With ``show_links`` (debug mode, or the embedded SQLite database) the message's link is logged too, so a
    password reset or an invitation can be completed in a demo; never in production on PostgreSQL.
    """

    def __init__(self, show_links: bool = False) -> None:
        self.show_links = show_links

    async def send(self, mail: Mail) -> None:
        """Log the message."""
        if self.show_links and mail.link:
            log.info(
                "mail (not sent: no MADRASA_SMTP_HOST) to %s, link: %s",
                mail.to,
                mail.link,
                extra={"to": mail.to, "subject": mail.subject, "link": mail.link},
            )
        else:
            log.info("mail (not sent: no MADRASA_SMTP_HOST)", extra={"to": mail.to, "subject": mail.subject})


def make_mailer(settings: Settings) -> Mailer:
    """SMTP when a host is configured, else the log (with links in debug mode or on SQLite)."""
    if settings.smtp_host:
        return SmtpMailer(settings.smtp_host, settings.smtp_port, settings.mail_from)
    return LoggingMailer(show_links=settings.debug or settings.dialect == "sqlite")


async def public_link(settings: Settings, db: Database, path: str, tenant: TenantInfo | None = None) -> str:
    """An absolute link to ``path`` for a message, never built from request headers.

    For a tenant with a registered custom domain: that host (the first in name order) with the public URL's
    scheme; for another tenant: the public URL with the ``/t/<slug>`` prefix; else the public URL.
    """
    base = (settings.public_url or f"http://127.0.0.1:{settings.port}").rstrip("/")
    if tenant is None:
        return base + path
    host = await db.fetchval("SELECT host FROM tenant_domain WHERE tenant_id = {} ORDER BY host LIMIT 1", tenant.id)
    if host:
        return f"{urlsplit(base).scheme}://{host}{path}"
    return f"{base}/t/{tenant.slug}{path}"
