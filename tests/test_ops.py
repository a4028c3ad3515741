"""Operations: health, readiness, metrics, OpenAPI, problem details, JSON logs with request id and tenant."""

from __future__ import annotations

import io
import json
import logging

from core.observability import JsonFormatter

TEACHER = "teacher.lycee-ibn-batouta@test.ma"


async def test_healthz_and_readyz(world):
    assert (await world.client.get("/healthz")).json() == {"status": "ok"}
    ready = await world.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "storage": "ok"}


async def test_readyz_reports_pending_migrations(world, monkeypatch):
    from core.migrate import MigrationSet

    extra = MigrationSet(app="not-applied", package="core.migrations")
    monkeypatch.setattr(world.services, "migration_sets", [*world.services.migration_sets, extra])
    ready = await world.client.get("/readyz")
    assert ready.status_code == 503
    assert "pending" in ready.json()["checks"]["database"]


async def test_metrics_count_requests_by_route_template(world):
    await world.api(
        "GET",
        f"/api/v1/files/{world.files['lycee-ibn-batouta']}/info",
        as_="director.lycee-ibn-batouta@test.ma",
        tenant="lycee-ibn-batouta",
    )
    bearer = {"authorization": f"Bearer {world.settings.metrics_token}"}
    text = (await world.client.get("/metrics", headers=bearer)).text
    assert "madrasa_http_requests_total" in text
    assert 'route="/api/v1/files/{file_id}/info"' in text
    assert "/api/v1/files/1/info" not in text  # ids never become labels


async def test_metrics_ask_for_the_token_on_the_app_port(world):
    anonymous = await world.client.get("/metrics")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    assert "madrasa_http" not in anonymous.text
    wrong = await world.client.get("/metrics", headers={"authorization": "Bearer not-the-metrics-token"})
    assert wrong.status_code == 401
    under_tenant = await world.client.get("/t/lycee-ibn-batouta/metrics")
    assert under_tenant.status_code == 401
    # a person's access token is not the metrics token
    token = await world.token("director.lycee-ibn-batouta@test.ma")
    assert (await world.client.get("/metrics", headers={"authorization": f"Bearer {token}"})).status_code == 401


async def test_openapi_lists_the_api(world):
    response = await world.client.get("/schema/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/v1/auth/token",
        "/api/v1/plugins",
        "/api/v1/audit",
        "/api/v1/tenants",
        "/api/v1/files/{file_id}",
        "/api/v1/example/hello",
    ):
        assert path in paths, path


async def test_malformed_json_is_a_400_problem(world):
    response = await world.api(
        "POST",
        "/api/v1/tenants",
        as_="region.casa@madrasa.demo",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 400


async def test_wrong_types_name_the_field(world):
    response = await world.api(
        "PUT",
        "/api/v1/tenants/lycee-ibn-batouta/modules/grades",
        as_="director.lycee-ibn-batouta@test.ma",
        json={"enabled": "yes please", "reason": "typed wrong"},
    )
    assert response.status_code == 400
    body = response.json()
    assert body["errors"][0]["field"] == "enabled"
    assert "enabled" in body["detail"]
    unknown = await world.api("POST", "/api/v1/auth/token", json={"email": "a@b.c", "password": "x", "admin": True})
    assert unknown.status_code == 400 and "admin" in unknown.text
    bad_query = await world.api("GET", "/api/v1/audit", as_="region.casa@madrasa.demo", params={"limit": "many"})
    assert bad_query.status_code == 400 and "limit" in bad_query.text


async def test_unknown_route_is_404_problem_on_the_api_and_a_page_elsewhere(world):
    api = await world.client.get("/api/v1/nothing-here")
    assert api.status_code == 404 and api.headers["content-type"].startswith("application/problem+json")
    page = await world.client.get("/nothing-here", headers={"accept": "text/html"})
    assert page.status_code == 404 and "<html" in page.text


async def test_logs_are_json_with_request_id_and_tenant(world):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("madrasa.access")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        response = await world.api(
            "GET", "/api/v1/plugins", as_=TEACHER, tenant="lycee-ibn-batouta", headers={"x-request-id": "req-12345678"}
        )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    assert response.headers["x-request-id"] == "req-12345678"
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    entry = next(line for line in lines if line.get("request_id") == "req-12345678")
    assert entry["tenant"] == "lycee-ibn-batouta" and entry["status"] == 200


async def test_problem_details_carry_the_request_id(world):
    response = await world.client.get("/api/v1/me", headers={"x-request-id": "trace-abcdef12"})
    assert response.status_code == 401
    assert response.json()["instance"] == "trace-abcdef12"


async def test_portal_pages_are_branded_and_installable(world):
    page = await world.api("GET", "/", as_=TEACHER, tenant="lycee-ibn-batouta")
    assert "--brand: #0b5d3b" in page.text and 'rel="manifest"' in page.text
    rabat = await world.client.get("/t/lycee-moulay-youssef/login")
    assert "--brand: #1d4e89" in rabat.text
    manifest = await world.client.get("/t/lycee-moulay-youssef/manifest.webmanifest?lang=ar")
    assert manifest.json()["start_url"] == "/t/lycee-moulay-youssef/"
    assert manifest.json()["dir"] == "rtl"


async def test_language_switch_sets_rtl_for_arabic(world):
    response = await world.client.get("/t/lycee-ibn-batouta/lang/ar?next=/t/lycee-ibn-batouta/login")
    assert response.status_code == 302
    world.client.cookies.delete("madrasa_lang")  # the world's client is shared: later tests expect French
    page = await world.client.get("/t/lycee-ibn-batouta/login", headers={"cookie": "madrasa_lang=ar"})
    assert 'dir="rtl"' in page.text and "تسجيل الدخول" in page.text
    page = await world.client.get("/t/lycee-ibn-batouta/login?lang=en")
    assert 'dir="ltr"' in page.text and "Log in" in page.text
    assert (await world.client.get("/t/lycee-ibn-batouta/lang/xx")).status_code == 404


async def test_favicon_is_the_tenant_logo_or_a_default_icon(world):
    """No 404 in the browser's console: /favicon.ico answers everywhere, and pages name their icon."""
    plain = await world.client.get("/favicon.ico")
    assert plain.status_code == 200 and plain.headers["content-type"].startswith("image/svg+xml")
    assert plain.content.lstrip().startswith(b"<svg") or b"<svg" in plain.content[:200]
    school = await world.client.get("/t/lycee-ibn-batouta/favicon.ico")
    assert school.status_code in (200, 302)
    login = await world.client.get("/t/lycee-ibn-batouta/login")
    assert '<link rel="icon"' in login.text
