"""Errors as RFC 9457 problem details on the API, and as readable pages on the portals."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.response import Redirect, Template

from core.context import RequestContext
from core.errors import DomainError
from core.faults import MESSAGES, RETRY_AFTER_SECONDS, dependency_down
from core.i18n import LOCALES, gettext_in
from core.middleware import LOCALE_COOKIE, is_api
from core.permissions import PUBLIC

log = logging.getLogger("madrasa.errors")

PROBLEM_JSON = "application/problem+json"


def _field_errors(exc: HTTPException) -> list[dict[str, str]]:
    """Litestar's validation ``extra`` as ``[{field, message}]`` with the field named."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    out = []
    for item in extra:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", ""))
        key = item.get("key") or ""
        if not key and " - at `$." in message:
            message, _, path = message.partition(" - at `$.")
            key = path.rstrip("`")
        elif " - at `$" in message:
            message, _, path = message.partition(" - at `$")
            key = key or path.strip("`.") or "body"
        out.append({"field": str(key or item.get("source") or "body"), "message": message})
    return out


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    instance: str | None = None,
) -> Response[Any]:
    """A problem-details response."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if extra:
        body.update(extra)
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


#: SQLSTATEs of a value the database cannot hold: a number beyond its column, a character its text cannot store.
_UNSTORABLE_SQLSTATES = frozenset({"22003", "22021", "22P05"})
#: What the drivers say when an integer does not fit the column type (asyncpg; the sqlite3 module).
_OVERFLOW_MESSAGES = ("value out of int", "SQLite INTEGER")


def unstorable_value(exc: BaseException) -> bool:
    """Whether an error (or what caused it) is a request's value that the database cannot store: an integer
    beyond the column (PostgreSQL, either when asyncpg encodes it or on the server; SQLite beyond 2⁶³) or a
    character PostgreSQL text cannot hold. The request guard (:mod:`core.guard`) refuses most such values by
    name; this catches the ones it cannot know (a header, a field of another name) as 400 instead of 500."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 4:
        if getattr(current, "sqlstate", None) in _UNSTORABLE_SQLSTATES:
            return True
        if isinstance(current, OverflowError) and any(m in str(current) for m in _OVERFLOW_MESSAGES):
            return True
        current, seen = current.__cause__ or current.__context__, seen + 1
    return False


def http_exception_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Render an exception for its audience: problem JSON on ``/api/``, a page elsewhere."""
    if isinstance(exc, HTTPException):
        status = exc.status_code
        detail = exc.detail
        headers = dict(exc.headers or {})
    elif (down := dependency_down(exc)) is not None:
        log.warning("%s unavailable: %s: %s", down, type(exc).__name__, exc, extra={"path": request.url.path})
        status, detail, headers = 503, MESSAGES[down], {"Retry-After": str(RETRY_AFTER_SECONDS)}
    elif unstorable_value(exc):
        log.warning("a request value the database cannot store: %s", exc, extra={"path": request.url.path})
        status, detail, headers = (
            400,
            "A value in the request is out of range or holds a character that cannot be stored.",
            {},
        )
    else:
        log.exception("unhandled error", extra={"path": request.url.path})
        status, detail, headers = 500, "Internal error; it has been logged.", {}
    extra: dict[str, Any] = {}
    if isinstance(exc, ValidationException) or (isinstance(exc, HTTPException) and status == 400 and exc.extra):
        errors = _field_errors(exc)  # type: ignore[arg-type]
        if errors:
            extra["errors"] = errors
            detail = "Invalid request: " + "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    elif isinstance(exc, HTTPException) and isinstance(exc.extra, dict):
        extra.update(exc.extra)
    if status == 413:
        detail = detail if detail and detail != "Request Entity Too Large" else "The upload is too large."
    state = request.scope.get("state", {})
    if is_api(request.url.path) or "text/html" not in request.headers.get("accept", ""):
        return problem(status, detail, extra=extra, headers=headers, instance=state.get("request_id"))
    ctx = state.get("ctx") or _unrouted_context(request, state)
    if status == 401:
        prefix = getattr(ctx, "prefix", "") or state.get("tenant_prefix", "")
        return Redirect(f"{prefix}/login?next={quote(prefix + request.url.path)}")  # type: ignore[return-value]
    template = "error.html"
    if status == 403 and type(exc).__name__ == "TenantSuspended":
        template = "suspended.html"
    locale = ctx.locale if ctx is not None else "fr"
    return Template(
        template_name=template,
        context={
            "status": status,
            "title": gettext_in(locale, HTTPStatus(status).phrase),
            "detail": page_detail(exc, detail, locale, status),
            "ctx": ctx,
            "tenant": getattr(ctx, "tenant", None),
            "locale": locale,
        },
        status_code=status,
        media_type=MediaType.HTML,
        headers=headers,
    )  # type: ignore[return-value]


#: Statuses an error page can show; their phrases (the page's title) are in the catalogues.
PAGE_STATUSES = (400, 401, 403, 404, 405, 409, 413, 415, 422, 423, 428, 429, 500, 503)
#: Messages the framework and core's access checks raise that error pages show as is (translated).
CORE_MESSAGES = (
    "Log in first.",
    "Not found.",
    "You have no access to this here.",
    "Missing or wrong CSRF token; reload the page and try again.",
    "Internal error; it has been logged.",
    "The upload is too large.",
    "A value in the request is out of range or holds a character that cannot be stored.",
)
#: What an error page says for framework errors whose own text names internals (an unknown tenant's slug…).
_PAGE_DETAILS = {
    404: "This page does not exist, or is not available to you here.",
    405: "This address cannot be opened this way; go back and use the page's links or buttons.",
}


def page_detail(exc: Exception, detail: str, locale: str, status: int) -> str:
    """The error's message in the page's language: a domain error's msgid with its values, another message as
    is when the catalogue knows it, else a translated sentence for its status."""
    if isinstance(exc, DomainError):
        return gettext_in(locale, exc.msgid, **exc.values)
    if status in _PAGE_DETAILS and detail in (HTTPStatus(status).phrase, ""):
        return gettext_in(locale, _PAGE_DETAILS[status])  # the framework's bare "Not Found": say something useful
    translated = gettext_in(locale, detail)
    if translated != detail or locale == "en" or status not in _PAGE_DETAILS:
        return translated
    return gettext_in(locale, _PAGE_DETAILS[status])


def _unrouted_context(request: Request[Any, Any, Any], state: dict[str, Any]) -> RequestContext | None:
    """A context for an error page raised before the access middleware built one (no route matched): the
    tenant named by the ``/t/<slug>`` prefix, for its branding, and the reader's language."""
    services = getattr(request.app.state, "services", None)
    if services is None:
        return None
    tenant = state.get("prefix_tenant")
    ctx = RequestContext(services=services, permission=PUBLIC, tenant=tenant, prefix=state.get("tenant_prefix", ""))
    chosen = request.query_params.get("lang") or request.cookies.get(LOCALE_COOKIE)
    if chosen in LOCALES:
        ctx.locale = chosen
    elif tenant is not None and tenant.default_locale in LOCALES:
        ctx.locale = tenant.default_locale
    return ctx
