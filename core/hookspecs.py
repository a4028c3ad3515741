"""The plugin hooks of madrasa: one flat module, every hook documented in ``docs/plugin_hooks.md``.

Hooks are grouped by phase, as in pytest's hookspec module:

* **registration** — called once at start-up: what a plugin is and what it brings
  (tables, migrations, routes, permissions, templates, static files, CLI commands, demo data);
* **contribution** — called per request for a tenant; a module switched off for that tenant
  is left out of the call (pluggy's ``subset_hook_caller``), so its items vanish there;
* **exchange between modules** — one module reads or writes another's data through hooks the
  owning module answers with its own services (``firstresult``; call them through
  ``services.plugins.hook_for(name, disabled)`` so a module switched off for the tenant does not answer);
* **personal data** — what a plugin holds about a person (the right of access) and how long it keeps
  it (retention); called for every plugin, whatever the module switches: the law covers all data held;
* **events** — domain events delivered after commit.

pluggy is synchronous: a hook may return a value or an awaitable; the host awaits it
(:func:`core.plugins.resolve`). Every hook name starts with ``madrasa_``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import argparse
    from pathlib import Path

    from piccolo.table import Table

    from core.context import RequestContext
    from core.events import Event
    from core.exchange import GradebookWrite
    from core.migrate import MigrationSet
    from core.notifications.kinds import NotificationKind
    from core.permissions import Permission
    from core.plugins import Backend, LessonOfWeek, MenuItem, PluginInfo
    from core.privacy.export import DataSubject

hookspec = pluggy.HookspecMarker("madrasa")
hookimpl = pluggy.HookimplMarker("madrasa")

# --- registration ------------------------------------------------------------------------


@hookspec(firstresult=True)
def madrasa_plugin_info() -> PluginInfo:
    """Describe the plugin: name, label, version, default state and whether it can be switched off.

    Every plugin must implement it; the name is the module name used in enablement settings.
    """


@hookspec
def madrasa_permissions() -> list[Permission]:
    """Return the named permissions the plugin declares, with the roles that hold them by default."""


@hookspec
def madrasa_tables() -> list[type[Table]]:
    """Return the plugin's Piccolo tables, so the host binds them to the database."""


@hookspec
def madrasa_migrations() -> MigrationSet:
    """Return the plugin's migration set (an app label and a package of migration modules).

    The host asks each plugin separately and applies core's migrations first, then each
    plugin's in plugin-name order.
    """


@hookspec
def madrasa_routes() -> list[Any]:
    """Return Litestar route handlers, controllers or routers; each must declare ``opt={"permission": …}``.

    The host mounts them behind the plugin's module switch: while the module is off for the
    request's tenant they answer 404.
    """


@hookspec
def madrasa_template_dirs() -> list[Path]:
    """Return folders of Jinja2 templates; a plugin's templates live under a folder named after it."""


@hookspec
def madrasa_static_dirs() -> list[tuple[str, Path]]:
    """Return ``(url_prefix, folder)`` pairs served as static files under ``/static/<url_prefix>/``."""


@hookspec(historic=True)
def madrasa_addhooks(pluginmanager: pluggy.PluginManager) -> None:
    """Add a plugin's own hookspecs, for other plugins to implement (as pytest's ``pytest_addhooks``).

    Called once for each plugin as it registers: ``pluginmanager.add_hookspecs(my_hookspecs)``.
    Callers reach such a hook through ``ctx.services.plugins.collect(name, ctx.disabled_modules, …)``,
    so only the plugins enabled for the tenant answer.
    """


@hookspec
def madrasa_jobs() -> dict[str, Any]:
    """Return the background jobs the plugin runs: ``{name: async fn(job: JobContext) -> dict | None}``.

    Names are global (prefix them with the plugin's name); a job is queued with
    ``queue_of(services).enqueue(name, …)`` and runs in the web process or a worker.
    """


@hookspec
def madrasa_backends() -> list[Backend]:
    """Return delivery or storage backends the plugin provides (``core.plugin_api.Backend``).

    A backend has a ``kind`` (``sms`` or ``storage``), a ``name`` chosen by the matching setting
    (``MADRASA_SMS_BACKEND``, ``MADRASA_STORAGE_BACKEND``) and a ``factory(settings)`` building it.
    Adding a real SMS gateway is a plugin, not a core edit.
    """


