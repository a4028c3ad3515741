"""The console feature's tables: none of its own.

The console works on core's ``tenant``, ``tenant_domain``, ``programme`` and ``programme_school``
tables; its migration (``m0003_console``) adds the unique index on school codes.
"""

from __future__ import annotations

from typing import Any

CONSOLE_TABLES: list[Any] = []
