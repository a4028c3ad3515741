"""Retention periods and the daily purge (law 09-08: personal data is kept no longer than needed).

A region sets, per kind of record, how many days it keeps them (``retention_period``); the platform's row
is every region's default, and without either the documented default of :data:`KINDS` applies. Each kind
has bounds: audit entries are kept at least a year (PostgreSQL enforces it too: the application role can
only purge them through ``madrasa_purge_audit``, see ``core/migrations/m0008_privacy.py``).

The purge (job ``privacy.purge``, command ``madrasa purge``) deletes, region by region, what is older than
the region's periods — audit entries, login records and notifications (as ``notices``) in core, notices and
messages in the plugins that hold them (``madrasa_retention_purge``) — and writes one audit entry per region
with the counts. Records of no region (platform audit entries, failed logins, reset links) follow the
platform's periods. The job runs once a day on its own (:func:`core.schedule.every`, in whichever process runs
jobs); ``madrasa purge`` runs it at once.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from core import audit
from core.context import RequestContext
from core.db import Database
from core.errors import Forbidden, Invalid
from core.jobs import JobContext, register_job
from core.plugins import resolve
from core.schedule import every
from core.scope import Scope
from core.sql import SQL, ident, in_
from core.tenancy import TenantInfo

JOB = "privacy.purge"


@dataclass(frozen=True)
class Kind:
    """A kind of record with a retention period: its default and bounds in days, and its label (translated)."""

    label: str
    default: int
    minimum: int
    maximum: int


#: The kinds a region sets, with their defaults. Core purges ``audit`` and ``logins``; plugins the others.
KINDS: dict[str, Kind] = {
    "audit": Kind("Audit log", 3 * 365, 365, 10 * 365),
    "logins": Kind("Login records (sessions, failed logins, reset links)", 180, 30, 2 * 365),
    "notices": Kind("Notices sent to families", 365, 30, 5 * 365),
    "messages": Kind("Messages", 365, 30, 5 * 365),
}


# --------------------------------------------------------------------------- settings


async def _platform_id(db: Database) -> int:
    return int(await db.fetchval("SELECT id FROM tenant WHERE kind = 'platform' ORDER BY id LIMIT 1"))


async def periods(db: Database, region_id: int | None) -> dict[str, dict[str, Any]]:
    """The periods in force for a region (``None``: the platform's): ``{kind: {days, source}}``."""
    platform = await _platform_id(db)
    ids = [platform] if region_id is None else [platform, region_id]
    rows = await db.fetch(SQL("SELECT tenant_id, kind, days FROM retention_period WHERE tenant_id IN {}", in_(ids)))
    out = {k: {"days": kind.default, "source": "default"} for k, kind in KINDS.items()}
    for source, tenant_id in (("platform", platform), ("region", region_id)):
        for row in rows:
            if row["tenant_id"] == tenant_id and row["kind"] in out:
                out[row["kind"]] = {"days": int(row["days"]), "source": source}
    return out


def check_days(values: dict[str, int]) -> None:
    """:class:`Invalid` for an unknown kind or a period outside its bounds (a pure check)."""
    for name, days in values.items():
        kind = KINDS.get(name)
        if kind is None:
            raise Invalid(name, "Unknown kind of record {kind}.", kind=name)
        if not isinstance(days, int) or not kind.minimum <= days <= kind.maximum:
            raise Invalid(
                name,
                "Keep between {minimum} and {maximum} days.",
                code="out_of_bounds",
                minimum=kind.minimum,
                maximum=kind.maximum,
            )


def settings_node(ctx: RequestContext) -> TenantInfo:
    """The node whose periods a request changes: a region (its administrators) or the platform (403 otherwise)."""
    tenant = ctx.require_tenant()
    if tenant.kind not in ("region", "platform") or not ctx.scope.covers(tenant.path):
        raise Forbidden("Retention periods are set for a region, at the region's address.", code="not_a_region")
    if tenant.kind == "platform" and not ctx.scope.platform:
        raise Forbidden("Only platform administrators set the platform's defaults.")
    return tenant


async def set_periods(ctx: RequestContext, tenant: TenantInfo, values: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Store a region's (or the platform's) periods, audited; inside the caller's transaction."""
    check_days(values)
    db = ctx.services.db
    region_id = None if tenant.kind == "platform" else tenant.id
    before = await periods(db, region_id)
    now = datetime.now(UTC)
    for kind, days in sorted(values.items()):
        await db.execute(
            "DELETE FROM retention_period WHERE tenant_id = {} AND kind = {}",
            tenant.id,
            kind,
        )
        await db.execute(
            "INSERT INTO retention_period (tenant_id, kind, days, updated_by, updated_at) VALUES ({}, {}, {}, {}, {})",
            tenant.id,
            kind,
            days,
            ctx.person_id,
            now,
        )
    after = await periods(db, region_id)
    await audit.record(
        db,
        actor_id=ctx.person_id,
        action="retention.change",
        object_type="tenant",
        object_id=tenant.id,
        tenant=tenant,
        before={k: v["days"] for k, v in before.items()},
        after={k: v["days"] for k, v in after.items()},
    )
    return after


# --------------------------------------------------------------------------- purge


def cutoffs_for(setting: dict[str, dict[str, Any]], now: datetime) -> dict[str, datetime]:
    """The instant before which each kind is purged (a pure function)."""
    return {kind: now - timedelta(days=int(value["days"])) for kind, value in setting.items()}


async def _count_delete(db: Database, table: str, where: SQL) -> int:
    count = int(await db.fetchval(SQL("SELECT COUNT(*) FROM {} WHERE {}", ident(table), where)) or 0)
    if count:
        await db.execute(SQL("DELETE FROM {} WHERE {}", ident(table), where))
    return count


async def _purge_audit(db: Database, region_id: int | None, before: datetime) -> int:
    """Audit entries of a region (``None``: platform entries) older than ``before``."""
    if db.dialect == "postgres":  # the application role may only append: the owner's function deletes
        return int(await db.fetchval("SELECT madrasa_purge_audit({}, {})", region_id, before) or 0)
    where = SQL("region_id IS NULL") if region_id is None else SQL("region_id = {}", region_id)
    return await _count_delete(db, "audit_log", SQL("{} AND at < {}", where, before))


async def purge_notifications(db: Database, region_id: int, before: datetime) -> int:
    """The region's notifications older than ``before`` (notices to people), their e-mails and SMS and their
    batches; returns the notifications deleted."""
    old = SQL("region_id = {} AND created_at < {}", region_id, before)
    await db.execute(
        SQL(
            "DELETE FROM notification_delivery WHERE notification_id IN (SELECT id FROM notification WHERE {})",
            old,
        )
    )
    removed = await _count_delete(db, "notification", old)
    await _count_delete(db, "notification_batch", SQL("{} AND status = 'done'", old))
    return removed


async def _purge_logins(db: Database, region: TenantInfo | None, platform_id: int, before: datetime) -> int:
    """Ended sessions started at the region's portals (``None``: the platform's, and tenant-less records)."""
    ended = SQL("COALESCE(revoked_at, expires_at) < {}", before)
    if region is not None:
        subtree = SQL("tenant_id IN (SELECT id FROM tenant WHERE path LIKE {})", "/".join(map(str, region.path)) + "/%")
        return await _count_delete(db, "auth_session", SQL("{} AND {}", subtree, ended))
    count = await _count_delete(
        db, "auth_session", SQL("(tenant_id IS NULL OR tenant_id = {}) AND {}", platform_id, ended)
    )
    count += await _count_delete(db, "login_attempt", SQL("at < {}", before))
    count += await _count_delete(db, "password_reset", SQL("expires_at < {}", before))
    return count


async def purge_node(services: Any, region: TenantInfo | None, now: datetime) -> dict[str, Any]:
    """Purge one region (``None``: the platform's own records) and audit the counts; one transaction."""
    db = services.db
    async with db.scoped(Scope.everything()):
        platform_id = await _platform_id(db)
        setting = await periods(db, None if region is None else region.id)
        cutoffs = cutoffs_for(setting, now)
        counts = {kind: 0 for kind in KINDS}
        counts["audit"] = await _purge_audit(db, None if region is None else region.id, cutoffs["audit"])
        counts["logins"] = await _purge_logins(db, region, platform_id, cutoffs["logins"])
        if region is not None:
            counts["notices"] += await purge_notifications(db, region.id, cutoffs["notices"])
            for _plugin, call in services.plugins.callers("madrasa_retention_purge"):
                for answer in call(db=db, region_id=region.id, cutoffs=cutoffs):
                    for kind, removed in ((await resolve(answer)) or {}).items():
                        counts[kind] = counts.get(kind, 0) + int(removed)
        await audit.record(
            db,
            actor_id=None,
            action="retention.purge",
            object_type="tenant",
            object_id=region.id if region else platform_id,
            tenant=region,
            after={
                "counts": counts,
                "days": {k: v["days"] for k, v in setting.items()},
                "cutoffs": {k: v.isoformat() for k, v in cutoffs.items()},
            },
        )
    return {"tenant": region.slug if region else "platform", "counts": counts}


async def purge(services: Any, now: datetime | None = None) -> list[dict[str, Any]]:
    """Purge the platform's records, then every region's; returns what each removed."""
    now = now or datetime.now(UTC)
    async with services.db.scoped(Scope.everything(), write=False):
        ids = [r["id"] for r in await services.db.fetch("SELECT id FROM tenant WHERE kind = 'region' ORDER BY id")]
    results = [await purge_node(services, None, now)]
    for region_id in ids:
        region = await services.tenants.by_id(region_id)
        if region is not None:
            results.append(await purge_node(services, region, now))
    return results


@register_job(JOB)
@every(24 * 3600)
async def purge_job(job: JobContext) -> dict[str, Any]:
    """The daily purge as a background job (platform scope)."""
    return {"purged": await purge(job.services)}


# --------------------------------------------------------------------------- the ``madrasa purge`` command


async def _run(settings: Any) -> list[dict[str, Any]]:
    from core.app import build_services

    services = build_services(settings)
    await services.db.start()
    try:
        return await purge(services)
    finally:
        await services.db.stop()


def cmd_purge(args: argparse.Namespace, settings: Any) -> int:
    """Delete what is past its retention period, region by region; print the counts."""
    for line in asyncio.run(_run(settings)):
        counts = ", ".join(f"{kind} {n}" for kind, n in line["counts"].items())
        print(f"{line['tenant']}: {counts}", file=sys.stdout)
    return 0


def add_purge_command(subparsers: Any) -> None:
    """Register ``madrasa purge`` (``core/cli.py`` calls this)."""
    parser = subparsers.add_parser("purge", help="delete records past their retention period (run it daily)")
    parser.set_defaults(func=cmd_purge)