@hookspec
def madrasa_notification_kinds() -> list[NotificationKind]:
    """Return the kinds of notification the plugin sends (``core.plugin_api.NotificationKind``).

    A kind is named ``<plugin>.<what>`` and says its label (a message id), its default channels (``email``,
    ``sms``; the in-app inbox always), whether a school or region may make it mandatory and whether it may use
    SMS. The plugin sends through ``core.plugin_api.notify(services, kind=…, …)``.
    """


@hookspec
def madrasa_cli_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add subcommands to the ``madrasa`` command; set ``func`` (sync or async, taking ``args``)."""


@hookspec
def madrasa_demo_data(db: Any, tenants: dict[str, int]) -> Any:
    """Load the plugin's demo data into a freshly seeded demo; ``tenants`` maps slugs to ids.

    May return an awaitable. Called once, when the demo is first loaded.
    """


# --- contribution (per tenant: only enabled modules are called) ---------------------------


@hookspec
def madrasa_menu_items(ctx: RequestContext) -> list[MenuItem]:
    """Return portal menu entries for the person and tenant of ``ctx``."""


@hookspec
def madrasa_dashboard_cards(ctx: RequestContext) -> Any:
    """Return dashboard cards (``list[DashboardCard]``, or an awaitable of one) for ``ctx``."""


@hookspec
def madrasa_child_overview(ctx: RequestContext, child_id: int) -> Any:
    """Return sections (``list[dict]``, or an awaitable) describing a child, for a guardian's overview."""


@hookspec
def madrasa_lesson_links(ctx: RequestContext, lessons: list[LessonOfWeek]) -> Any:
    """Return links (``list[LessonLink]``, or an awaitable) to put on lessons of the person's week."""


@hookspec
def madrasa_exports(ctx: RequestContext) -> list[dict[str, str]]:
    """Return export formats the plugin offers for the tenant: dicts with ``name``, ``label``, ``url``."""


# --- exchange between modules (firstresult; only enabled modules answer) ---------------------


@hookspec(firstresult=True)
def madrasa_gradebook_read(ctx: RequestContext, school_ids: list[int], class_ids: list[int] | None) -> Any:
    """Return the line items (assessments) and results (marks) of some schools as a ``core.exchange.Gradebook``.

    Only rows inside ``ctx.scope`` are read; ``class_ids`` narrows to some classes (``None``: all).
    Runs inside the caller's ``db.scoped`` transaction; may return an awaitable. Answered by the
    grades module; ``None`` when it is off for the tenant.
    """


@hookspec(firstresult=True)
def madrasa_gradebook_write(ctx: RequestContext, write: GradebookWrite) -> Any:
    """Write one school's line items and results; return a ``core.exchange.GradebookWritten``.

    The owner's own services do the writing: a changed mark bumps the assessment's version and is
    audited exactly as a grid save is, and a sheet that is closed or past draft is refused the same
    way. Runs inside the caller's ``db.scoped`` transaction (roll it back when problems are
    returned); may return an awaitable. ``None`` when the grades module is off for the tenant.
    """


# --- personal data (every plugin, whatever the module switches) ---------------------------


@hookspec
def madrasa_personal_data(db: Any, subject: DataSubject) -> Any:
    """Return what the plugin holds about a person or pupils: ``list[DataSection]`` (or an awaitable of one).

    ``subject.person_id`` (may be ``None``) and ``subject.student_ids`` name whom; read every table of the
    plugin that mentions them, inside the caller's open read transaction on ``db`` (platform scope).
    """


@hookspec
def madrasa_retention_purge(db: Any, region_id: int, cutoffs: dict[str, Any]) -> Any:
    """Delete the region's rows older than their cutoff; return ``{kind: rows deleted}`` (or an awaitable).

    ``cutoffs`` maps a retention kind (``notices``, ``messages``, …) to a timezone-aware datetime; purge only
    the kinds the plugin holds. Runs inside the caller's write transaction on ``db`` (platform scope); the
    caller audits the counts.
    """


# --- events ------------------------------------------------------------------------------


@hookspec
def madrasa_handle_event(event: Event) -> Any:
    """React to a domain event after its transaction committed; may return an awaitable.

    Only plugins enabled at the event's tenant are called; an event without a tenant
    (a platform event) reaches every plugin.
    """
