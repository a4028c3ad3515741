"""Security headers on every response: one pure ASGI middleware, wired around the app in :mod:`core.app`.

Every response gets ``X-Content-Type-Options: nosniff``, ``Referrer-Policy:
strict-origin-when-cross-origin``, ``X-Frame-Options: DENY`` and a ``Content-Security-Policy``;
``Strict-Transport-Security`` only when the request came over TLS (``scope["scheme"] == "https"``:
uvicorn sets it from ``X-Forwarded-Proto`` only for ``MADRASA_TRUSTED_PROXIES``). A header the
handler already set wins (the password-reset page keeps its ``Referrer-Policy: no-referrer``).

The policy depends on who reads the response:

* portal pages: scripts from this origin only (no inline script, no ``on…=`` attribute: the
  templates load theirs from ``/static/...``); styles may be inline (``'unsafe-inline'`` in
  ``style-src``) because the templates carry the tenant's colours in a ``<style>`` element and a
  few ``style=`` attributes (the branding preview, the grade histogram's bar heights);
* the API (``/api/``): nothing may load (``default-src 'none'``) and nothing may frame it;
* the OpenAPI viewer (``/schema``): Litestar's Swagger UI page loads its bundle from jsDelivr and
  starts it with an inline script, which carries the request's nonce
  (:data:`NONCE_STATE`, set here, put on the page by :class:`core.openapi.NoncedSwagger`).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Key of ``scope["state"]`` holding the nonce of the OpenAPI viewer's inline scripts.
NONCE_STATE = "csp_nonce"
HSTS = "max-age=31536000; includeSubDomains"
REFERRER_POLICY = "strict-origin-when-cross-origin"

_COMMON = "object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
PORTAL_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    f"font-src 'self'; connect-src 'self'; manifest-src 'self'; {_COMMON}"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'"
_CDN = "https://cdn.jsdelivr.net"


def docs_csp(nonce: str) -> str:
    """The OpenAPI viewer's policy: Swagger UI from jsDelivr, its inline start-up script by nonce."""
    return (
        f"default-src 'self'; script-src 'self' 'nonce-{nonce}' {_CDN}; style-src 'self' 'unsafe-inline' {_CDN}; "
        f"img-src 'self' data: {_CDN}; connect-src 'self'; {_COMMON}"
    )


def _is_docs(path: str) -> bool:
    return path == "/schema" or path.startswith("/schema/")


class SecurityHeaders:
    """Pure ASGI middleware adding the security headers to every HTTP response.

    Place it inside :class:`core.middleware.TenantPrefix` so the path it reads is the routed one.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one connection; non-HTTP scopes pass straight through."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path.startswith("/api/"):
            csp = API_CSP
        elif _is_docs(path):
            nonce = secrets.token_urlsafe(18)
            scope.setdefault("state", {})[NONCE_STATE] = nonce
            csp = docs_csp(nonce)
        else:
            csp = PORTAL_CSP
        extra = [
            (b"content-security-policy", csp.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", REFERRER_POLICY.encode()),
            (b"x-frame-options", b"DENY"),
        ]
        if scope.get("scheme") == "https":
            extra.append((b"strict-transport-security", HSTS.encode()))

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or ())
                present = {bytes(name).lower() for name, _ in headers}
                headers.extend(pair for pair in extra if pair[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_wrapper)
