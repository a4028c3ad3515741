"""Isolation samples for personal-data routes: a region's retention periods (the "My data" routes need no
tenant role: they only ever read and export the caller's own data, checked in tests/test_personal_data.py)."""

from __future__ import annotations

from typing import Any

BODIES: dict[tuple[str, str], Any] = {
    ("PUT", "/api/v1/privacy/retention"): {"messages": 400},
    ("POST", "/privacy/retention"): {"messages": "400"},
}
