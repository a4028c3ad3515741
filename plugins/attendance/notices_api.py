"""The school's view of its family notices and alerts that did not go out: ``GET /api/v1/attendance/undelivered``."""

from __future__ import annotations

from typing import Any, Literal

from litestar import Controller, get
from litestar.params import FromQuery

from core.plugin_api import SQL, Ctx, Database, Scope, scope_sql
from plugins.attendance import retries
from plugins.attendance.errors import API_HANDLERS


async def undelivered_items(
    db: Database, scope: Scope, school_id: int | None = None, statuses: tuple[str, ...] = retries.UNDELIVERED
) -> list[dict[str, Any]]:
    """Notices (``kind: notice``) and alerts (``kind: alert``) in ``scope`` (and of one school) whose messages are
    still retrying or were given up, newest day first (inside an open transaction)."""
    notices_where, alerts_where = scope_sql(scope, "n"), scope_sql(scope, "d")
    if school_id is not None:
        notices_where = notices_where & SQL("n.school_id = {}", school_id)
        alerts_where = alerts_where & SQL("d.school_id = {}", school_id)
    items = [{"kind": "notice"} | n for n in await retries.undelivered(db, notices_where, statuses)]
    alerts = await retries.undelivered_alerts(db, alerts_where, statuses)
    items += [{"kind": "alert"} | a | {"on_date": a["on_date"].date(), "channels": "app"} for a in alerts]
    return sorted(items, key=lambda i: (i["on_date"], i["id"]), reverse=True)


class UndeliveredController(Controller):
    """Directors and administrators: notices and alerts still retrying or given up, with the reason."""

    path = "/api/v1/attendance"
    tags = ["attendance"]
    exception_handlers = API_HANDLERS

    @get("/undelivered", opt={"permission": "attendance.stats"})
    async def undelivered(
        self, ctx: Ctx, status: FromQuery[Literal["retrying", "failed"] | None] = None
    ) -> list[dict[str, Any]]:
        """The family notices and alerts of the schools in reach whose e-mail or SMS has not gone out yet
        (``retrying``: tries so far, next try) or was given up (``failed``: the last error), newest day first."""
        db = ctx.services.db
        async with db.scoped(ctx.scope, write=False):
            rows = await undelivered_items(db, ctx.scope, statuses=(status,) if status else retries.UNDELIVERED)
        return [
            {
                "kind": r["kind"],
                "id": r["id"],
                "student_id": r["student_id"],
                "school_id": r["school_id"],
                "on_date": r["on_date"].isoformat(),
                "status": r["status"],
                "attempts": r["attempts"],
                "next_attempt_at": r["next_attempt_at"].isoformat() if r["next_attempt_at"] else None,
                "reason": r["last_error"],
                "channels": [c for c in r["channels"].split(",") if c],
            }
            for r in rows
        ]
