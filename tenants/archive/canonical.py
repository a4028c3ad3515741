"""Canonical rows and table digests: the same data gives the same bytes on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from tenants.archive.schema import TableSpec


def canonical_value(kind: str, value: Any) -> Any:
    """A database value in its canonical JSON form (see the module docstring)."""
    if value is None:
        return None
    if kind == "int":
        return int(value)
    if kind == "bool":
        if isinstance(value, str):
            return value.strip().lower() in ("1", "t", "true")
        return bool(value)
    if kind in ("ts", "tsnaive"):
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        if kind == "tsnaive":
            return moment.replace(tzinfo=None).isoformat(timespec="microseconds")
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat(timespec="microseconds")
    if kind == "date":
        if isinstance(value, datetime):
            return value.date().isoformat()
        return value.isoformat() if isinstance(value, date) else date.fromisoformat(str(value)[:10]).isoformat()
    if kind == "time":
        moment = value if isinstance(value, time) else time.fromisoformat(str(value))
        return moment.isoformat(timespec="microseconds")
    if kind.startswith("dec"):
        number = Decimal(str(value))
        if ":" in kind:
            return format(number.quantize(Decimal(1).scaleb(-int(kind.split(":")[1]))), "f")
        return format(number.normalize(), "f")
    if kind == "float":
        return float(value)
    if kind == "json":
        return json.loads(value) if isinstance(value, str | bytes) else value
    return str(value)


def canonical_line(row: dict[str, Any]) -> bytes:
    """The canonical serialisation of a row of canonical values."""
    return json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def canonical_row(spec: TableSpec, row: dict[str, Any]) -> dict[str, Any]:
    """A database row as canonical values."""
    return {col: canonical_value(kind, row[col]) for col, kind in zip(spec.columns, spec.kinds, strict=True)}


def db_value(kind: str, value: Any) -> Any:
    """A canonical value turned back into what the database driver takes; ``ValueError`` if it does not fit."""
    if value is None:
        return None
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, got {value!r}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value
    if kind == "json":
        return json.dumps(value, ensure_ascii=False)
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"expected a number, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    if kind in ("ts", "tsnaive"):
        moment = datetime.fromisoformat(value)
        if kind == "ts" and moment.tzinfo is None:
            raise ValueError(f"timestamp without a time zone: {value!r}")
        return moment
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "time":
        return time.fromisoformat(value)
    if kind.startswith("dec"):
        try:
            return Decimal(value)
        except InvalidOperation:
            raise ValueError(f"expected a decimal number, got {value!r}") from None
    return value


class TableDigest:
    """The order-independent digest of a table's canonical rows."""

    def __init__(self) -> None:
        self.count = 0
        self._sum = 0

    def add(self, line: bytes) -> None:
        """Count one canonical row."""
        self.count += 1
        self._sum = (self._sum + int.from_bytes(hashlib.sha256(line).digest(), "big")) % (1 << 256)

    def hexdigest(self) -> str:
        """``SHA-256("<count>:<sum hex>")``."""
        return hashlib.sha256(f"{self.count}:{self._sum:064x}".encode()).hexdigest()
