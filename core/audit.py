"""The append-only audit log: who changed what, where and when, with before and after."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from core.db import Database, scope_sql
from core.observability import request_id_var
from core.scope import Scope
from core.sql import SQL, join
from core.tenancy import TenantInfo


class AuditEntry(msgspec.Struct, frozen=True):
    """One audit record as the API shows it."""

    id: int
    at: datetime
    actor_id: int | None
    action: str
    object_type: str
    object_id: str
    tenant_id: int | None
    before: Any
    after: Any
    reason: str
    request_id: str


def _json(value: Any) -> str | None:
    return None if value is None else msgspec.json.encode(value).decode()


async def record(
    db: Database,
    *,
    actor_id: int | None,
    action: str,
    object_type: str,
    object_id: str | int,
    tenant: TenantInfo | None,
    before: Any = None,
    after: Any = None,
    reason: str = "",
) -> None:
    """Append an entry inside the caller's transaction (it commits or rolls back with the change)."""
    cols = tenant.scope_columns() if tenant else {"region_id": None, "province_id": None, "school_id": None}
    await db.execute(
        "INSERT INTO audit_log (at, actor_id, action, object_type, object_id, tenant_id, region_id, province_id, "
        "school_id, before, after, reason, request_id) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
        datetime.now(UTC),
        actor_id,
        action,
        object_type,
        str(object_id),
        tenant.id if tenant else None,
        cols["region_id"],
        cols["province_id"],
        cols["school_id"],
        _json(before),
        _json(after),
        reason,
        request_id_var.get(),
    )


async def read(
    db: Database,
    scope: Scope,
    *,
    object_type: str | None = None,
    object_id: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[AuditEntry]:
    """Entries visible in ``scope``, newest first, keyset-paginated by ``before_id``."""
    clauses = [scope_sql(scope)]
    if object_type:
        clauses.append(SQL("object_type = {}", object_type))
    if object_id:
        clauses.append(SQL("object_id = {}", object_id))
    if before_id:
        clauses.append(SQL("id < {}", before_id))
    rows = await db.fetch(
        "SELECT id, at, actor_id, action, object_type, object_id, tenant_id, before, after, reason, request_id "
        "FROM audit_log WHERE {} ORDER BY id DESC LIMIT {}",
        join(" AND ", clauses),
        limit,
    )
    out = []
    for r in rows:
        r = dict(r)
        for key in ("before", "after"):
            if isinstance(r[key], str | bytes):
                r[key] = msgspec.json.decode(r[key])
        out.append(msgspec.convert(r, AuditEntry))
    return out
