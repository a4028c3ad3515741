"""Placeholder: routes arrive with their feature."""

from __future__ import annotations

from typing import Any

ROUTES: list[Any] = []
