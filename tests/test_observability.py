"""Tests for core.observability: request ids, JSON logs and Prometheus metrics."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from litestar import Litestar, Request, get
from litestar.params import FromPath
from litestar.testing import AsyncTestClient

from core.config import ConfigError, load_settings
from core.observability import (
    HTTP_LATENCY,
    REGISTRY,
    JsonFormatter,
    MetricsGate,
    RequestContextMiddleware,
    configure_logging,
    count_handler_failure,
    metrics_payload,
    request_id_var,
    start_metrics_server,
    tenant_var,
)

log = logging.getLogger("madrasa.tests.observability")


@get("/items/{item_id:int}")
async def get_item(item_id: FromPath[int]) -> dict[str, Any]:
    log.info("fetching item", extra={"item_id": item_id})
    return {"id": item_id}


@get("/whoami")
async def whoami(request: Request) -> dict[str, str]:
    tenant_var.set("alpha")
    request.scope["state"]["tenant_slug"] = "alpha"
    return {"request_id": request_id_var.get(), "state_request_id": request.scope["state"]["request_id"]}


@get("/boom")
async def boom() -> None:
    raise RuntimeError("kaboom")


@get("/metrics")
async def metrics_route() -> str:
    return metrics_payload()[0].decode()


HANDLERS = [get_item, whoami, boom, metrics_route]


def _count(method: str, route: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "madrasa_http_requests_total", {"method": method, "route": route, "status": status}
    )
    return value or 0.0


@pytest.fixture
async def client() -> AsyncIterator[AsyncTestClient[Litestar]]:
    """Middleware registered the Litestar way (sees routed requests only)."""
    app = Litestar(route_handlers=HANDLERS, middleware=[RequestContextMiddleware])
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
async def wrapped_client() -> AsyncIterator[AsyncTestClient[Any]]:
    """Middleware wrapping the whole app (also sees 404/405 from routing)."""
    app = RequestContextMiddleware(Litestar(route_handlers=HANDLERS))
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as c:  # type: ignore[arg-type]
        yield c


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Capture every log record as JSON lines in a StringIO."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


async def test_response_carries_generated_request_id(client: AsyncTestClient[Litestar]) -> None:
    resp = await client.get("/items/1")
    assert resp.status_code == 200
    rid = resp.headers["x-request-id"]
    assert len(rid) == 32 and int(rid, 16) >= 0
    assert resp.headers.get_list("x-request-id") == [rid]


async def test_valid_incoming_id_is_echoed(client: AsyncTestClient[Litestar]) -> None:
    resp = await client.get("/whoami", headers={"x-request-id": "abc-123_XYZ.789"})
    assert resp.headers["x-request-id"] == "abc-123_XYZ.789"
    body = resp.json()
    assert body == {"request_id": "abc-123_XYZ.789", "state_request_id": "abc-123_XYZ.789"}


@pytest.mark.parametrize("bad", ["has spaces in it", "short", "x" * 65, "semi;colon-123"])
async def test_invalid_incoming_id_is_replaced(client: AsyncTestClient[Litestar], bad: str) -> None:
    resp = await client.get("/items/1", headers={"x-request-id": bad})
    rid = resp.headers["x-request-id"]
    assert rid != bad
    assert len(rid) == 32


async def test_request_id_var_is_reset_after_request(client: AsyncTestClient[Litestar]) -> None:
    await client.get("/items/1")
    assert request_id_var.get() == "-"


async def test_log_inside_handler_carries_request_id(client: AsyncTestClient[Litestar], json_log: io.StringIO) -> None:
    resp = await client.get("/items/7", headers={"x-request-id": "req-0000-abcd"})
    assert resp.status_code == 200
    records = _lines(json_log)
    handler_lines = [r for r in records if r["message"] == "fetching item"]
    assert len(handler_lines) == 1
    line = handler_lines[0]
    assert line["request_id"] == "req-0000-abcd"
    assert line["item_id"] == 7
    assert line["logger"] == "madrasa.tests.observability"
    assert line["level"] == "INFO"
    assert line["ts"].endswith("+00:00")


async def test_access_log_line(wrapped_client: AsyncTestClient[Any], json_log: io.StringIO) -> None:
    await wrapped_client.get("/whoami", headers={"x-request-id": "access-log-id-1"})
    access = [r for r in _lines(json_log) if r["logger"] == "madrasa.access"]
    assert len(access) == 1
    line = access[0]
    assert line["request_id"] == "access-log-id-1"
    assert line["method"] == "GET"
    assert line["path"] == "/whoami"
    assert line["status"] == 200
    assert line["route"] == "/whoami"
    assert line["tenant"] == "alpha"  # read back from scope["state"]["tenant_slug"]
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0


async def test_counter_uses_route_template(client: AsyncTestClient[Litestar]) -> None:
    # Litestar's scope["path_template"] drops the ":int" converter.
    route = "/items/{item_id}"
    before = _count("GET", route, "200")
    hist_before = REGISTRY.get_sample_value(
        "madrasa_http_request_duration_seconds_count", {"method": "GET", "route": route}
    )
    await client.get("/items/1")
    await client.get("/items/2")
    assert _count("GET", route, "200") == before + 2
    assert _count("GET", "/items/1", "200") == 0
    hist_after = REGISTRY.get_sample_value(
        "madrasa_http_request_duration_seconds_count", {"method": "GET", "route": route}
    )
    assert hist_after == (hist_before or 0) + 2
    assert HTTP_LATENCY is not None


async def test_handler_error_counts_as_500(client: AsyncTestClient[Litestar]) -> None:
    before = _count("GET", "/boom", "500")
    resp = await client.get("/boom")
    assert resp.status_code == 500
    assert "x-request-id" in resp.headers
    assert _count("GET", "/boom", "500") == before + 1


async def test_unmatched_404(wrapped_client: AsyncTestClient[Any]) -> None:
    before = _count("GET", "unmatched", "404")
    resp = await wrapped_client.get("/no/such/path/42")
    assert resp.status_code == 404
    assert "x-request-id" in resp.headers
    assert _count("GET", "unmatched", "404") == before + 1
    assert _count("GET", "/no/such/path/42", "404") == 0


async def test_wrapped_app_labels_matched_route(wrapped_client: AsyncTestClient[Any]) -> None:
    before = _count("GET", "/items/{item_id}", "200")
    resp = await wrapped_client.get("/items/3")
    assert resp.status_code == 200
    assert _count("GET", "/items/{item_id}", "200") == before + 1


async def test_non_http_scope_passes_through() -> None:
    seen: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    mw = RequestContextMiddleware(inner)
    scope: dict[str, Any] = {"type": "lifespan"}
    await mw(scope, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"]
    assert "state" not in scope


async def test_app_raising_before_start_records_500() -> None:
    async def inner(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("before start")

    mw = RequestContextMiddleware(inner)
    before = _count("POST", "unmatched", "500")
    with pytest.raises(RuntimeError):
        await mw({"type": "http", "method": "POST", "path": "/x", "headers": []}, None, None)  # type: ignore[arg-type]
    assert _count("POST", "unmatched", "500") == before + 1
    assert request_id_var.get() == "-"


def test_metrics_payload() -> None:
    body, content_type = metrics_payload()
    text = body.decode()
    assert content_type.startswith("text/plain")
    for name in (
        "madrasa_http_requests_total",
        "madrasa_http_request_duration_seconds",
        "madrasa_http_requests_in_progress",
    ):
        assert name in text


def test_count_handler_failure() -> None:
    labels = {"event": "pupil.enrolled", "plugin": "observability-test"}
    before = REGISTRY.get_sample_value("madrasa_event_handler_failures_total", labels) or 0.0
    count_handler_failure("pupil.enrolled", "observability-test")
    count_handler_failure("pupil.enrolled", "observability-test")
    assert REGISTRY.get_sample_value("madrasa_event_handler_failures_total", labels) == before + 2
    body, _ = metrics_payload()
    assert b'madrasa_event_handler_failures_total{event="pupil.enrolled",plugin="observability-test"}' in body


def test_json_formatter_includes_exc() -> None:
    try:
        raise ValueError("bad value")
    except ValueError:
        record = logging.getLogger("t").makeRecord(
            "t", logging.ERROR, __file__, 1, "failed %s", ("op",), sys.exc_info()
        )
    out = json.loads(JsonFormatter().format(record))
    assert out["message"] == "failed op"
    assert out["level"] == "ERROR"
    assert "ValueError: bad value" in out["exc"]
    assert "Traceback" in out["exc"]


def test_json_formatter_extras_and_context() -> None:
    record = logging.getLogger("t").makeRecord(
        "t",
        logging.INFO,
        __file__,
        1,
        "hello — ünïcode",
        (),
        None,
        extra={"ok": [1, 2], "unserialisable": object(), "n": None},
    )
    tok_r, tok_t = request_id_var.set("rid-12345678"), tenant_var.set("beta")
    try:
        line = JsonFormatter().format(record)
    finally:
        request_id_var.reset(tok_r)
        tenant_var.reset(tok_t)
    assert "\n" not in line
    assert "ünïcode" in line  # ensure_ascii=False
    out = json.loads(line)
    assert out["request_id"] == "rid-12345678"
    assert out["tenant"] == "beta"
    assert out["ok"] == [1, 2]
    assert out["n"] is None
    assert "unserialisable" not in out


def test_json_formatter_defaults_outside_request() -> None:
    record = logging.getLogger("t").makeRecord("t", logging.INFO, __file__, 1, "x", (), None)
    out = json.loads(JsonFormatter().format(record))
    assert out["request_id"] == "-"
    assert out["tenant"] == "-"


def test_configure_logging_is_idempotent() -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    try:
        configure_logging("DEBUG", json_logs=True)
        configure_logging("INFO", json_logs=False)
        configure_logging("WARNING")
        ours = [h for h in root.handlers if h not in saved_handlers]
        assert len(ours) == 1
        assert isinstance(ours[0].formatter, JsonFormatter)
        assert root.level == logging.WARNING
        assert logging.getLogger("uvicorn.access").level >= logging.WARNING
        with pytest.raises(ValueError):
            configure_logging("LOUD")
    finally:
        for h in list(root.handlers):
            if h not in saved_handlers:
                root.removeHandler(h)
        root.setLevel(saved_level)


TOKEN = "a-metrics-token-0123456789"


async def _gated(token: str = "", open_: bool = False) -> AsyncIterator[AsyncTestClient[Any]]:
    app = MetricsGate(Litestar(route_handlers=HANDLERS), token=token, open_=open_)
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as c:  # type: ignore[arg-type]
        yield c


async def test_metrics_hidden_without_a_token() -> None:
    async for c in _gated():
        resp = await c.get("/metrics")
        assert resp.status_code == 404
        assert resp.headers["content-type"] == "application/problem+json"
        assert (await c.get("/metrics/")).status_code == 404
        assert (await c.get("/items/1")).status_code == 200  # other routes pass


async def test_metrics_open_in_debug_without_a_token() -> None:
    async for c in _gated(open_=True):
        resp = await c.get("/metrics")
        assert resp.status_code == 200 and "madrasa_http_requests_total" in resp.text


async def test_metrics_behind_a_bearer_token() -> None:
    async for c in _gated(token=TOKEN, open_=True):  # debug does not open a token-protected /metrics
        assert (await c.get("/metrics")).status_code == 401
        assert (await c.get("/metrics/")).status_code == 401
        wrong = await c.get("/metrics", headers={"authorization": "Bearer wrong"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"].startswith("Bearer")
        resp = await c.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
        assert resp.status_code == 200 and "madrasa_http_requests_total" in resp.text


def test_metrics_on_their_own_port() -> None:
    import socket
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    stop = start_metrics_server("127.0.0.1", port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            assert b"madrasa_http_requests_total" in resp.read()
    finally:
        stop()


def test_metrics_settings_are_checked() -> None:
    key = "k" * 48
    settings = load_settings({"MADRASA_METRICS_PORT": "9100", "MADRASA_METRICS_TOKEN": TOKEN}, secret_key=key)
    assert settings.metrics_port == 9100 and settings.metrics_token == TOKEN
    with pytest.raises(ConfigError, match="MADRASA_METRICS_PORT"):
        load_settings({"MADRASA_METRICS_PORT": "8000"}, secret_key=key)
    with pytest.raises(ConfigError, match="MADRASA_METRICS_TOKEN"):
        load_settings({"MADRASA_METRICS_TOKEN": "short"}, secret_key=key)


async def test_the_app_serves_metrics_on_their_port_while_it_runs(tmp_path: Any) -> None:
    import asyncio
    import socket
    import urllib.error
    import urllib.request

    from core.app import build_services, create_app
    from core.migrate import migrate

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = load_settings({}, data_dir=tmp_path, secret_key="k" * 48, metrics_port=port, log_level="WARNING")
    services = build_services(settings)
    await services.db.start()
    await migrate(services.db, services.migration_sets)  # the lifespan starts the job queue, which reads its table
    await services.db.stop()
    app = create_app(settings, services=services, wrap=False)
    url = f"http://127.0.0.1:{port}/metrics"

    def read() -> bytes:
        with urllib.request.urlopen(url, timeout=5) as resp:  # the port of its own asks for no token
            return bytes(resp.read())

    async with AsyncTestClient(app=app):
        assert b"madrasa_http_requests_total" in await asyncio.to_thread(read)
    with pytest.raises(urllib.error.URLError):
        await asyncio.to_thread(read)  # stopped with the app


def test_third_party_info_lines_are_quieted_by_default() -> None:
    """Report cards subset fonts through fontTools, which logs a line per table at INFO: kept out of the log."""
    from core.observability import configure_logging

    try:
        configure_logging("INFO", json_logs=True)
        for name in ("fontTools.subset", "fontTools.ttLib", "fpdf.output", "urllib3.connectionpool"):
            assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
        assert logging.getLogger("madrasa.jobs").isEnabledFor(logging.INFO)
    finally:
        configure_logging("WARNING", json_logs=True)
