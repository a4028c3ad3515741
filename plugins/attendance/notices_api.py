"""The school's view of its family notices that did not go out: ``GET /api/v1/attendance/undelivered``."""

from __future__ import annotations

from typing import Any, Literal

from litestar import Controller, get
from litestar.params import FromQuery

from core.plugin_api import Ctx, scope_sql
from plugins.attendance import retries
from plugins.attendance.errors import API_HANDLERS


class UndeliveredController(Controller):
    """Directors and administrators: notices still retrying or given up, with the reason."""

    path = "/api/v1/attendance"
    tags = ["attendance"]
    exception_handlers = API_HANDLERS

    @get("/undelivered", opt={"permission": "attendance.stats"})
    async def undelivered(
        self, ctx: Ctx, status: FromQuery[Literal["retrying", "failed"] | None] = None
    ) -> list[dict[str, Any]]:
        """The notices of the schools in reach whose e-mail or SMS has not gone out yet (``retrying``: tries,
        next try) or was given up (``failed``: the last error), newest day first."""
        db = ctx.services.db
        async with db.scoped(ctx.scope, write=False):
            rows = await retries.undelivered(
                db, scope_sql(ctx.scope, "n"), (status,) if status else retries.UNDELIVERED
            )
        return [
            {
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
