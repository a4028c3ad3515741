"""The plugin manager: loading built-in and third-party plugins, calling hooks per tenant.

Plugins are found through the entry-point group ``madrasa.plugins``. Those shipped in the
``madrasa`` distribution itself (grades, attendance, homework, hr, tenants, admin UI) are
registered through that same group; third-party ones load only when named in
``MADRASA_ALLOWED_PLUGINS``. Core never imports a plugin.
"""

from __future__ import annotations

import inspect
import logging
import sys
from collections.abc import Iterable
from datetime import date
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import msgspec
import pluggy

from core import hookspecs

log = logging.getLogger("madrasa.plugins")

ENTRY_POINT_GROUP = "madrasa.plugins"
BUILTIN_DISTRIBUTION = "madrasa"


class PluginInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What a plugin says about itself through ``madrasa_plugin_info``."""

    name: str
    label: str
    description: str = ""
    version: str = "0"
    #: State when nothing in the tenant tree or a programme says otherwise.
    default_enabled: bool = True
    #: ``False`` for infrastructure plugins that cannot be switched off (tenant management).
    toggleable: bool = True
    builtin: bool = False


class MenuItem(msgspec.Struct, frozen=True, kw_only=True):
    """A portal menu entry; ``url`` is relative to the tenant portal root."""

    label: str
    url: str
    icon: str = ""
    order: int = 100
    roles: frozenset[str] | None = None
    #: Shown only to people holding this permission at the tenant (the permission of the page it opens).
    permission: str | None = None
    #: Shown only at tenants of these kinds (``school``, ``province``, ``region``, ``platform``), or on the
    #: platform's landing page outside any tenant (``landing``, where only entries naming it are shown).
    kinds: frozenset[str] | None = None


class LessonOfWeek(msgspec.Struct, frozen=True, kw_only=True):
    """A lesson of the current week on a person's timetable: the slot, its school and the day it falls on."""

    slot_id: int
    school_id: int
    school_slug: str
    on_date: date
    teacher_id: int | None


class LessonLink(msgspec.Struct, frozen=True, kw_only=True):
    """A link a module puts on a lesson of the timetable; ``label`` goes through the catalogue."""

    slot_id: int
    label: str
    url: str


class DashboardCard(msgspec.Struct, frozen=True, kw_only=True):
    """A card on a portal home page."""

    title: str
    body: str
    url: str = ""
    order: int = 100


class Backend(msgspec.Struct, frozen=True, kw_only=True):
    """A backend a plugin provides (``madrasa_backends``): ``factory(settings)`` builds it."""

    kind: str
    name: str
    factory: Any


BACKEND_KINDS = ("sms", "storage")


class PluginError(Exception):
    """A plugin is malformed (no info, duplicate name, …)."""


async def resolve(value: Any) -> Any:
    """Await ``value`` if a hook returned an awaitable."""
    if inspect.isawaitable(value):
        return await value
    return value


