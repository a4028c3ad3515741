"""Tables of the tenants plugin, gathered from each feature's table module."""

from __future__ import annotations

from typing import Any

from tenants.console_tables import CONSOLE_TABLES
from tenants.exchange_tables import EXCHANGE_TABLES
from tenants.onboarding_tables import ONBOARDING_TABLES

TENANTS_TABLES: list[Any] = [*ONBOARDING_TABLES, *EXCHANGE_TABLES, *CONSOLE_TABLES]
