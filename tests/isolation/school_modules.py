"""Isolation samples for the director's modules page.

Switching a module acts on the caller's own school (tested in ``tests/test_school_modules_page.py``); under a
foreign prefix it must answer 403 or 404 like every route. The sample switches homework off, its default.
"""

from __future__ import annotations

from typing import Any

BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/school/modules"): {"module": "homework", "state": "off", "reason": "isolation test"},
}
CREATES_AT_HOME = {("POST", "/school/modules")}
