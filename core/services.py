"""The process-wide services a request can use, built once by the app factory."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.access import GrantStore
from core.clock import SYSTEM_CLOCK, Clock
from core.config import Settings
from core.db import Database
from core.events import Event
from core.identity import IdentityService
from core.mail import Mailer
from core.migrate import MigrationSet
from core.modules import ModuleSettings
from core.permissions import PermissionRegistry
from core.plugins import PluginHost, resolve
from core.storage import Storage
from core.tenancy import TenantDirectory


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
    migration_sets: list[MigrationSet] = field(default_factory=list)
    #: The background job queue (``core.jobs.JobQueue``; typed loosely: core.jobs imports this module).
    jobs: Any = None
    #: Outgoing SMS (``core.sms.SmsGateway``).
    sms: Any = None
    #: The date and time the school sees (``core.clock.Clock``; tests pin it with ``FixedClock``).
    clock: Clock = SYSTEM_CLOCK
    delivered_events: list[Event] = field(default_factory=list)

    async def disabled_for(self, tenant_path: tuple[int, ...]) -> frozenset[str]:
        """Modules switched off at a tenant node."""
        programmes: tuple[int, ...] = ()
        if len(tenant_path) == 4:
            programmes = await self.tenants.programmes_of(tenant_path[3])
        return await self.modules.disabled(tenant_path, programmes)

    async def emit(self, events: list[Event]) -> None:
        """Deliver events (after commit) to the plugins enabled for each event's tenant."""
        for event in events:
            disabled: frozenset[str] = frozenset()
            if event.tenant_id is not None:
                tenant = await self.tenants.by_id(event.tenant_id)
                if tenant is not None:
                    disabled = await self.disabled_for(tenant.path)
            for result in self.plugins.hook_for("madrasa_handle_event", disabled)(event=event):
                await resolve(result)
            self.delivered_events.append(event)
            del self.delivered_events[:-100]
