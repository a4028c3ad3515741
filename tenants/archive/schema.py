"""The archive's view of the schema: which tables travel, with which columns, and the archive errors.

Tables are the ones the deployment declares (core, school structure, jobs and every plugin's
``madrasa_tables``); their columns are read from the database catalogue, so what an archive holds is
what the database holds.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from piccolo.columns import column_types as ct
from piccolo.table import Table

from core.db import Database
from core.sql import SQL, in_

if TYPE_CHECKING:
    from core.services import Services

log = logging.getLogger("madrasa.tenants.archive")

FORMAT = "madrasa-tenant-archive"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CHUNK = 1000
#: Problems listed per kind before the rest are summarised.
MAX_LISTED = 20
EXCLUDED_TABLES = frozenset({"auth_session", "login_attempt", "password_reset", "calendar_feed", "job"})
#: Columns that hold a person's id, in any table.
PERSON_COLUMNS = frozenset(
    {
        "person_id",
        "teacher_id",
        "homeroom_teacher_id",
        "owner_id",
        "actor_id",
        "created_by",
        "updated_by",
        "validated_by",
        "closed_by",
    }
)
#: Columns that hold a programme's id, in any table.
PROGRAMME_COLUMNS = frozenset({"programme_id"})
#: Programme-level rows (``tenant_id`` null) of a programme the target already has are merged: a row is
#: skipped when the target has one with the same values in these columns (and the same programme).
PROGRAMME_ROW_KEYS = {"module_setting": ("module",), "membership": ("person_id", "role")}
#: The table whose rows decide who is a member of the exported subtree (and so may keep a password hash).
MEMBERSHIP = "membership"
SCOPE_COLUMNS = ("region_id", "province_id", "school_id")
#: Import limits, checked against the zip's directory before a member is read.
MAX_MANIFEST_BYTES = 64 << 20
#: One stored file (read whole into memory).
MAX_FILE_BYTES = 512 << 20
#: Every member together, uncompressed.
MAX_ARCHIVE_BYTES = 64 << 30
#: One row of a table member.
MAX_LINE_BYTES = 4 << 20
#: Uncompressed/compressed size above which a member larger than :data:`RATIO_FLOOR` is taken for a zip bomb.
MAX_RATIO = 200
RATIO_FLOOR = 1 << 20

ProgressFn = Callable[[int, int, str], Awaitable[None]]


# --------------------------------------------------------------------------- errors


class ArchiveError(Exception):
    """An archive operation that cannot proceed; ``status`` is the HTTP status it maps to."""

    status = 400

    def __init__(self, message: str, problems: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems = list(problems)


class ArchiveRejected(ArchiveError):
    """The archive is malformed, tampered with or does not fit this deployment's schema."""

    status = 422


class ArchiveClash(ArchiveError):
    """Ids, unique values or file keys of the archive already exist in the target."""

    status = 409


class TenantNotFound(ArchiveError):
    """No tenant with that slug."""

    status = 404


# --------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class TableSpec:
    """How one table of the schema is exported and imported."""

    name: str
    columns: tuple[str, ...]
    kinds: tuple[str, ...]
    pk: str
    #: ``tenant``, ``scoped`` (scope columns), ``linked`` (``tenant_id``), ``programme`` or ``person``.
    mode: str
    unique: tuple[str, ...]
    serial: bool
    person_columns: tuple[str, ...]
    key_columns: tuple[str, ...]
    programme_columns: tuple[str, ...] = ()


def _kind(column: Any) -> str:
    if isinstance(column, ct.Timestamptz):
        return "ts"
    if isinstance(column, ct.Timestamp):
        return "tsnaive"
    if isinstance(column, ct.Date):
        return "date"
    if isinstance(column, ct.Time):
        return "time"
    if isinstance(column, ct.Numeric):
        digits = getattr(column, "digits", None)
        return f"dec:{digits[1]}" if digits else "dec"
    if isinstance(column, ct.Real):
        return "float"
    if isinstance(column, ct.JSON):
        return "json"
    if isinstance(column, ct.Boolean):
        return "bool"
    if isinstance(column, ct.Integer | ct.Serial):
        return "int"
    return "str"


def schema_tables(services: Services) -> list[type[Table]]:
    """Every Piccolo table of this deployment: core, school structure, jobs and each plugin's."""
    from core.jobs import JOB_TABLES
    from core.school.tables import SCHOOL_TABLES
    from core.tables import CORE_TABLES

    tables: dict[str, type[Table]] = {}
    plugin_tables = [t for _, ts in services.plugins.each("madrasa_tables") for t in ts]
    for table in [*CORE_TABLES, *SCHOOL_TABLES, *JOB_TABLES, *plugin_tables]:
        tables.setdefault(table._meta.tablename, table)
    return list(tables.values())


