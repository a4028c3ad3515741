"""The process-wide services a request can use, built once by the app factory."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from core.access import GrantStore
from core.clock import SYSTEM_CLOCK, Clock
from core.config import Settings
from core.db import Database
from core.events import Event
from core.identity import IdentityService
from core.invalidation import InvalidationBus
from core.mail import Mailer
from core.migrate import MigrationSet
from core.modules import ModuleSettings
from core.observability import count_handler_failure
from core.permissions import PermissionRegistry
from core.plugins import PluginHost, resolve
from core.shared_cache import MemorySharedCache, SharedCache
from core.storage import Storage
from core.tenancy import TenantDirectory

log = logging.getLogger("madrasa.events")


@dataclass
class Services:
    """Everything a handler or service needs, held on ``app.state.services``."""

    settings: Settings
    db: Database
    plugins: PluginHost
    permissions: PermissionRegistry
    tenants: TenantDirectory
    modules: ModuleSettings
    grants: GrantStore
    identity: IdentityService
    storage: Storage
    mailer: Mailer
    #: Cache invalidation across processes (:mod:`core.invalidation`).
    invalidation: InvalidationBus
    migration_sets: list[MigrationSet] = field(default_factory=list)
    #: The background job queue (``core.jobs.JobQueue``; typed loosely: core.jobs imports this module).
    jobs: Any = None
    #: Outgoing SMS (``core.sms.SmsGateway``).
    sms: Any = None
    #: The date and time the school sees (``core.clock.Clock``; tests pin it with ``FixedClock``).
    clock: Clock = SYSTEM_CLOCK
    #: Job functions plugins declare through ``madrasa_jobs`` (core's own are in ``core.jobs.JOBS``).
    job_functions: dict[str, Any] = field(default_factory=dict)
    #: Bytes shared by the web processes (Redis when ``MADRASA_CACHE_URL`` is set), never the source of truth.
    shared_cache: SharedCache = field(default_factory=MemorySharedCache)
    #: Notification kinds plugins declare through ``madrasa_notification_kinds`` (``core.notifications.kinds``).
    notification_kinds: dict[str, Any] = field(default_factory=dict)

    async def disabled_for(self, tenant_path: tuple[int, ...]) -> frozenset[str]:
        """Modules switched off at a tenant node."""
        programmes: tuple[int, ...] = ()
        if len(tenant_path) == 4:
            programmes = await self.tenants.programmes_of(tenant_path[3])
        return await self.modules.disabled(tenant_path, programmes)

    async def emit(self, events: list[Event]) -> None:
        """Deliver events (after commit) to the plugins enabled for each event's tenant.

        Each handler runs on its own: one that raises (or whose awaitable raises) is logged with
        the event and counted in ``/metrics``, and the others still run. The write that produced
        the event has committed; a listener's failure never turns it into an error.
        """
        for event in events:
            disabled: frozenset[str] = frozenset()
            if event.tenant_id is not None:
                tenant = await self.tenants.by_id(event.tenant_id)
                if tenant is not None:
                    disabled = await self.disabled_for(tenant.path)
            for plugin, call in self.plugins.callers("madrasa_handle_event", disabled):
                try:
                    for result in call(event=event):
                        await resolve(result)
                except Exception:
                    log.exception("event handler failed", extra={"event": event.name, "plugin": plugin})
                    count_handler_failure(event.name, plugin)
