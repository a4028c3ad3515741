"""Personal iCalendar feeds (RFC 5545) at a secret, rotatable URL."""

from __future__ import annotations

from typing import Any

ICAL_ROUTES: list[Any] = []
