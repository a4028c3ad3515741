"""Structured logging, request correlation and Prometheus metrics.

* :data:`request_id_var` / :data:`tenant_var` carry the correlation id and the tenant
  slug of the current request; :class:`JsonFormatter` puts both on every log line.
* :class:`RequestContextMiddleware` is a pure ASGI middleware. Wrap the whole Litestar
  app with it (``RequestContextMiddleware(app)``) to also see requests that fail routing
  (404/405); listed in ``Litestar(middleware=[...])`` it only sees routed requests.
* Metrics live in a private :data:`REGISTRY` (not the process-global default) so apps can
  be created repeatedly in one process; :func:`metrics_payload` renders it.
* :func:`count_handler_failure` counts event handlers that raised
  (``madrasa_event_handler_failures_total{event, plugin}``).
* :data:`PASSWORD_HASHES` gauges the password hashes running in the pool and the logins waiting for it
  (``madrasa_password_hashes{state}``, ``core/passwords.py``).
* :data:`LOGIN_BURSTS` counts addresses and accounts whose failed logins reached the alert threshold
  (``madrasa_login_bursts_total{kind}``; ``core/identity.py`` also logs a warning).
* Exposure: ``/metrics`` on the application port answers only a bearer ``MADRASA_METRICS_TOKEN``
  (:class:`MetricsGate`; 404 without a token configured, outside debug mode), and
  ``MADRASA_METRICS_PORT`` serves the registry on a port of its own (:func:`start_metrics_server`).

Why not ``litestar.plugins.prometheus`` (checked against Litestar 2.25): its
``PrometheusMiddleware`` is route middleware, so it never sees requests that fail routing
(404/405), which the wrapping :class:`RequestContextMiddleware` counts as ``unmatched``; it
registers its metrics once per process in prometheus_client's global registry (shared by every
app built in the process: the test suite builds many); its names and labels differ
(``litestar_requests_total{method, path, status_code, app_name}`` where dashboards and the tests
read ``madrasa_http_requests_total{method, route, status}``), and it builds a ``Request`` per
call. ``PrometheusController`` serves only that global registry. This middleware does the request
id and the access log in the same pass, so it stays; the metrics are plain prometheus_client.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)

__all__ = [
    "EVENT_HANDLER_FAILURES",
    "HTTP_IN_PROGRESS",
    "HTTP_LATENCY",
    "HTTP_REQUESTS",
    "LOGIN_BURSTS",
    "PASSWORD_HASHES",
    "REGISTRY",
    "JsonFormatter",
    "MetricsGate",
    "RequestContextMiddleware",
    "configure_logging",
    "count_handler_failure",
    "metrics_payload",
    "request_id_var",
    "start_metrics_server",
    "tenant_var",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Correlation id of the request being served ("-" outside a request).
request_id_var: ContextVar[str] = ContextVar("madrasa_request_id", default="-")
#: Slug of the tenant the current request belongs to ("-" when unknown).
tenant_var: ContextVar[str] = ContextVar("madrasa_tenant", default="-")

# --------------------------------------------------------------------------- logging

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RESERVED_ATTRS = frozenset(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "request_id",
    "tenant",
}
_SIMPLE_TYPES = (str, int, float, bool, type(None))


class JsonFormatter(logging.Formatter):
    """Render each record as one JSON object on a single line.

    Keys: ``ts`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, ``request_id``,
    ``tenant``, any JSON-serialisable ``extra`` fields, ``exc`` (formatted traceback)
    and ``stack`` when present. ``request_id``/``tenant`` passed via ``extra`` override
    the context variables.
    """

    def format(self, record: logging.LogRecord) -> str:
        """Return the JSON line for ``record``."""
        attrs = record.__dict__
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": attrs.get("request_id") or request_id_var.get(),
            "tenant": attrs.get("tenant") or tenant_var.get(),
        }
        for key, value in attrs.items():
            if key in _RESERVED_ATTRS or key in payload:
                continue
            if not isinstance(value, _SIMPLE_TYPES):
                try:
                    json.dumps(value, ensure_ascii=False)
                except (TypeError, ValueError):
                    continue
            payload[key] = value
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            payload["exc"] = record.exc_text
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        return json.dumps(payload, ensure_ascii=False)


class _PlainFormatter(logging.Formatter):
    """Human-readable format that also shows the request id and tenant."""

    def format(self, record: logging.LogRecord) -> str:
        attrs = record.__dict__
        if not attrs.get("request_id"):
            attrs["request_id"] = request_id_var.get()
        if not attrs.get("tenant"):
            attrs["tenant"] = tenant_var.get()
        return super().format(record)


_PLAIN_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(request_id)s %(tenant)s] %(message)s"
#: Third-party loggers kept to warnings: access lines, HTTP clients, and the PDF stack (fontTools writes a line
#: per glyph table when report cards subset their fonts).
_NOISY_LOGGERS = {
    "uvicorn.access": logging.WARNING,
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "urllib3": logging.WARNING,
    "fontTools": logging.WARNING,
    "fpdf": logging.WARNING,
    "PIL": logging.WARNING,
}


class _MadrasaHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marker class so :func:`configure_logging` can find the handler it installed."""


def configure_logging(level: str = "INFO", json_logs: bool = True) -> None:
    """Install one stderr handler on the root logger (JSON or plain); safe to call repeatedly.

    Handlers installed by earlier calls are replaced; foreign handlers (e.g. pytest's
    capture handler) are left alone. Raises :class:`ValueError` for an unknown level.
    """
    numeric = logging.getLevelNamesMapping().get(level.upper())
    if numeric is None:
        raise ValueError(f"unknown log level: {level!r}")
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _MadrasaHandler)]:
        root.removeHandler(old)
        old.close()
    handler = _MadrasaHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_logs else _PlainFormatter(_PLAIN_FORMAT))
    root.addHandler(handler)
    root.setLevel(numeric)
    for name, noisy_level in _NOISY_LOGGERS.items():
        logging.getLogger(name).setLevel(max(noisy_level, numeric))


# --------------------------------------------------------------------------- metrics

#: Registry holding madrasa's metrics (deliberately not prometheus_client's global one).
REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "madrasa_http_requests_total",
    "HTTP requests served, by method, route template and status code.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
REPLICA_READS = Counter(
    "madrasa_replica_reads_total",
    "Read transactions allowed on a read replica, by where they ran: replica, or primary (none fit: down, "
    "lagging, or failing to open).",
    ["served_by"],
    registry=REGISTRY,
)

HTTP_LATENCY = Histogram(
    "madrasa_http_request_duration_seconds",
    "Time to serve an HTTP request, by method and route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)
HTTP_IN_PROGRESS = Gauge(
    "madrasa_http_requests_in_progress",
    "HTTP requests currently being served.",
    registry=REGISTRY,
)
EVENT_HANDLER_FAILURES = Counter(
    "madrasa_event_handler_failures_total",
    "Event handlers that raised, by event name and plugin.",
    ["event", "plugin"],
    registry=REGISTRY,
)

LOGIN_BURSTS = Counter(
    "madrasa_login_bursts_total",
    "Addresses (kind=address) or accounts (kind=account) whose failed logins reached the alert threshold "
    "within the login window.",
    ["kind"],
    registry=REGISTRY,
)

INVALIDATION_FLUSHES = Counter(
    "madrasa_cache_flushes_total",
    "Times this process emptied every cache because its invalidation listener (re)connected.",
    registry=REGISTRY,
)
INVALIDATION_LISTENER_UP = Gauge(
    "madrasa_invalidation_listener_up",
    "1 while this process hears other processes' cache invalidations (0: caches live out their TTL).",
    registry=REGISTRY,
)
PASSWORD_HASHES = Gauge(
    "madrasa_password_hashes",
    "Password hashes and verifications running in the bounded pool (state=running) or waiting for it (state=waiting).",
    ["state"],
    registry=REGISTRY,
)


def count_handler_failure(event: str, plugin: str) -> None:
    """Count an event handler that raised (the failure itself is logged by the caller)."""
    EVENT_HANDLER_FAILURES.labels(event=event, plugin=plugin).inc()


def metrics_payload() -> tuple[bytes, str]:
    """Return the Prometheus text exposition of :data:`REGISTRY` and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


# --------------------------------------------------------------------------- exposure

METRICS_PATH = "/metrics"
_SLASHES = re.compile(r"/{2,}")
_log = logging.getLogger("madrasa.metrics")


def start_metrics_server(host: str, port: int) -> Callable[[], None]:
    """Serve :data:`REGISTRY` with prometheus_client's own HTTP server on ``host:port``; returns its stop."""
    server, thread = start_http_server(port, addr=host, registry=REGISTRY)
    _log.info("metrics served on %s:%s", host, port)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        if thread is not threading.current_thread():
            thread.join(timeout=5)

    return stop


class MetricsGate:
    """Pure ASGI: who may read ``/metrics`` on the application port.

    With ``token`` the request must carry ``Authorization: Bearer <token>`` (401 otherwise); without
    one ``/metrics`` answers 404 unless ``open_`` (debug mode). Place it inside
    :class:`core.middleware.TenantPrefix` so ``/t/<slug>/metrics`` is gated the same way.
    """

    def __init__(self, app: ASGIApp, *, token: str = "", open_: bool = False) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode() if token else b""
        self.open = open_ and not token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 401/404 for a ``/metrics`` request that may not read it; pass everything else on."""
        # Routing ignores a trailing slash (and so must this); repeated slashes are folded the same way.
        path = _SLASHES.sub("/", scope.get("path") or "").rstrip("/") if scope["type"] == "http" else ""
        if path != METRICS_PATH or self.open:
            await self.app(scope, receive, send)
            return
        if self.expected:
            given = next((v for k, v in scope.get("headers") or () if k == b"authorization"), b"")
            if hmac.compare_digest(given, self.expected):
                await self.app(scope, receive, send)
                return
            await _problem(send, 401, "Unauthorized", "Send the metrics token as a bearer.", bearer=True)
            return
        await _problem(send, 404, "Not Found", "Not Found")


async def _problem(send: Send, status: int, title: str, detail: str, *, bearer: bool = False) -> None:
    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail}).encode()
    headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
    if bearer:
        headers.append((b"www-authenticate", b'Bearer realm="metrics"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# --------------------------------------------------------------------------- middleware

_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{8,64}")
_REQUEST_ID_HEADER = b"x-request-id"
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
_UNMATCHED = "unmatched"
_access_log = logging.getLogger("madrasa.access")


def _incoming_request_id(scope: Scope) -> str:
    """Return a well-formed ``x-request-id`` from the request headers, else a fresh one."""
    for name, value in scope.get("headers") or ():
        if name == _REQUEST_ID_HEADER:
            candidate = value.decode("latin-1")
            if _REQUEST_ID_RE.fullmatch(candidate):
                return candidate
            break
    return uuid4().hex


def _route_label(scope: Scope) -> str:
    """Return the matched route's path template, or ``"unmatched"`` (never the raw path)."""
    handler = scope.get("route_handler")
    if handler is None:
        return _UNMATCHED
    # Litestar stores the full template (router/controller prefixes included) here.
    template = scope.get("path_template")
    if template:
        return template
    paths = getattr(handler, "paths", None)
    return min(paths) if paths else _UNMATCHED


_CHILDREN: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def _children(method: str, route: str, status: int) -> tuple[Any, Any]:
    """Labelled metric children, cached (``labels()`` costs more than the increment itself)."""
    key = (method, route, status)
    found = _CHILDREN.get(key)
    if found is None:
        found = (HTTP_REQUESTS.labels(method, route, str(status)), HTTP_LATENCY.labels(method, route))
        if len(_CHILDREN) < 10_000:
            _CHILDREN[key] = found
    return found


class RequestContextMiddleware:
    """Pure ASGI middleware: request id, access log and HTTP metrics for ``http`` scopes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection; non-HTTP scopes pass straight through."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request_id = _incoming_request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        method = scope.get("method", "GET")
        path = scope.get("path", "")
        status = 0
        header = (_REQUEST_ID_HEADER, request_id.encode("ascii"))

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [h for h in message.get("headers") or () if h[0].lower() != _REQUEST_ID_HEADER]
                headers.append(header)
                message = {**message, "headers": headers}
            await send(message)

        token = request_id_var.set(request_id)
        HTTP_IN_PROGRESS.inc()
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException:
            if not status:
                status = 500
            raise
        finally:
            duration = time.perf_counter() - start
            HTTP_IN_PROGRESS.dec()
            method_label = method if method in _KNOWN_METHODS else "OTHER"
            route = _route_label(scope)
            counter, histogram = _children(method_label, route, status or 500)
            counter.inc()
            histogram.observe(duration)
            if _access_log.isEnabledFor(logging.INFO):
                tenant = scope["state"].get("tenant_slug") or tenant_var.get()
                _access_log.info(
                    "%s %s %s",
                    method,
                    path,
                    status or 500,
                    extra={
                        "method": method,
                        "path": path,
                        "route": route,
                        "status": status or 500,
                        "duration_ms": round(duration * 1000, 3),
                        "tenant": tenant,
                    },
                )
            request_id_var.reset(token)
