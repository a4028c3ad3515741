"""The OpenAPI document: the problem responses of every API operation, and the Swagger UI page under the CSP.

:class:`NoncedSwagger` is Litestar's Swagger UI page whose inline scripts carry the response's nonce
(:mod:`core.headers`).

:func:`document_problems` runs once on the built app (before the schema is first generated, which
Litestar does lazily) and gives every operation under ``/api/`` the ``application/problem+json``
responses the request pipeline and the domain errors can produce (:data:`PROBLEMS`), with one
``ProblemDetails`` schema. A status the handler documents itself (``responses=``) is kept.

* every operation: 400 (the request guard, a malformed parameter) and 404 (an unknown tenant in
  the path, an object out of reach);
* not public: 401 (no or a bad token) and 403 (no permission there, a suspended tenant);
* with a body: 413 (too large), 415 (wrong media type), 422;
* writes (POST/PUT/PATCH/DELETE): 409 (a duplicate, a clash, a state that forbids it), 423 (past a
  deadline or closed);
* the public writes (log-in, refresh, password reset): 401 (wrong credentials or token) and 429
  (throttled);
* an operation reading ``If-Match`` (``opt={"if_match": True}``, or a handler whose code reads the
  ``if-match`` header): 409 (stale) and 428 (missing).
"""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any

import msgspec
from litestar import Litestar, MediaType, Request, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.router import Router

from core.headers import NONCE_STATE
from core.middleware import is_api
from core.permissions import PUBLIC
from core.problems import PROBLEM_JSON

__all__ = ["PROBLEMS", "FieldError", "NoncedSwagger", "ProblemDetails", "document_problems", "uses_if_match"]


class FieldError(msgspec.Struct):
    """A field of the request that is wrong."""

    field: str
    message: str


class ProblemDetails(msgspec.Struct, kw_only=True):
    """An error as RFC 9457 problem details (``application/problem+json``)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    #: The request id (``X-Request-ID``) to quote when reporting the problem.
    instance: str | None = None
    #: The fields at fault (400).
    errors: list[FieldError] | None = None
    #: The field at fault, for a domain error about one field.
    field: str | None = None
    #: A machine-readable reason (``stale``…).
    code: str | None = None


#: Description of each documented problem status.
PROBLEMS: dict[int, str] = {
    400: "Bad request: a parameter or body the API refuses (the field is named).",
    401: "Not authenticated: no bearer token, an expired or revoked one, or wrong credentials.",
    403: "Forbidden: no permission here, or the tenant is suspended.",
    404: "Not found: no such tenant, module switched off, or nothing of that kind within reach.",
    409: "Conflict: a duplicate, a clash, a state that does not allow this, or a stale version.",
    413: "The body or upload is too large.",
    415: "The media type of the body or file is not accepted.",
    422: "The content is well-formed but cannot be processed.",
    423: "Locked: past a deadline or closed.",
    428: "Precondition required: send If-Match with the ETag read.",
    429: "Too many attempts; retry after the Retry-After delay.",
}
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@cache
def _spec(status: int) -> ResponseSpec:
    return ResponseSpec(
        data_container=ProblemDetails, media_type=PROBLEM_JSON, description=PROBLEMS[status], generate_examples=False
    )


def uses_if_match(handler: Any) -> bool:
    """Whether a handler reads ``If-Match``: declared with ``opt["if_match"]``, else found in its code."""
    declared = handler.opt.get("if_match")
    if declared is not None:
        return bool(declared)
    return _reads_if_match(handler.fn)


@cache
def _reads_if_match(fn: Any) -> bool:
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        return False
    return "if-match" in source.lower()


def _statuses(handler: Any, methods: set[str]) -> set[int]:
    statuses = {400, 404}
    public = handler.opt.get("permission") == PUBLIC
    if not public:
        statuses |= {401, 403}
    if "data" in handler.parsed_fn_signature.parameters:
        statuses |= {400, 413, 415, 422}
    if methods & _WRITES:
        statuses |= {409, 423}
        if public:
            statuses |= {401, 429}
    if uses_if_match(handler):
        statuses |= {409, 428}
    return statuses


def document_problems(app: Litestar) -> None:
    """Give every API operation its problem responses (:data:`PROBLEMS`); the handler's own ``responses`` win."""
    for route in app.routes:
        if not is_api(route.path):
            continue
        for handler in getattr(route, "route_handlers", []):
            methods = set(getattr(handler, "http_methods", ())) - {"HEAD", "OPTIONS"}
            if not methods or not handler.include_in_schema:
                continue
            own = dict(handler.responses or {})
            handler.responses = {
                **{status: _spec(status) for status in sorted(_statuses(handler, methods))},
                **own,
            }


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
