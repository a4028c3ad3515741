"""The Litestar application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from litestar import Litestar, Router
from litestar.config.response_cache import ResponseCacheConfig
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig
from piccolo.table import Table
from swagger_ui_bundle import swagger_ui_path

from core.access import GrantStore
from core.api.auth import AuthController, me
from core.api.platform import CORE_API
from core.clock import Clock
from core.config import ConfigError, Settings, load_settings
from core.db import Database
from core.devices import DEVICE_ROUTES
from core.guard import BodyReadAhead, RequestGuard
from core.headers import SecurityHeaders
from core.i18n import register_catalogue_dirs
from core.identity import IdentityService
from core.invalidation import InvalidationBus
from core.job_pages import JOB_PAGES
from core.jobs import JOB_ROUTES, JOB_TABLES, InProcessQueue, make_queue
from core.mail import Mailer, make_mailer
from core.middleware import AccessMiddleware, TenantPrefix, get_ctx
from core.migrate import MigrationSet
from core.modules import ModuleSettings
from core.notifications.kinds import KindError, collect_kinds
from core.notifications.routes import NOTIFICATION_ROUTES
from core.notifications.tables import NOTIFICATION_TABLES
from core.observability import MetricsGate, RequestContextMiddleware, configure_logging, start_metrics_server
from core.openapi import NoncedSwagger, document_problems
from core.permissions import CORE_PERMISSIONS, PUBLIC, PermissionRegistry
from core.plugins import PluginHost
from core.portal import PORTAL_ROUTES
from core.privacy.api import PRIVACY_ROUTES
from core.problems import http_exception_handler
from core.rendering import configure_templates
from core.schedule import Scheduler
from core.school.api import SCHOOL_ROUTES
from core.school.class_lists import CLASS_LIST_ROUTES
from core.school.csv_import import IMPORT_ROUTES
from core.school.directory_portal import DIRECTORY_ROUTES
from core.school.ical import ICAL_ROUTES
from core.school.manage_pages import MANAGE_ROUTES
from core.school.portal import SCHOOL_PORTAL_ROUTES
from core.school.pupil_pages import PUPIL_ROUTES
from core.school.slot_pages import SLOT_ROUTES
from core.school.staff_pages import STAFF_ROUTES
from core.school.tables import SCHOOL_TABLES
from core.services import Services
from core.shared_cache import make_shared_cache
from core.sms import make_sms_gateway
from core.storage import Storage, make_storage
from core.tables import CORE_TABLES
from core.tenancy import TenantDirectory

log = logging.getLogger("madrasa.app")

CORE_DIR = Path(__file__).parent
CORE_MIGRATIONS = MigrationSet(app="core", package="core.migrations")


def build_plugin_host(settings: Settings, extra_plugins: list[object] | None = None) -> PluginHost:
    """Plugins from entry points (built-ins always, third-party when allowed) plus ``extra_plugins``."""
    host = PluginHost()
    host.load_entry_points(settings.allowed_plugins)
    for plugin in extra_plugins or []:
        host.register(plugin)
    host.check()
    return host


def owned_tables(host: PluginHost) -> list[tuple[str, type[Table]]]:
    """Every table the application binds, with its owner: ``core`` or the plugin that declares it."""
    tables: list[tuple[str, type[Table]]] = [
        ("core", t) for t in (*CORE_TABLES, *SCHOOL_TABLES, *JOB_TABLES, *NOTIFICATION_TABLES)
    ]
    for plugin, plugin_tables in host.each("madrasa_tables"):
        tables.extend((plugin, t) for t in plugin_tables)
    return tables


def migration_sets(host: PluginHost) -> list[MigrationSet]:
    """Core's migrations first, then each plugin's, by plugin name."""
    sets = [CORE_MIGRATIONS]
    for _, mset in sorted(host.each("madrasa_migrations"), key=lambda item: item[0]):
        sets.append(mset)
    return sets


def build_services(
    settings: Settings,
    *,
    plugins: PluginHost | None = None,
    storage: Storage | None = None,
    mailer: Mailer | None = None,
) -> Services:
    """Wire the process-wide services (no I/O)."""
    host = plugins or build_plugin_host(settings)
    db = Database(settings)
    db.bind([table for _, table in owned_tables(host)])
    registry = PermissionRegistry()
    registry.register(CORE_PERMISSIONS)
    for _, perms in host.each("madrasa_permissions"):
        registry.register(perms)
    defaults = {name: info.default_enabled for name, info in host.infos.items() if info.toggleable}
    bus = InvalidationBus(db, settings)
    services = Services(
        settings=settings,
        db=db,
        plugins=host,
        permissions=registry,
        tenants=TenantDirectory(db, settings.base_domain, bus=bus),
        modules=ModuleSettings(db, defaults, bus=bus),
        grants=GrantStore(db, bus=bus),
        identity=IdentityService(db, settings, bus=bus),
        invalidation=bus,
        storage=storage or _storage(settings, host),
        mailer=mailer or make_mailer(settings),
        migration_sets=migration_sets(host),
    )
    services.job_functions = host.jobs()
    try:
        services.notification_kinds = collect_kinds(host)
    except KindError as exc:
        raise ConfigError(f"notification kinds: {exc}") from None
    services.jobs = make_queue(services)
    try:
        services.sms = make_sms_gateway(settings, host.backends("sms"))
    except ValueError as exc:
        raise ConfigError(f"MADRASA_SMS_BACKEND: {exc}") from None
    services.clock = Clock()
    services.shared_cache = make_shared_cache(settings.cache_url, settings.cache_prefix)
    return services


def _storage(settings: Settings, host: PluginHost) -> Storage:
    """The storage backend: ``fs`` or ``s3`` from core, or one that a plugin provides."""
    provided = host.backends("storage")
    if settings.storage_backend in provided:
        return provided[settings.storage_backend](settings)
    if settings.storage_backend not in ("fs", "s3"):
        raise ConfigError(
            f"MADRASA_STORAGE_BACKEND: unknown backend {settings.storage_backend!r} "
            "(core has fs and s3; no plugin provides it)"
        )
    return make_storage(settings)


def _plugin_routers(services: Services) -> list[Router]:
    routers = []
    for name, handlers in services.plugins.each("madrasa_routes"):
        info = services.plugins.infos[name]
        opt: dict[str, Any] = {"plugin": name}
        if info.toggleable:
            opt["module"] = name
        routers.append(Router(path="/", route_handlers=list(handlers), opt=opt))
    return routers


def create_app(
    settings: Settings | None = None,
    *,
    services: Services | None = None,
    wrap: bool = True,
) -> Any:
    """The ASGI application: Litestar wrapped in request-id/metrics, tenant-prefix, security-header and
    metrics-gate layers.

    With ``wrap=False`` the bare :class:`Litestar` app is returned (tests use it to list routes).
    """
    settings = settings or load_settings()
    configure_logging(settings.log_level, settings.log_json)
    services = services or build_services(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await services.db.start()
        await services.invalidation.start()
        await services.storage.ensure_ready()
        scheduler = Scheduler(services) if isinstance(services.jobs, InProcessQueue) else None
        if services.jobs is not None:
            await services.jobs.start()
        if scheduler is not None:  # with SAQ, ``madrasa worker`` schedules the periodic jobs
            await scheduler.start()
        stop_metrics = start_metrics_server(settings.host, settings.metrics_port) if settings.metrics_port else None
        try:
            yield
        finally:
            if stop_metrics is not None:
                stop_metrics()
            if scheduler is not None:
                await scheduler.stop()
            if services.jobs is not None:
                await services.jobs.stop()
            await services.shared_cache.close()
            await services.invalidation.stop()
            await services.db.stop()

    register_catalogue_dirs(services.plugins.locale_dirs())
    template_dirs = [CORE_DIR / "templates"]
    for _, dirs in services.plugins.each("madrasa_template_dirs"):
        template_dirs.extend(Path(d) for d in dirs)
    static_routers = [
        create_static_files_router(  # Swagger UI's own files (swagger-ui-bundle): the API reader works offline
            path="/static/swagger",
            directories=[Path(str(swagger_ui_path))],
            opt={"permission": PUBLIC},
            include_in_schema=False,
        ),
        create_static_files_router(
            path="/static/core", directories=[CORE_DIR / "static"], opt={"permission": PUBLIC}, include_in_schema=False
        ),
    ]
    for _, pairs in services.plugins.each("madrasa_static_dirs"):
        for prefix, folder in pairs:
            static_routers.append(
                create_static_files_router(
                    path=f"/static/{prefix}", directories=[folder], opt={"permission": PUBLIC}, include_in_schema=False
                )
            )

    app = Litestar(
        route_handlers=[
            AuthController,
            me,
            *CORE_API,
            *JOB_ROUTES,
            *JOB_PAGES,
            *SCHOOL_ROUTES,
            *IMPORT_ROUTES,
            *ICAL_ROUTES,
            *SCHOOL_PORTAL_ROUTES,
            *CLASS_LIST_ROUTES,
            *DIRECTORY_ROUTES,
            *MANAGE_ROUTES,
            *STAFF_ROUTES,
            *PUPIL_ROUTES,
            *SLOT_ROUTES,
            *PORTAL_ROUTES,
            *PRIVACY_ROUTES,
            *DEVICE_ROUTES,
            *NOTIFICATION_ROUTES,
            *static_routers,
            *_plugin_routers(services),
        ],
        dependencies={"ctx": Provide(get_ctx, sync_to_thread=False)},
        middleware=[RequestGuard(), AccessMiddleware(), BodyReadAhead()],  # core/guard.py: hostile input, 400
        exception_handlers={HTTPException: http_exception_handler, Exception: http_exception_handler},
        lifespan=[lifespan],
        template_config=TemplateConfig(
            directory=template_dirs, engine=JinjaTemplateEngine, engine_callback=configure_templates
        ),
        openapi_config=OpenAPIConfig(
            title="madrasa API",
            version="1",
            path="/schema",
            render_plugins=[
                NoncedSwagger(
                    js_url="/static/swagger/swagger-ui-bundle.js",
                    css_url="/static/swagger/swagger-ui.css",
                    standalone_preset_js_url="/static/swagger/swagger-ui-standalone-preset.js",
                    favicon='<link rel="icon" type="image/svg+xml" href="/static/core/icon.svg">',
                )
            ],
            openapi_router=Router(
                path="/schema", route_handlers=[], opt={"permission": PUBLIC}, include_in_schema=False
            ),
        ),
        request_max_body_size=settings.max_upload_bytes + 64 * 1024,
        response_cache_config=ResponseCacheConfig(),
        debug=False,
        logging_config=None,
    )
    app.state.services = services
    document_problems(app)  # core/openapi.py: the problem responses of every API operation
    if not wrap:
        return app
    gated = MetricsGate(app, token=settings.metrics_token, open_=settings.debug)
    asgi = RequestContextMiddleware(TenantPrefix(SecurityHeaders(gated), services))  # core/headers.py: CSP, HSTS…
    asgi.litestar = app  # type: ignore[attr-defined]
    asgi.services = services  # type: ignore[attr-defined]
    return asgi
