"""CSV import of a school's pupils and guardians, all or nothing, with a per-row report."""

from __future__ import annotations

from typing import Any

IMPORT_ROUTES: list[Any] = []
