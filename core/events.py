"""Domain events, delivered to plugins after the transaction that produced them commits."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec

from core.plugins import resolve

log = logging.getLogger("madrasa.events")


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """Something that happened: ``name`` (``grades.marks_published``…), where, by whom, and data."""

    name: str
    tenant_id: int | None
    school_id: int | None = None
    actor_id: int | None = None
    data: dict[str, Any] = {}
    at: datetime = msgspec.field(default_factory=lambda: datetime.now(UTC))


class EventBus:
    """Collects events during a unit of work and dispatches them once it has committed."""

    def __init__(self, dispatch: Callable[[Event], Any]) -> None:
        self._dispatch = dispatch

    async def publish(self, events: list[Event]) -> None:
        """Deliver committed events; a failing handler is logged and does not stop the others."""
        for event in events:
            try:
                await resolve(self._dispatch(event))
            except Exception:
                log.exception("event handler failed", extra={"event": event.name})
