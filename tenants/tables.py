"""Tables of the tenants plugin, gathered from each feature's table module."""

from __future__ import annotations

from typing import Any

TENANTS_TABLES: list[Any] = []
