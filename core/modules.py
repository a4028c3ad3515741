"""Module enablement: the effective on/off state of a plugin for a tenant, and its changes.

Precedence for a school: school setting > programme setting > province > region > platform
> the plugin's default. A node above a school resolves the same chain from itself upwards.
Every change is written to the audit log with its author and reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec

from core.cache import TTLCache
from core.db import Database
from core.invalidation import MODULES, InvalidationBus
from core.sql import SQL

CACHE_SECONDS = 5.0


class SettingRow(msgspec.Struct, frozen=True):
    """One explicit setting."""

    enabled: bool
    updated_at: datetime
    reason: str = ""
    updated_by: int | None = None


class EffectiveState(msgspec.Struct, frozen=True):
    """A module's state for a tenant and what decided it."""

    module: str
    enabled: bool
    #: ``default``, ``platform``, ``region``, ``province``, ``programme`` or ``school``.
    source: str
    source_id: int | None = None


LEVELS = ("platform", "region", "province", "school")


def effective_state(
    module: str,
    default: bool,
    path: Sequence[int],
    node_settings: Mapping[int, SettingRow],
    programme_settings: Mapping[int, SettingRow],
) -> EffectiveState:
    """Resolve a module's state along a tenant path (root first) and its school's programmes.

    ``node_settings`` maps tenant ids to settings for this module; ``programme_settings``
    maps the school's programmes to theirs (the most recent programme setting wins when two
    programmes disagree). Pure function: no I/O.
    """
    if len(path) == 4 and path[3] in node_settings:
        return EffectiveState(module, node_settings[path[3]].enabled, "school", path[3])
    if len(path) == 4 and programme_settings:
        pid, row = max(programme_settings.items(), key=lambda item: (item[1].updated_at, item[0]))
        return EffectiveState(module, row.enabled, "programme", pid)
    for depth in range(min(len(path), 3) - 1, -1, -1):
        node = path[depth]
        if node in node_settings:
            return EffectiveState(module, node_settings[node].enabled, LEVELS[depth], node)
    return EffectiveState(module, default, "default", None)


@dataclass
class _Settings:
    """Every explicit setting, as loaded at one moment, and what was derived from them since."""

    nodes: dict[str, dict[int, SettingRow]]
    programmes: dict[str, dict[int, SettingRow]]
    disabled: dict[tuple[tuple[int, ...], tuple[int, ...]], frozenset[str]] = field(default_factory=dict)


class ModuleSettings:
    """Cached explicit settings, with writes that audit and invalidate."""

    def __init__(
        self,
        db: Database,
        defaults: Mapping[str, bool],
        cache_seconds: float = CACHE_SECONDS,
        bus: InvalidationBus | None = None,
    ) -> None:
        self.db = db
        self.defaults = dict(defaults)
        self.bus = bus
        self._cache: TTLCache[str, _Settings] = TTLCache(cache_seconds)
        if bus is not None:
            bus.subscribe(MODULES, self.forget)

    def invalidate(self) -> None:
        """Forget cached settings in every process (once the open transaction commits)."""
        if self.bus is None:
            self.forget()
        else:
            self.bus.publish(MODULES)

    def forget(self, _key: object = None) -> None:
        """Forget cached settings in this process."""
        self._cache.clear()

    async def _load(self) -> _Settings:
        return await self._cache.get("all", self._read)

    async def _read(self) -> _Settings:
        rows = await self.db.fetch(
            "SELECT module, tenant_id, programme_id, enabled, updated_at, reason, updated_by FROM module_setting"
        )
        nodes: dict[str, dict[int, SettingRow]] = {}
        programmes: dict[str, dict[int, SettingRow]] = {}
        for r in rows:
            row = SettingRow(bool(r["enabled"]), r["updated_at"], r["reason"], r["updated_by"])
            if r["programme_id"] is not None:
                programmes.setdefault(r["module"], {})[r["programme_id"]] = row
            elif r["tenant_id"] is not None:
                nodes.setdefault(r["module"], {})[r["tenant_id"]] = row
        return _Settings(nodes, programmes)

    async def state(self, module: str, path: Sequence[int], programmes: Sequence[int]) -> EffectiveState:
        """Effective state of one module at a node (``programmes``: the school's programmes)."""
        settings = await self._load()
        prog = settings.programmes.get(module, {})
        return effective_state(
            module,
            self.defaults.get(module, True),
            path,
            settings.nodes.get(module, {}),
            {p: prog[p] for p in programmes if p in prog},
        )

    async def disabled(self, path: Sequence[int], programmes: Sequence[int]) -> frozenset[str]:
        """Modules switched off at a node (memoised until the settings are reloaded)."""
        settings = await self._load()
        key = (tuple(path), tuple(programmes))
        found = settings.disabled.get(key)
        if found is None:
            out = set()
            for module in self.defaults:
                if not (await self.state(module, path, programmes)).enabled:
                    out.add(module)
            found = frozenset(out)
            if len(settings.disabled) < 100_000:
                settings.disabled[key] = found
        return found

    async def set(
        self,
        module: str,
        enabled: bool | None,
        *,
        tenant_id: int | None = None,
        programme_id: int | None = None,
        actor_id: int | None,
        reason: str,
    ) -> tuple[bool | None, bool | None]:
        """Write (or with ``enabled=None`` remove) a setting inside the caller's transaction.

        Returns ``(before, after)``; the caller audits the change.
        """
        if (tenant_id is None) == (programme_id is None):
            raise ValueError("a module setting names exactly one tenant or one programme")
        target = SQL("tenant_id = {}", tenant_id) if tenant_id is not None else SQL("programme_id = {}", programme_id)
        row = await self.db.fetchrow("SELECT id, enabled FROM module_setting WHERE module = {} AND {}", module, target)
        before = bool(row["enabled"]) if row else None
        now = datetime.now(UTC)
        if enabled is None:
            if row:
                await self.db.execute("DELETE FROM module_setting WHERE id = {}", row["id"])
        elif row:
            await self.db.execute(
                "UPDATE module_setting SET enabled = {}, reason = {}, updated_by = {}, updated_at = {} WHERE id = {}",
                enabled,
                reason,
                actor_id,
                now,
                row["id"],
            )
        else:
            await self.db.execute(
                "INSERT INTO module_setting (module, tenant_id, programme_id, enabled, reason, updated_by, updated_at)"
                " VALUES ({}, {}, {}, {}, {}, {}, {})",
                module,
                tenant_id,
                programme_id,
                enabled,
                reason,
                actor_id,
                now,
            )
        self.invalidate()
        return before, enabled
