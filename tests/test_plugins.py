"""Plugins: entry points and the allow-list, built-ins through the same hooks, declared permissions, events."""

from __future__ import annotations

import httpx
import pytest
from litestar import get

from core.app import build_plugin_host, build_services, create_app
from core.context import Ctx
from core.events import Event
from core.hookspecs import hookimpl
from core.middleware import is_framework_options
from core.permissions import AUTHENTICATED, PUBLIC
from core.plugins import PluginError, PluginInfo
from tests.conftest import make_settings

BUILT_IN = {"tenants", "admin_ui", "grades", "attendance", "homework", "hr"}


def test_built_ins_load_through_entry_points_and_third_party_needs_allowing(tmp_path):
    closed = build_plugin_host(make_settings("sqlite", tmp_path, None, allowed_plugins=()))
    assert set(closed.names) == BUILT_IN
    assert all(closed.infos[n].builtin for n in BUILT_IN)
    opened = build_plugin_host(make_settings("sqlite", tmp_path, None, allowed_plugins=("example",)))
    assert set(opened.names) == BUILT_IN | {"example"}
    assert opened.infos["example"].builtin is False


def test_a_plugin_must_describe_itself(tmp_path):
    host = build_plugin_host(make_settings("sqlite", tmp_path, None, allowed_plugins=()))

    class Nameless:
        pass

    with pytest.raises(PluginError):
        host.register(Nameless())

    class Duplicate:
        @hookimpl
        def madrasa_plugin_info(self) -> PluginInfo:
            return PluginInfo(name="grades", label="Again")

    with pytest.raises(PluginError, match="already registered"):
        host.register(Duplicate())


def test_every_route_declares_a_known_permission(world):
    registry = world.services.permissions
    missing = []
    for route in world.litestar.routes:
        for handler in getattr(route, "route_handlers", []):
            if is_framework_options(handler):
                continue  # Litestar's own OPTIONS responder: no data, no permission to declare
            permission = handler.opt.get("permission")
            if permission is None or permission not in registry:
                missing.append(f"{route.path} ({handler.handler_name}): {permission!r}")
    assert not missing, "routes without a registered permission:\n" + "\n".join(missing)


def test_public_routes_are_an_explicit_short_list(world):
    public = sorted(
        {
            route.path
            for route in world.litestar.routes
            for h in getattr(route, "route_handlers", [])
            if h.opt.get("permission") == PUBLIC
        }
    )
    assert public == sorted(
        [
            "/",
            "/api/v1/auth/password-reset",
            "/api/v1/onboarding/invitations/accept",
            "/api/v1/auth/password-reset/confirm",
            "/api/v1/auth/refresh",
            "/api/v1/auth/token",
            "/api/v1/guardian-invitations/accept",
            "/calendar/{token:str}",
            "/favicon.ico",
            "/guardian-invitations/{token:str}",
            "/healthz",
            "/lang/{code:str}",
            "/login",
            "/logo",
            "/manifest.webmanifest",
            "/metrics",
            "/onboarding/invitations/{token:str}",
            "/password-reset",
            "/password-reset/{token:str}",
            "/readyz",
            "/schema",
            "/schema/oauth2-redirect.html",
            "/schema/openapi.json",
            "/schema/swagger",
            "/schema/{path:str}",
            "/static/attendance/{file_path:path}",
            "/static/core/{file_path:path}",
            "/static/example/{file_path:path}",
            "/static/swagger/{file_path:path}",
        ]
    )
    authenticated = {
        route.path
        for route in world.litestar.routes
        for h in getattr(route, "route_handlers", [])
        if h.opt.get("permission") == AUTHENTICATED
    }
    assert authenticated == {
        "/api/v1/auth/logout",
        "/api/v1/me",
        "/api/v1/permissions",
        "/logout",
        # one's own data (law 09-08): only ever the caller's or their children's (tests/test_personal_data.py)
        "/api/v1/me/data-export",
        "/api/v1/me/data-export/{job_id:str}",
        "/api/v1/me/data-export/{job_id:str}/download",
        "/my-data",
        "/my-data/{job_id:str}/download",
        # one's own sessions: listed and ended only by their owner (tests/test_devices.py)
        "/api/v1/me/sessions",
        "/api/v1/me/sessions/{session_id:str}",
        "/my-devices",
    }


class Undeclared:
    """A careless plugin: its route names no permission."""

    @hookimpl
    def madrasa_plugin_info(self) -> PluginInfo:
        return PluginInfo(name="careless", label="Careless")

    @hookimpl
    def madrasa_routes(self) -> list:
        @get("/api/v1/careless/open")
        async def open_door(ctx: Ctx) -> dict:
            return {"secret": "leaked"}

        return [open_door]


async def test_a_route_without_permission_is_refused_and_reported(tmp_path):
    settings = make_settings("sqlite", tmp_path, None, allowed_plugins=())
    host = build_plugin_host(settings)
    host.register(Undeclared())
    services = build_services(settings, plugins=host)
    app = create_app(settings, services=services)
    routes = [(r.path, h.opt.get("permission")) for r in app.litestar.routes for h in r.route_handlers]
    assert ("/api/v1/careless/open", None) in routes  # what the catalogue test above would report
    from core.migrate import migrate

    await services.db.start()
    await migrate(services.db, services.migration_sets)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://t") as client:
        response = await client.get("/api/v1/careless/open")
    await services.db.stop()
    assert response.status_code == 403
    assert "declares no known permission" in response.json()["detail"]


async def test_plugin_permissions_are_registered_with_their_roles(world):
    response = await world.api("GET", "/api/v1/permissions", as_="teacher.lycee-ibn-batouta@test.ma")
    perms = {p["name"]: set(p["roles"]) for p in response.json()}
    assert perms["grades.enter"] == {"teacher", "school_director"}
    assert perms["example.view"] == {"teacher", "school_director"}
    assert "audit.read" in perms


async def test_events_reach_only_plugins_enabled_for_the_tenant(world):
    from madrasa_example import plugin as example

    example.RECEIVED.clear()
    a, b = world.ids["lycee-ibn-batouta"], world.ids["college-al-khawarizmi"]
    await world.api(
        "PUT",
        "/api/v1/tenants/lycee-ibn-batouta/modules/example",
        as_="director.lycee-ibn-batouta@test.ma",
        json={"enabled": False, "reason": "quiet please"},
    )
    try:
        await world.services.emit([Event(name="test.ping", tenant_id=a), Event(name="test.ping", tenant_id=b)])
    finally:
        await world.api(
            "PUT",
            "/api/v1/tenants/lycee-ibn-batouta/modules/example",
            as_="director.lycee-ibn-batouta@test.ma",
            json={"enabled": None, "reason": "back on"},
        )
    assert [e.tenant_id for e in example.RECEIVED] == [b]


def test_plugin_cli_command(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    madrasa = Path(sys.executable).parent / "madrasa"
    result = subprocess.run(
        [str(madrasa), "example-hello"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "MADRASA_DATA_DIR": str(tmp_path), "MADRASA_ALLOWED_PLUGINS": "example"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hello from the example plugin"


async def test_options_requests_answer_without_data(world):
    response = await world.client.options("/api/v1/me")
    assert response.status_code == 204
    assert "GET" in response.headers["allow"]
