"""Bulk exports of personal data: audited and limited per account, in one place.

A route that lets personal data leave in bulk (a class list, statistics, a spreadsheet of marks, an archive,
a OneRoster bundle) declares ``opt={"bulk_export": "<kind>"}``. The access middleware calls :func:`gate`
for it after every other check: the account's exports of the last hour are counted from the audit log
(so every process and worker agrees), a request over ``MADRASA_BULK_EXPORTS_PER_HOUR`` gets 429 with
``Retry-After``, and an export that answered 2xx is audited (``bulk_export``: who, which kind, which
tenant, the path and, when the handler sets ``ctx.extra["export_rows"]``, how many rows). A bulk export through a
support tool is how the largest school-data breach of 2024 happened: this bounds and records them.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from core import audit
from core.context import RequestContext
from core.i18n import gettext_
from core.scope import Scope as DataScope

ACTION = "bulk_export"
WINDOW = timedelta(hours=1)
LIMIT_MESSAGE = (
    "You have made {count} bulk exports of personal data in the last hour, the most allowed. Try again in {minutes} "
    "minutes."
)


class TooManyExports(HTTPException):
    """429: the account's bulk exports of the last hour reached the limit."""

    status_code = 429


async def recent(ctx: RequestContext, now: datetime) -> tuple[int, datetime | None]:
    """The account's bulk exports in the last hour, and when the oldest of them was made."""
    db = ctx.services.db
    async with db.scoped(DataScope.everything(), write=False, replica=False):  # an exact count: the primary
        row = await db.fetchrow(
            "SELECT COUNT(*) AS n, MIN(at) AS oldest FROM audit_log WHERE action = {} AND actor_id = {} AND at > {}",
            ACTION,
            ctx.person_id,
            now - WINDOW,
        )
    oldest = row["oldest"] if row else None
    if isinstance(oldest, str):
        oldest = datetime.fromisoformat(oldest)
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return (int(row["n"]) if row else 0), oldest


def retry_after(oldest: datetime | None, now: datetime) -> int:
    """Seconds until the oldest counted export leaves the window (at least 1; a pure function)."""
    if oldest is None:
        return 1
    return max(1, math.ceil((oldest + WINDOW - now).total_seconds()))


async def gate(ctx: RequestContext, kind: str, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
    """Refuse an export over the limit (429), else run it and audit it when it succeeded."""
    if ctx.person_id is None:  # export routes need a login; nothing to count without one
        await next_app(scope, receive, send)
        return
    limit = int(getattr(ctx.services.settings, "bulk_exports_per_hour", 20))
    now = datetime.now(UTC)
    count, oldest = await recent(ctx, now)
    if count >= limit:
        wait = retry_after(oldest, now)
        raise TooManyExports(
            detail=gettext_(LIMIT_MESSAGE, count=count, minutes=max(1, math.ceil(wait / 60))),
            headers={"retry-after": str(wait)},
            extra={"code": "bulk_export_limit"},
        )

    async def watch(message: Message) -> None:
        # Audited before the answer starts: a client cannot read an export, ask again at once and find the
        # first one not counted yet (on this process or another).
        if message["type"] == "http.response.start" and 200 <= int(message["status"]) < 300:
            await record(ctx, kind, scope)
        await send(message)

    await next_app(scope, receive, watch)


async def record(ctx: RequestContext, kind: str, scope: Scope) -> None:
    """The audit entry of one export (its tenant's scope columns, so the tenant's managers see it too)."""
    db = ctx.services.db
    after: dict[str, Any] = {"kind": kind, "path": scope.get("path", ""), "query": scope.get("query_string", b"")}
    after["query"] = after["query"].decode("latin-1") if isinstance(after["query"], bytes) else str(after["query"])
    rows = ctx.extra.get("export_rows")
    if rows is not None:
        after["rows"] = int(rows)
    async with db.scoped(DataScope.everything()):
        await audit.record(
            db,
            actor_id=ctx.person_id,
            action=ACTION,
            object_type="export",
            object_id=kind,
            tenant=ctx.tenant,
            after=after,
        )
