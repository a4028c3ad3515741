"""The OpenAPI viewer under the Content-Security-Policy (:mod:`core.headers`).

:class:`NoncedSwagger` is Litestar's Swagger UI page whose inline scripts carry the response's nonce.
"""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Request, get
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.router import Router

from core.headers import NONCE_STATE

__all__ = ["NoncedSwagger"]


class NoncedSwagger(SwaggerRenderPlugin):
    """Litestar's Swagger UI page whose inline scripts carry the request's CSP nonce (:mod:`core.headers`)."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        """The page, each ``<script`` tagged with the nonce of this response's policy."""
        return _with_nonce(super().render(request, openapi_schema), request)

    def receive_router(self, router: Router) -> None:
        """Serve the OAuth2 redirect page with the nonce too."""

        @get("/oauth2-redirect.html", media_type=MediaType.HTML, sync_to_thread=False)
        def oauth2_redirect(request: Request[Any, Any, Any]) -> bytes:
            return _with_nonce(self.render_oauth2_redirect(), request)

        router.register(oauth2_redirect)


def _with_nonce(html: bytes, request: Request[Any, Any, Any]) -> bytes:
    nonce = request.scope.get("state", {}).get(NONCE_STATE)
    if not nonce:
        return html
    return html.replace(b"<script", f'<script nonce="{nonce}"'.encode())
