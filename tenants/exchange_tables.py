"""Placeholder: the exchange feature's tables."""

from __future__ import annotations

from typing import Any

EXCHANGE_TABLES: list[Any] = []
