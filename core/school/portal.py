"""Portal pages of the school structure: role home pages, timetables, the child switcher."""

from __future__ import annotations

from typing import Any

SCHOOL_PORTAL_ROUTES: list[Any] = []
