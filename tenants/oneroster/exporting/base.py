"""What every part of an export shares: the caller's context, stable sourcedIds, cell text and scoped reads."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any

from core.context import RequestContext
from core.db import scope_sql
from core.sql import SQL, ident, in_, join
from core.tenancy import TenantInfo

#: How many ids one ``IN (…)`` names at most.
CHUNK = 5000


def key(*parts: object) -> str:
    """A stable identifier made from natural keys: the same object gets the same sourcedId in every deployment."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).hexdigest()[:20]


def text(value: Any) -> str:
    """A cell's text: dates in ISO form (a timestamp as its date), nothing for ``None``."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


class ExporterBase:
    """Reads one tenant's rosters inside the caller's scoped transaction; each part adds what it read to ``self``."""

    def __init__(self, ctx: RequestContext, tenant: TenantInfo) -> None:
        self.ctx = ctx
        self.db = ctx.services.db
        self.tenant = tenant
        #: What the export says it left out (written as the manifest's ``source.note``).
        self.notes: list[str] = []

    async def read_in(self, query: Callable[[SQL], SQL], ids: Iterable[Any]) -> list[dict[str, Any]]:
        """``query(IN list)`` for some ids, in chunks of :data:`CHUNK`."""
        values = sorted(set(ids))
        out: list[dict[str, Any]] = []
        for start in range(0, len(values), CHUNK):
            out.extend(await self.db.fetch(query(in_(values[start : start + CHUNK]))))
        return out

    async def read_schools(self, table: str, columns: Iterable[str], schools: list[int]) -> list[dict[str, Any]]:
        """Some columns of a table's rows in some schools, inside the caller's scope, by id."""
        return await self.db.fetch(
            SQL(
                "SELECT {} FROM {} WHERE school_id IN {} AND {} ORDER BY id",
                join(", ", [ident(c) for c in columns]),
                ident(table),
                in_(schools),
                scope_sql(self.ctx.scope),
            )
        )
