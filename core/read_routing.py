"""Per request: may its reads go to a read replica? And read-your-writes across processes.

The access middleware runs every routed request through :func:`run_routed`:

* a GET or HEAD of a route marked ``opt={"replica": True}`` reads from a replica (:mod:`core.replicas` picks it),
  unless the request carries a fresh :data:`WROTE_COOKIE`;
* a request of another method that committed a write transaction, and was answered below 400, gets
  :data:`WROTE_COOKIE`: the time of the write, signed with the secret key. For
  ``MADRASA_REPLICA_READ_YOUR_WRITES_SECONDS`` after it, that browser's or client's reads go to the primary, in
  whichever process serves them, so a parent who has just justified an absence sees it at once;
* a replica that fails in the middle of a request (the connection lost) makes the request run again on the
  primary, if nothing of the answer was sent yet, instead of answering 500.

Nothing of this happens without replicas configured.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from litestar.types import Message, Scope, Send

from core.replicas import ReadRouting, read_routing
from core.services import Services

log = logging.getLogger("madrasa.replicas")

WROTE_COOKIE = "madrasa_wrote"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def wrote_cookie(secret: str, at: float) -> str:
    """The cookie's value for a write at ``at`` (Unix time): milliseconds and their signature. Pure function."""
    stamp = str(int(at * 1000))
    return f"{stamp}.{_signature(secret, stamp)}"


def wrote_recently(value: str | None, secret: str, window: float, now: float) -> bool:
    """Whether a cookie value is genuine and younger than ``window`` seconds at ``now``. Pure function.

    A value that is malformed, badly signed or dated in the future (beyond a second of clock skew) counts as
    no write: the cookie only ever moves reads to the primary, so a forged one could not reach more data.
    """
    if not value or window <= 0:
        return False
    stamp, _, signature = value.partition(".")
    if not stamp.isdigit() or not hmac.compare_digest(signature, _signature(secret, stamp)):
        return False
    age = now - int(stamp) / 1000
    return -1.0 <= age < window


def _signature(secret: str, stamp: str) -> str:
    return hmac.new(secret.encode(), b"wrote:" + stamp.encode(), hashlib.sha256).hexdigest()[:32]


async def run_routed(
    services: Services,
    opt: Mapping[str, Any],
    scope: Scope,
    cookies: Mapping[str, str],
    send: Send,
    call: Callable[[Send], Awaitable[None]],
) -> None:
    """Run the request (``call`` with the ``send`` to use) with its reads routed."""
    db = services.db
    if not db.replicas:
        await call(send)
        return
    settings = services.settings
    window = float(settings.replica_read_your_writes_seconds)
    safe = scope["method"] in SAFE_METHODS
    routing = ReadRouting(
        replica=bool(opt.get("replica"))
        and safe
        and not wrote_recently(cookies.get(WROTE_COOKIE), settings.secret_key, window, time.time())
    )
    token = read_routing.set(routing)
    try:
        if not safe:
            await call(_marking(send, routing, settings.secret_key, window, secure=not settings.debug))
        elif not routing.replica:
            await call(send)
        else:
            await _with_fallback(routing, send, call, scope)
    finally:
        read_routing.reset(token)


def _marking(send: Send, routing: ReadRouting, secret: str, window: float, *, secure: bool) -> Send:
    """``send`` that adds :data:`WROTE_COOKIE` to an answer below 400 after a committed write."""

    async def marked(message: Message) -> None:
        if message["type"] == "http.response.start" and routing.wrote and message["status"] < 400 and window > 0:
            cookie = f"{WROTE_COOKIE}={wrote_cookie(secret, time.time())}; Max-Age={max(1, round(window))}; Path=/"
            cookie += "; HttpOnly; SameSite=Lax" + ("; Secure" if secure else "")
            message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie.encode())]
        await send(message)

    return marked


async def _with_fallback(
    routing: ReadRouting, send: Send, call: Callable[[Send], Awaitable[None]], scope: Scope
) -> None:
    """Run a replica-routed read; if a replica failed under it and the answer is an error not yet sent, hold that
    answer back and run the request again on the primary."""
    held: list[Message] = []

    async def holding(message: Message) -> None:
        if held or (message["type"] == "http.response.start" and routing.failed and message["status"] >= 500):
            held.append(message)
            return
        await send(message)

    await call(holding)
    if held:
        log.warning("a replica failed while serving %s; answered from the primary", scope.get("path", ""))
        routing.replica = routing.failed = False
        await call(send)
