"""Placeholder: the onboarding feature's tables."""

from __future__ import annotations

from typing import Any

ONBOARDING_TABLES: list[Any] = []
