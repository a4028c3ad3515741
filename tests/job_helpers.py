"""Test helpers for background jobs and bulletins: an app with their routes mounted, and a queue.

Until ``JOB_ROUTES`` (core) and ``BULLETIN_ROUTES`` (grades plugin) are mounted by the app
factory, :func:`wired` builds a second app over the same services (same database, storage,
accounts) with them mounted the way they will be: the job route among core's routes, the
bulletin routes in the grades plugin's router (so the module switch applies). Once they are
mounted for real, :func:`wired` returns the world's own client.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

import core.app
from core.api.platform import CORE_API
from core.app import build_plugin_host, create_app
from core.hookspecs import hookimpl
from core.jobs import JOB_ROUTES, InProcessQueue
from core.permissions import ALL_ROLES, Permission, PermissionRegistry
from core.services import Services
from tests.conftest import World, new_client

REDIS_URL = os.environ.get("MADRASA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
JOBS_VIEW = Permission("jobs.view", "Follow background jobs", ALL_ROLES)

_wired: dict[int, tuple[httpx.AsyncClient, Services]] = {}


def _mounted(world: World, path: str) -> bool:
    return any(route.path == path for route in world.litestar.routes)


def wired(world: World) -> httpx.AsyncClient:
    """A client for an app with the job and bulletin routes (the world's own once they are mounted)."""
    return _wire(world)[0]


def app_services(world: World) -> Services:
    """The services of the app :func:`wired` talks to (where a handler finds ``services.jobs``)."""
    return _wire(world)[1]


def _wire(world: World) -> tuple[httpx.AsyncClient, Services]:
    if _mounted(world, "/api/v1/jobs/{job_id:str}") and _mounted(world, "/api/v1/grades/bulletins"):
        return world.client, world.services
    if id(world) in _wired:
        return _wired[id(world)]
    from plugins.grades import plugin as grades_plugin
    from plugins.grades.bulletins import BULLETIN_ROUTES

    original = grades_plugin.madrasa_routes

    @hookimpl
    def madrasa_routes() -> list[Any]:
        return [*original(), *BULLETIN_ROUTES]

    grades_plugin.madrasa_routes = madrasa_routes  # type: ignore[assignment]
    core_api = core.app.CORE_API
    core.app.CORE_API = [*CORE_API, *JOB_ROUTES]
    try:
        host = build_plugin_host(world.settings)
        registry = PermissionRegistry()
        registry.register(world.services.permissions.all())
        if "jobs.view" not in registry:
            registry.register([JOBS_VIEW])
        services = dataclasses.replace(world.services, plugins=host, permissions=registry)
        app = create_app(world.settings, services=services)
    finally:
        grades_plugin.madrasa_routes = original  # type: ignore[assignment]
        core.app.CORE_API = core_api
    _wired[id(world)] = (new_client(app), services)
    return _wired[id(world)]


async def call(
    world: World, method: str, path: str, *, as_: str, tenant: str | None = None, **kwargs: Any
) -> httpx.Response:
    """Call the wired app with an account's bearer token, under ``/t/<tenant>``."""
    headers = dict(kwargs.pop("headers", {}) or {})
    headers["authorization"] = f"Bearer {await world.token(as_)}"
    url = f"/t/{tenant}{path}" if tenant else path
    return await wired(world).request(method, url, headers=headers, **kwargs)


async def started_queue(world: World) -> InProcessQueue:
    """An in-process queue over the world's services (recovery off: other tests' jobs stay theirs)."""
    queue = InProcessQueue(world.services, concurrency=2, recover=False)
    await queue.start()
    return queue


@asynccontextmanager
async def app_queue(world: World) -> AsyncIterator[InProcessQueue]:
    """A started in-process queue set as ``services.jobs`` of the app under test (the ASGI test
    client runs no lifespan), restored and stopped afterwards."""
    services = app_services(world)
    previous = getattr(services, "jobs", None)
    queue = InProcessQueue(services, concurrency=2, recover=False)
    await queue.start()
    services.jobs = queue  # type: ignore[attr-defined]
    try:
        yield queue
    finally:
        await queue.stop()
        services.jobs = previous  # type: ignore[attr-defined]