#: Column types as the catalogue names them (``information_schema.columns.data_type`` on PostgreSQL,
#: the declared type of ``PRAGMA table_info`` on SQLite, upper-cased, without its arguments) → kind.
_CATALOGUE_KINDS = {
    "TIMESTAMP WITH TIME ZONE": "ts",
    "TIMESTAMPTZ": "ts",
    "TIMESTAMP WITHOUT TIME ZONE": "tsnaive",
    "TIMESTAMP": "tsnaive",
    "DATE": "date",
    "TIME WITHOUT TIME ZONE": "time",
    "TIME": "time",
    "NUMERIC": "dec",
    "DECIMAL": "dec",
    "REAL": "float",
    "DOUBLE PRECISION": "float",
    "FLOAT": "float",
    "JSON": "json",
    "JSONB": "json",
    "BOOLEAN": "bool",
    "INTEGER": "int",
    "BIGINT": "int",
    "SMALLINT": "int",
    "SERIAL": "int",
    "BIGSERIAL": "int",
}


def catalogue_kind(declared: str, scale: int | None = None) -> str:
    """The kind of a column from its type in the database catalogue. Pure function."""
    name, _, args = declared.strip().upper().partition("(")
    kind = _CATALOGUE_KINDS.get(name.strip(), "str")
    if kind == "dec":
        if scale is None and args:
            parts = args.rstrip(")").split(",")
            scale = int(parts[1]) if len(parts) == 2 and parts[1].strip().isdigit() else None
        return f"dec:{scale}" if scale is not None else "dec"
    return kind


async def catalogue_columns(db: Database, tables: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
    """Each table's columns as the database has them, in their order: ``(name, kind)``.

    PostgreSQL: ``information_schema.columns`` by ``ordinal_position``; SQLite: ``PRAGMA table_info``
    (the ``pragma_table_info`` table function) by ``cid``. A table the database lacks has no columns.
    """
    names = sorted(set(tables))
    found: dict[str, list[tuple[str, str]]] = {name: [] for name in names}
    if db.dialect == "postgres":
        rows = await db.fetch(
            SQL(
                "SELECT table_name, column_name, data_type, numeric_scale FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name IN {} ORDER BY table_name, ordinal_position",
                in_(names),
            )
        )
        for r in rows:
            scale = r["numeric_scale"]
            kind = catalogue_kind(r["data_type"], int(scale) if scale is not None else None)
            found[r["table_name"]].append((r["column_name"], kind))
        return found
    for name in names:
        rows = await db.fetch("SELECT name, type FROM pragma_table_info({}) ORDER BY cid", name)
        found[name] = [(r["name"], catalogue_kind(r["type"] or "")) for r in rows]
    return found


async def table_specs(services: Services) -> dict[str, TableSpec]:
    """The exported tables of this deployment's schema, by name.

    Which tables: those the deployment declares (core, school structure, jobs, every plugin's).
    Which columns: those the database has (:func:`catalogue_columns`), so a column a migration added
    without a field on its table class (``attendance_notice.claimed_at``) travels too. A column's kind
    is its table class's when the class has the field (the same on both backends), else the catalogue's.
    """
    tables = {t._meta.tablename: t for t in schema_tables(services) if t._meta.tablename not in EXCLUDED_TABLES}
    catalogue = await catalogue_columns(services.db, tables)
    specs: dict[str, TableSpec] = {}
    for name, table in tables.items():
        declared = {c._meta.db_column_name: c for c in table._meta.columns}
        present = catalogue[name]
        if not present:
            continue
        names = tuple(n for n, _ in present)
        kinds = tuple(_kind(declared[n]) if n in declared else kind for n, kind in present)
        if name == "tenant":
            mode = "tenant"
        elif name == "person":
            mode = "person"
        elif name == "programme":
            mode = "programme"
        elif all(c in names for c in SCOPE_COLUMNS):
            mode = "scoped"
        elif "tenant_id" in names:
            mode = "linked"
        else:
            continue
        pk_col = table._meta.primary_key
        specs[name] = TableSpec(
            name=name,
            columns=names,
            kinds=kinds,
            pk=pk_col._meta.db_column_name,
            mode=mode,
            unique=tuple(n for n, c in declared.items() if c._meta.unique and not c._meta.primary_key and n in names),
            serial=isinstance(pk_col, ct.Serial),
            person_columns=tuple(n for n in names if n in PERSON_COLUMNS),
            key_columns=tuple(n for n in names if n == "key" or n.endswith("_key")),
            programme_columns=tuple(n for n in names if n in PROGRAMME_COLUMNS) if mode != "programme" else (),
        )
    return specs


def order_specs(specs: dict[str, TableSpec]) -> list[TableSpec]:
    """Export order: the tree first, people and programmes last (they are collected on the way)."""
    rank = {"tenant": 0, "scoped": 1, "linked": 1, "programme": 2, "person": 3}
    return sorted(specs.values(), key=lambda s: (rank[s.mode], s.name))