class PluginHost:
    """Registered plugins, their info, and hook callers restricted to enabled modules."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("madrasa")
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self._objects: dict[str, object] = {}
        self._subset_cache: dict[tuple[str, frozenset[str]], Any] = {}
        self._own_cache: dict[tuple[str, str], Any] = {}
        self.pm.hook.madrasa_addhooks.call_historic(kwargs={"pluginmanager": self.pm})

    def check(self) -> None:
        """Fail on a hook implementation that no hookspec declares (once every plugin has registered)."""
        self.pm.check_pending()

    def register(self, plugin: object, *, builtin: bool = False) -> PluginInfo:
        """Register a plugin module or object; it must answer ``madrasa_plugin_info``."""
        impl = getattr(plugin, "madrasa_plugin_info", None)
        if impl is None:
            raise PluginError(f"{plugin!r} does not implement madrasa_plugin_info")
        info: PluginInfo = impl()
        if info.name in self.infos:
            raise PluginError(f"a plugin named {info.name!r} is already registered")
        if builtin:
            info = msgspec.structs.replace(info, builtin=True)
        self.pm.register(plugin, name=info.name)
        self.infos[info.name] = info
        self._objects[info.name] = plugin
        self._subset_cache.clear()
        self._own_cache.clear()
        return info

    def load_entry_points(self, allowed: Iterable[str]) -> list[str]:
        """Register plugins from the ``madrasa.plugins`` entry points; returns names loaded.

        Built-in plugins (from the ``madrasa`` distribution) always load; others only when allowed.
        """
        allowed_set = set(allowed)
        loaded: list[str] = []
        eps = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
        for ep in eps:
            builtin = _is_builtin(ep)
            if not builtin and ep.name not in allowed_set:
                log.info("plugin not in MADRASA_ALLOWED_PLUGINS, skipped", extra={"plugin": ep.name})
                continue
            if ep.name in self._objects:
                continue
            info = self.register(ep.load(), builtin=builtin)
            if info.name != ep.name:
                raise PluginError(f"entry point {ep.name!r} registers a plugin named {info.name!r}")
            loaded.append(ep.name)
        return loaded

    @property
    def names(self) -> list[str]:
        """Registered plugin names."""
        return sorted(self.infos)

    def locale_dirs(self) -> list[Path]:
        """Each plugin's ``locale`` folder (beside its module), where it has one."""
        found = []
        for name in self.names:
            module = sys.modules.get(getattr(self._objects[name], "__module__", "") or "") or self._objects[name]
            source = getattr(module, "__file__", None)
            if source and (Path(source).parent / "locale").is_dir():
                found.append(Path(source).parent / "locale")
        return found

    def toggleable(self) -> list[str]:
        """Plugins that can be switched per tenant."""
        return sorted(n for n, i in self.infos.items() if i.toggleable)

    def each(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call a hook on every plugin separately, keeping who answered: ``[(plugin, result)]``."""
        caller = getattr(self.pm.hook, hook)
        first = bool(caller.spec and caller.spec.opts.get("firstresult"))
        results = []
        for impl in reversed(caller.get_hookimpls()):
            answer = self._only(hook, impl.plugin_name)(**kwargs)
            for result in [answer] if first else answer:
                if result is not None:
                    results.append((impl.plugin_name, result))
        return results

    def callers(self, hook: str, disabled: frozenset[str] = frozenset()) -> list[tuple[str, Any]]:
        """One pluggy caller per enabled plugin implementing ``hook``, in call order, to isolate each."""
        impls = reversed(getattr(self.pm.hook, hook).get_hookimpls())
        return [(i.plugin_name, self._only(hook, i.plugin_name)) for i in impls if i.plugin_name not in disabled]

    def _only(self, hook: str, plugin_name: str) -> Any:
        """A pluggy caller of ``hook`` restricted to one plugin (so tracing and wrappers still apply)."""
        key = (hook, plugin_name)
        caller = self._own_cache.get(key)
        if caller is None:
            others = [obj for name, obj in self.pm.list_name_plugin() if name != plugin_name]
            caller = self.pm.subset_hook_caller(hook, remove_plugins=others)
            self._own_cache[key] = caller
        return caller

    def backends(self, kind: str) -> dict[str, Any]:
        """``{name: factory}`` of the backends of ``kind`` that plugins provide."""
        found: dict[str, Any] = {}
        for plugin, items in self.each("madrasa_backends"):
            for backend in items:
                if backend.kind not in BACKEND_KINDS:
                    raise PluginError(f"{plugin}: unknown backend kind {backend.kind!r}")
                if backend.kind != kind:
                    continue
                if backend.name in found:
                    raise PluginError(f"{plugin}: a {kind} backend named {backend.name!r} exists already")
                found[backend.name] = backend.factory
        return found

    def jobs(self) -> dict[str, Any]:
        """``{name: fn}`` of every job plugins declare through ``madrasa_jobs``."""
        found: dict[str, Any] = {}
        for plugin, declared in self.each("madrasa_jobs"):
            for name, fn in declared.items():
                if name in found:
                    raise PluginError(f"{plugin}: a job named {name!r} is declared twice")
                found[name] = fn
        return found

    def hook_for(self, hook: str, disabled: frozenset[str]) -> Any:
        """The hook caller without the plugins in ``disabled`` (pluggy ``subset_hook_caller``)."""
        key = (hook, disabled)
        caller = self._subset_cache.get(key)
        if caller is None:
            remove = [self._objects[n] for n in disabled if n in self._objects]
            caller = self.pm.subset_hook_caller(hook, remove_plugins=remove) if remove else getattr(self.pm.hook, hook)
            self._subset_cache[key] = caller
        return caller

    async def collect(self, hook: str, disabled: frozenset[str], **kwargs: Any) -> list[Any]:
        """Call a contribution hook for one tenant, await results, and flatten the lists."""
        results = self.hook_for(hook, disabled)(**kwargs)
        out: list[Any] = []
        for result in results:
            value = await resolve(result)
            if isinstance(value, list | tuple):
                out.extend(value)
            elif value is not None:
                out.append(value)
        return out


def _is_builtin(ep: EntryPoint) -> bool:
    dist = getattr(ep, "dist", None)
    return dist is not None and dist.name == BUILTIN_DISTRIBUTION
