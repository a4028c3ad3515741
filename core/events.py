"""Domain events, delivered to plugins after the transaction that produced them commits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """Something that happened: ``name`` (``grades.marks_published``…), where, by whom, and data."""

    name: str
    tenant_id: int | None
    school_id: int | None = None
    actor_id: int | None = None
    data: dict[str, Any] = {}
    at: datetime = msgspec.field(default_factory=lambda: datetime.now(UTC))
