"""Reading and marking a person's notifications, and a tenant's delivery statistics.

A person's inbox is every notification addressed to them in the tenants where they hold a role (a parent with
children in two schools reads both); nobody reads another person's: every query names the reader.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.errors import NotFound
from core.sql import SQL

if TYPE_CHECKING:
    from core.context import RequestContext
    from core.scope import Scope

PERMISSION = "notifications.read"
PAGE_SIZE = 20


async def reader_scope(ctx: RequestContext) -> Scope:
    """Where the reader's notifications may come from: every tenant they hold a role in."""
    return await ctx.scope_everywhere(PERMISSION)


async def unread_count(ctx: RequestContext) -> int:
    """How many of the reader's notifications are unread."""
    assert ctx.person_id is not None
    db = ctx.services.db
    async with db.scoped(await reader_scope(ctx), write=False):
        return int(
            await db.fetchval(
                "SELECT COUNT(*) FROM notification WHERE person_id = {} AND read_at IS NULL", ctx.person_id
            )
            or 0
        )


async def page_of(ctx: RequestContext, number: int, size: int = PAGE_SIZE, unread_only: bool = False) -> dict[str, Any]:
    """One page of the reader's notifications, newest first: ``items``, ``total``, ``unread``."""
    assert ctx.person_id is not None
    db = ctx.services.db
    where = SQL("person_id = {}", ctx.person_id)
    if unread_only:
        where = where & SQL("read_at IS NULL")
    async with db.scoped(await reader_scope(ctx), write=False):
        total = int(await db.fetchval(SQL("SELECT COUNT(*) FROM notification WHERE {}", where)) or 0)
        pages = max(1, -(-total // size))
        number = min(max(1, number), pages)
        items = await db.fetch(
            SQL(
                "SELECT id, kind, text, link, tenant_id, created_at, read_at FROM notification WHERE {} "
                "ORDER BY created_at DESC, id DESC LIMIT {} OFFSET {}",
                where,
                size,
                (number - 1) * size,
            )
        )
        unread = int(
            await db.fetchval(
                "SELECT COUNT(*) FROM notification WHERE person_id = {} AND read_at IS NULL", ctx.person_id
            )
            or 0
        )
    return {"items": items, "total": total, "unread": unread, "number": number, "pages": pages, "size": size}


async def mark_read(ctx: RequestContext, notification_id: int) -> dict[str, Any]:
    """Mark one of the reader's notifications read (again: no change); 404 for anyone else's."""
    assert ctx.person_id is not None
    db = ctx.services.db
    async with db.scoped(await reader_scope(ctx)):
        await db.execute(
            "UPDATE notification SET read_at = {} WHERE id = {} AND person_id = {} AND read_at IS NULL",
            ctx.services.clock.utcnow(),
            notification_id,
            ctx.person_id,
        )
        row = await db.fetchrow(
            "SELECT id, kind, text, link, tenant_id, created_at, read_at FROM notification "
            "WHERE id = {} AND person_id = {}",
            notification_id,
            ctx.person_id,
        )
    if row is None:
        raise NotFound("No such notification.")
    return row


async def mark_all_read(ctx: RequestContext) -> int:
    """Mark every unread notification of the reader read; returns how many."""
    assert ctx.person_id is not None
    db = ctx.services.db
    async with db.scoped(await reader_scope(ctx)):
        rows = await db.fetch(
            "UPDATE notification SET read_at = {} WHERE person_id = {} AND read_at IS NULL RETURNING id",
            ctx.services.clock.utcnow(),
            ctx.person_id,
        )
    return len(rows)


async def statistics(ctx: RequestContext) -> dict[str, Any]:
    """Delivery statistics of the tenants in the request's scope: notifications and reads per kind, messages per
    channel and status."""
    from core.db import scope_sql

    db = ctx.services.db
    async with db.scoped(ctx.scope, write=False):
        kinds = await db.fetch(
            SQL(
                "SELECT kind, COUNT(*) AS total, COUNT(read_at) AS read FROM notification WHERE {} "
                "GROUP BY kind ORDER BY kind",
                scope_sql(ctx.scope),
            )
        )
        channels = await db.fetch(
            SQL(
                "SELECT channel, status, COUNT(*) AS total FROM notification_delivery WHERE {} "
                "GROUP BY channel, status ORDER BY channel, status",
                scope_sql(ctx.scope),
            )
        )
    return {"kinds": kinds, "channels": channels}


async def deliveries_of(db: Any, keys: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The e-mails and SMS of the notifications sent with some keys (``notify(…, key=…)``), per key: recipient,
    channel, status, tries, next try and last error (inside the caller's open transaction, within its scope)."""
    from core.sql import in_

    found: dict[str, list[dict[str, Any]]] = {key: [] for key in keys}
    if not keys:
        return found
    for row in await db.fetch(
        SQL(
            "SELECT n.batch_id, d.person_id, d.channel, d.status, d.attempts, d.next_attempt_at, d.last_error, "
            "d.sent_at FROM notification_delivery d JOIN notification n ON n.id = d.notification_id "
            "WHERE n.batch_id IN {} ORDER BY d.id",
            in_(keys),
        )
    ):
        found[row.pop("batch_id")].append(row)
    return found
