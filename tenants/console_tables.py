"""Placeholder: the console feature's tables."""

from __future__ import annotations

from typing import Any

CONSOLE_TABLES: list[Any] = []
