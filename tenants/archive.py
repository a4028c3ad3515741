"""Tenant archives: export a region, province or school with its stored files, import it elsewhere, compare.

**Archive.** A zip file holding

* ``manifest.json``: format name and version (:data:`FORMAT`, :data:`FORMAT_VERSION`), the source
  deployment (base domain, database dialect), the exported node (id, slug, kind, path), its
  ancestors (rows of ``tenant``, kept as references), one entry per table (member name, columns,
  row count, SHA-256 of the member's bytes and the table digest defined below), the stored files
  (key, owning node, member name, size, SHA-256, content type), the keys of objects the
  database names but storage does not hold (``missing_files``) and whether password hashes were
  kept (``password_hashes``);
* ``tables/<table>.jsonl``: one canonical JSON object per row;
* ``files/<storage key>``: the bytes of each stored object.

**Canonical rows and table digests.** A row is a JSON object with sorted keys, compact separators
and UTF-8 text; values are normalised by column type so the same data gives the same bytes on
SQLite and PostgreSQL: timestamps in UTC ISO 8601 with microseconds, dates and times in ISO
8601, numerics as decimal strings with the column's scale, JSON columns as JSON values. The
digest of a table is ``SHA-256("<row count>:<sum of the rows' SHA-256 mod 2^256, hex>")``: it
does not depend on row order, so it is computed while streaming and stays comparable after
person ids have been remapped.

**What is exported.** Tables come from the schema the deployment runs (core, school structure
and every plugin's ``madrasa_tables``), so a new plugin's tables are included without changes here:

* tables with the scope columns ``region_id``/``province_id``/``school_id``: rows inside the subtree
  (the same rule as the row-level-security policies);
* platform tables with a ``tenant_id`` column (domains, memberships, module settings, programme
  links, a region's calendar and coefficient or grading rules, …): rows naming a node of the subtree;
* ``tenant``: the nodes of the subtree; ``programme``: the programmes the subtree's schools belong to.
  A programme may span regions: as soon as one of its schools is exported, so are the programme
  and its programme-level rows (``tenant_id`` null, ``programme_id`` set: module switches and
  programme managers' memberships), since they decide what the exported schools see;
* ``person``: everyone with a membership in the subtree or named by an exported row through a
  person column (:data:`PERSON_COLUMNS`). A password hash is exported only for a person with a
  membership at a node of the subtree, and only when the export is made by a platform
  administrator or the command line (``password_hashes``), so a move keeps those people's logins.
  Everyone else (people merely named by a row, such as the platform administrator who created the
  region, programme managers, people of other regions) is exported as a reference for remapping:
  id, e-mail, names, locale, active flag and creation time, never a hash. A region administrator's
  archive holds no password hash at all; imported people without one set a password through
  the password-reset flow;
* not exported (:data:`EXCLUDED_TABLES`): sessions, login attempts, password-reset tokens, calendar
  feed secrets and background jobs, which are tied to the deployment that made them; reference data
  without a node (levels, subjects, national calendar), which every deployment seeds identically.

Stored files: every value of a column named ``key`` or ending in ``_key`` that is a storage key
under a node of the subtree (``stored_file.key``, ``tenant.logo_key``, ``grade_bulletin.storage_key``,
a plugin's own). Export reads rows in primary-key batches of :data:`CHUNK` and writes them as it
goes; memory holds one batch, one file and the sets of referenced person ids and file keys.

**Import** (platform administrators, or the command line). The archive is validated completely
before anything is written. First, from the zip's directory alone, before a member is read: every
member's uncompressed size must equal the manifest's, a stored file may not exceed
:data:`MAX_FILE_BYTES`, the whole archive :data:`MAX_ARCHIVE_BYTES`, the manifest
:data:`MAX_MANIFEST_BYTES`, and a member over :data:`RATIO_FLOOR` compressed more than
:data:`MAX_RATIO`:1 is refused as a zip bomb; rows are read with a length limit
(:data:`MAX_LINE_BYTES`). Then: zip integrity, manifest, format version, every member's size and
hash, row counts and table digests, canonical rows with values of the right types, every table
and column known to this deployment's schema, every row inside the archived subtree, file keys
under their node's prefix. Then the target is checked: ids are kept, so any id (or value of a
unique column, or file key) already present is a clash and the import is refused, naming them —
the supported case is moving a region or school into a new deployment (or one that never had it).
People are the exception. A person whose e-mail already exists in the target is merged: the
target's identity (name, password, other memberships) is kept and every person column of the
imported rows is remapped to it. A person the archive merely names (no membership row in the
archive, such as the source's platform administrator in an audit row's ``actor_id``) whose id is
taken in the target by someone else is remapped too: the archive's reference row (e-mail, names,
locale, active flag, creation time; never a password hash) is inserted under a new id allocated in
the target (past the imported ids, from the id sequence on PostgreSQL) and every person column of
the imported rows points at it, so a fresh deployment whose own administrator is id 1 takes any
region; such a person gets no membership and logs in only after a password reset. A person with a
membership row in the archive whose id is taken (and whose e-mail is not) is a clash, named.
Ancestors present in the target with the same id, slug and kind are reused; missing ones are
created; anything else is a clash. Programmes are merged by slug the same way: a programme the target
already has (any id) is kept, the imported rows' ``programme_id`` is remapped to it, and a
programme-level row the target's programme already has (the same module's switch, the same
person in the same role: :data:`PROGRAMME_ROW_KEYS`) is kept as the target has it, so importing
two regions that share a programme gives one programme with one set of switches.

Rows are written in one transaction (``INSERT`` in batches: PostgreSQL refuses ``COPY FROM`` on
tables with row-level security), files are uploaded to the target storage before the commit and
deleted again if anything fails. On PostgreSQL the id sequences are first advanced past the
imported ids (through the owner connection: the application role may not ``setval``); a failed
import leaves only a gap in the sequences. ``--dry-run`` stops after validation.

**Equality check.** After the commit the subtree is exported again from the target, digests only,
and compared table by table and file by file: ``equal`` (same digest as the source),
``equal-after-merge`` (differs from the source only by the remapped person and programme ids and
the merged or re-numbered identities, programmes and programme-level rows), or ``different``. Programme-level
rows are part of the comparison (``module_setting``, ``membership``, ``programme``), so a school
whose programme switched a module on is only ``equal`` if the switch arrived.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import msgspec
from piccolo.columns import column_types as ct
from piccolo.table import Table

from core import audit
from core.db import in_list, scope_filter
from core.scope import Scope
from core.storage import InvalidKey, ObjectNotFound, StorageError, check_key
from core.tenancy import TenantInfo, parse_path

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
_KEY_RE = re.compile(r"^t/(\d+)/")

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


def table_specs(services: Services) -> dict[str, TableSpec]:
    """The exported tables of this deployment's schema, by name."""
    specs: dict[str, TableSpec] = {}
    for table in schema_tables(services):
        name = table._meta.tablename
        if name in EXCLUDED_TABLES:
            continue
        cols = list(table._meta.columns)
        names = tuple(c._meta.db_column_name for c in cols)
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
            kinds=tuple(_kind(c) for c in cols),
            pk=pk_col._meta.db_column_name,
            mode=mode,
            unique=tuple(c._meta.db_column_name for c in cols if c._meta.unique and not c._meta.primary_key),
            serial=isinstance(pk_col, ct.Serial),
            person_columns=tuple(n for n in names if n in PERSON_COLUMNS),
            key_columns=tuple(n for n in names if n == "key" or n.endswith("_key")),
            programme_columns=tuple(n for n in names if n in PROGRAMME_COLUMNS) if mode != "programme" else (),
        )
    return specs


def _order(specs: dict[str, TableSpec]) -> list[TableSpec]:
    """Export order: the tree first, people and programmes last (they are collected on the way)."""
    rank = {"tenant": 0, "scoped": 1, "linked": 1, "programme": 2, "person": 3}
    return sorted(specs.values(), key=lambda s: (rank[s.mode], s.name))


# --------------------------------------------------------------------------- canonical form


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


# --------------------------------------------------------------------------- manifest


class ManifestTenant(msgspec.Struct):
    """The exported node."""

    id: int
    slug: str
    kind: str
    path: str


class ManifestTable(msgspec.Struct):
    """One table of the archive."""

    name: str
    member: str
    columns: list[str]
    rows: int
    sha256: str
    member_sha256: str
    member_bytes: int


class ManifestFile(msgspec.Struct):
    """One stored object of the archive."""

    key: str
    tenant_id: int
    member: str
    size: int
    sha256: str
    content_type: str


class Manifest(msgspec.Struct):
    """``manifest.json``."""

    format: str
    format_version: int
    created_at: str
    source: dict[str, str]
    tenant: ManifestTenant
    ancestors: list[dict[str, Any]]
    tables: list[ManifestTable]
    files: list[ManifestFile]
    missing_files: list[str] = msgspec.field(default_factory=list)
    #: Whether the members' password hashes were exported (a platform administrator's export).
    password_hashes: bool = False


# --------------------------------------------------------------------------- export


class _Sink:
    """Where an export goes: a zip file, or digests only (the equality check)."""

    def begin(self, spec: TableSpec) -> None:
        self.digest = TableDigest()
        self.member_hash = hashlib.sha256()
        self.member_bytes = 0

    def write(self, line: bytes) -> None:
        self.digest.add(line)
        data = line + b"\n"
        self.member_hash.update(data)
        self.member_bytes += len(data)

    def end(self) -> None:
        """Close the table's member."""

    def add_file(self, member: str, data: bytes) -> None:
        """Store an object's bytes."""

    def close(self, manifest: Manifest) -> None:
        """Finish the archive."""


class _ZipSink(_Sink):
    def __init__(self, target: Path | IO[bytes]) -> None:
        self.zip = zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6)
        self._member: IO[bytes] | None = None

    def begin(self, spec: TableSpec) -> None:
        super().begin(spec)
        self._member = self.zip.open(f"tables/{spec.name}.jsonl", "w", force_zip64=True)

    def write(self, line: bytes) -> None:
        super().write(line)
        assert self._member is not None
        self._member.write(line + b"\n")

    def end(self) -> None:
        assert self._member is not None
        self._member.close()
        self._member = None

    def add_file(self, member: str, data: bytes) -> None:
        with self.zip.open(member, "w", force_zip64=True) as handle:
            handle.write(data)

    def close(self, manifest: Manifest) -> None:
        self.zip.writestr(MANIFEST, msgspec.json.format(msgspec.json.encode(manifest), indent=2))
        self.zip.close()

    def abort(self) -> None:
        if self._member is not None:
            self._member.close()
        self.zip.close()


def _programme_level(spec: TableSpec, row: dict[str, Any]) -> bool:
    """A platform row that belongs to a programme rather than a node (a programme's switch or manager)."""
    return spec.mode == "linked" and "programme_id" in spec.programme_columns and row.get("tenant_id") is None


def _subtree_filter(spec: TableSpec, node: TenantInfo, programmes: Iterable[int] = ()) -> tuple[str, list[Any]]:
    prefix = f"{'/'.join(map(str, node.path))}/%"
    if spec.mode == "tenant":
        return "path LIKE {}", [prefix]
    if spec.mode == "scoped":
        return scope_filter(Scope(frozenset({node.id})))
    if spec.mode == "linked":
        where = "tenant_id IN (SELECT id FROM tenant WHERE path LIKE {})"
        ids = sorted(programmes)
        if "programme_id" in spec.programme_columns and ids:
            placeholders, args = in_list(ids)
            return f"({where} OR (tenant_id IS NULL AND programme_id IN {placeholders}))", [prefix, *args]
        return where, [prefix]
    raise AssertionError(spec.mode)


def _quoted(columns: Iterable[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


async def _batches(
    services: Services, spec: TableSpec, where: str, args: list[Any]
) -> AsyncIterator[list[dict[str, Any]]]:
    """Rows of ``spec`` matching ``where``, in primary-key order, a batch at a time."""
    db = services.db
    last: Any = None
    while True:
        after = f' AND "{spec.pk}" > {{}}' if last is not None else ""
        rows = await db.fetch(
            f'SELECT {_quoted(spec.columns)} FROM "{spec.name}" WHERE ({where}){after} ORDER BY "{spec.pk}" '
            f"LIMIT {CHUNK}",
            *args,
            *([last] if last is not None else []),
        )
        if not rows:
            return
        yield rows
        if len(rows) < CHUNK:
            return
        last = rows[-1][spec.pk]


async def _by_ids(services: Services, spec: TableSpec, ids: Iterable[int]) -> AsyncIterator[list[dict[str, Any]]]:
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), CHUNK):
        placeholders, args = in_list(ordered[start : start + CHUNK])
        yield await services.db.fetch(
            f'SELECT {_quoted(spec.columns)} FROM "{spec.name}" WHERE "{spec.pk}" IN {placeholders} '
            f'ORDER BY "{spec.pk}"',
            *args,
        )


@dataclass
class _ExportState:
    subtree: set[int]
    persons: set[int] = field(default_factory=set)
    programmes: set[int] = field(default_factory=set)
    #: People with a membership at a node of the subtree.
    members: set[int] = field(default_factory=set)
    keys: dict[str, int] = field(default_factory=dict)


def _collect(spec: TableSpec, row: dict[str, Any], state: _ExportState) -> None:
    for col in spec.person_columns:
        if row[col] is not None:
            state.persons.add(int(row[col]))
    if spec.name == MEMBERSHIP and row.get("tenant_id") in state.subtree and row.get("person_id") is not None:
        state.members.add(int(row["person_id"]))
    for col in spec.key_columns:
        value = row[col]
        match = _KEY_RE.match(value) if isinstance(value, str) else None
        if match and int(match.group(1)) in state.subtree:
            state.keys.setdefault(value, int(match.group(1)))


def redact_person(row: dict[str, Any], *, member: bool, password_hashes: bool) -> dict[str, Any]:
    """A canonical person row as exported: the password hash only for members with ``password_hashes``."""
    if row.get("password_hash") is not None and not (member and password_hashes):
        row = {**row, "password_hash": None}
    return row


async def _export(
    services: Services,
    node: TenantInfo,
    sink: _Sink,
    progress: ProgressFn | None = None,
    *,
    password_hashes: bool = False,
) -> tuple[Manifest, dict[str, TableDigest]]:
    """Stream the subtree of ``node`` into ``sink``; returns the manifest and each table's digest."""
    if node.kind == "platform":
        raise ArchiveError("Export a region, a province or a school, not the whole platform.")
    specs = _order(table_specs(services))
    db = services.db
    digests: dict[str, TableDigest] = {}
    tables: list[ManifestTable] = []
    files: list[ManifestFile] = []
    missing: list[str] = []
    async with db.scoped(Scope(frozenset({node.id})), write=False):
        prefix = "/".join(map(str, node.path)) + "/%"
        subtree = {int(r["id"]) for r in await db.fetch("SELECT id FROM tenant WHERE path LIKE {}", prefix)}
        state = _ExportState(subtree=subtree)
        placeholders, args = in_list(sorted(subtree))
        state.programmes = {
            int(r["programme_id"])
            for r in await db.fetch(
                f"SELECT DISTINCT programme_id FROM programme_school WHERE tenant_id IN {placeholders}", *args
            )
        }
        tenant_spec = next(s for s in specs if s.mode == "tenant")
        ancestors = []
        async for rows in _by_ids(services, tenant_spec, node.path[:-1]):
            ancestors.extend(canonical_row(tenant_spec, r) for r in rows)
        total = 0
        if progress is not None:
            for spec in specs:
                if spec.mode in ("tenant", "scoped", "linked"):
                    where, args = _subtree_filter(spec, node, state.programmes)
                    total += int(await db.fetchval(f'SELECT COUNT(*) FROM "{spec.name}" WHERE {where}', *args) or 0)
        done = 0
        for spec in specs:
            sink.begin(spec)
            if spec.mode in ("tenant", "scoped", "linked"):
                where, args = _subtree_filter(spec, node, state.programmes)
                batches = _batches(services, spec, where, args)
            else:
                batches = _by_ids(services, spec, state.persons if spec.mode == "person" else state.programmes)
            async for rows in batches:
                for row in rows:
                    _collect(spec, row, state)
                    canonical = canonical_row(spec, row)
                    if spec.mode == "person":
                        canonical = redact_person(
                            canonical, member=canonical["id"] in state.members, password_hashes=password_hashes
                        )
                    sink.write(canonical_line(canonical))
                done += len(rows)
                if progress is not None:
                    await progress(done, max(total, done), f"{spec.name}: {sink.digest.count} rows")
            sink.end()
            digests[spec.name] = sink.digest
            tables.append(
                ManifestTable(
                    name=spec.name,
                    member=f"tables/{spec.name}.jsonl",
                    columns=list(spec.columns),
                    rows=sink.digest.count,
                    sha256=sink.digest.hexdigest(),
                    member_sha256=sink.member_hash.hexdigest(),
                    member_bytes=sink.member_bytes,
                )
            )
        for key in sorted(state.keys):
            tenant_id = state.keys[key]
            try:
                data = await services.storage.get(key, tenant_id=tenant_id)
                info = await services.storage.stat(key, tenant_id=tenant_id)
            except ObjectNotFound:
                missing.append(key)
                continue
            except InvalidKey:
                continue
            member = f"files/{key}"
            sink.add_file(member, data)
            files.append(
                ManifestFile(
                    key=key,
                    tenant_id=tenant_id,
                    member=member,
                    size=len(data),
                    sha256=hashlib.sha256(data).hexdigest(),
                    content_type=info.content_type,
                )
            )
    manifest = Manifest(
        format=FORMAT,
        format_version=FORMAT_VERSION,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        source={"deployment": services.settings.base_domain, "database": db.dialect},
        tenant=ManifestTenant(id=node.id, slug=node.slug, kind=node.kind, path="/".join(map(str, node.path)) + "/"),
        ancestors=ancestors,
        tables=tables,
        files=files,
        missing_files=missing,
        password_hashes=password_hashes,
    )
    sink.close(manifest)
    return manifest, digests


async def find_node(services: Services, slug: str, scope: Scope | None = None) -> TenantInfo:
    """The node to export; :class:`TenantNotFound` if unknown, ``PermissionError`` outside ``scope``."""
    node = await services.tenants.by_slug(slug)
    if node is None:
        raise TenantNotFound(f"No tenant {slug!r}.")
    if scope is not None and not scope.covers(node.path):
        raise PermissionError(f"Tenant {slug!r} is outside your scope.")
    return node


async def export_tenant(
    services: Services,
    slug: str,
    target: Path | IO[bytes],
    *,
    progress: ProgressFn | None = None,
    password_hashes: bool = False,
) -> Manifest:
    """Write the archive of a region, province or school (its whole subtree) to ``target``.

    ``password_hashes`` (platform administrators and the command line only) keeps the hashes of the
    subtree's members, so their logins survive a move; otherwise every hash is left out.
    """
    node = await find_node(services, slug)
    sink = _ZipSink(target)
    try:
        manifest, _ = await _export(services, node, sink, progress, password_hashes=password_hashes)
    except BaseException:
        sink.abort()
        raise
    return manifest


# --------------------------------------------------------------------------- import: validation


class TableReport(msgspec.Struct):
    """The outcome of one table of an import."""

    name: str
    rows: int
    source_sha256: str
    target_sha256: str | None = None
    #: ``validated`` (dry run), ``equal``, ``equal-after-merge`` or ``different``.
    status: str = "validated"


class MergedPerson(msgspec.Struct):
    """A person of the archive merged onto an existing identity of the target."""

    email: str
    archive_id: int
    target_id: int


class RemappedPerson(msgspec.Struct):
    """A person the archive only names whose id is taken in the target: imported under a new id.

    ``target_id`` is ``None`` in a dry run (the id is allocated when the rows are written).
    """

    email: str
    archive_id: int
    target_id: int | None = None


class ImportReport(msgspec.Struct):
    """What an import did and how the target compares with the source."""

    tenant: str
    kind: str
    dry_run: bool
    equal: bool | None
    tables: list[TableReport]
    files: int
    files_equal: bool | None
    merged_persons: list[MergedPerson]
    created_ancestors: list[str]
    missing_files: list[str]
    #: People only named by the archive's rows whose id was taken in the target, imported under a new id.
    remapped_persons: list[RemappedPerson] = msgspec.field(default_factory=list)


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []
        self._counts: dict[str, int] = {}

    def add(self, kind: str, message: str) -> None:
        count = self._counts.get(kind, 0) + 1
        self._counts[kind] = count
        if count <= MAX_LISTED:
            self.items.append(message)

    def summary(self) -> list[str]:
        extra = [f"{kind}: {n - MAX_LISTED} more" for kind, n in self._counts.items() if n > MAX_LISTED]
        return self.items + extra

    def __bool__(self) -> bool:
        return bool(self.items)


@dataclass
class _Plan:
    manifest: Manifest
    specs: dict[str, TableSpec]
    node_path: tuple[int, ...]
    subtree: set[int]
    #: Archive person id → target person id, for people merged by e-mail (and, once written, re-numbered).
    person_map: dict[int, int] = field(default_factory=dict)
    merged: list[MergedPerson] = field(default_factory=list)
    #: Archive person id → (row, e-mail of the target's holder) for people whose id is taken and e-mail is not.
    id_taken: dict[int, tuple[dict[str, Any], str]] = field(default_factory=dict)
    #: Archive person ids named by a membership row of the archive (at a node or of a programme).
    holders: set[int] = field(default_factory=set)
    #: People of ``id_taken`` without a membership row: imported under a new id (archive id → row).
    renumber: dict[int, dict[str, Any]] = field(default_factory=dict)
    remapped: list[RemappedPerson] = field(default_factory=list)
    #: Archive programme id → target programme id, for programmes merged by slug; their target rows.
    programme_map: dict[int, int] = field(default_factory=dict)
    programme_rows: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: Ids of the archive's programmes.
    programmes: set[int] = field(default_factory=set)
    #: Archive person ids with a membership at a node of the subtree.
    members: set[int] = field(default_factory=set)
    #: Programme-level rows the target already has (table, archive id) → the target's row; not written.
    skip: dict[tuple[str, Any], dict[str, Any]] = field(default_factory=dict)
    #: Ids of ancestors the target already has.
    reuse: dict[str, set[int]] = field(default_factory=lambda: {"tenant": set()})
    new_ancestors: list[dict[str, Any]] = field(default_factory=list)
    max_ids: dict[str, int] = field(default_factory=dict)


def _open(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ArchiveRejected(f"Not a readable archive (truncated or not a zip file): {exc}.") from None


def _bomb(info: zipfile.ZipInfo) -> str | None:
    """Why a member's compression ratio is refused, or ``None``."""
    if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        return (
            f"{info.filename}: {info.file_size} bytes compressed into {info.compress_size} (more than {MAX_RATIO}:1), "
            "refused as a zip bomb"
        )
    return None


def _read_manifest(zf: zipfile.ZipFile) -> Manifest:
    try:
        info = zf.getinfo(MANIFEST)
    except KeyError:
        raise ArchiveRejected("The archive has no manifest.json.") from None
    if info.file_size > MAX_MANIFEST_BYTES:
        raise ArchiveRejected(
            f"manifest.json is {info.file_size} bytes uncompressed, more than the limit of {MAX_MANIFEST_BYTES}."
        )
    if (bomb := _bomb(info)) is not None:
        raise ArchiveRejected(f"manifest.json cannot be read: {bomb}.")
    try:
        raw = zf.read(MANIFEST)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ArchiveRejected(f"manifest.json cannot be read: {exc}.") from None
    try:
        head = json.loads(raw)
    except ValueError:
        raise ArchiveRejected("manifest.json is not valid JSON.") from None
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise ArchiveRejected(f"manifest.json does not describe a {FORMAT}.")
    if head.get("format_version") != FORMAT_VERSION:
        raise ArchiveRejected(
            f"Unsupported archive format version {head.get('format_version')!r}: this deployment reads version "
            f"{FORMAT_VERSION}."
        )
    try:
        return msgspec.json.decode(raw, type=Manifest)
    except msgspec.ValidationError as exc:
        raise ArchiveRejected(f"manifest.json is malformed: {exc}.") from None


def _check_sizes(zf: zipfile.ZipFile, manifest: Manifest) -> None:
    """Compare every member's uncompressed size (from the zip's directory) with the manifest and the limits.

    Runs before any member but the manifest is read: a member larger than declared, a stored file over
    :data:`MAX_FILE_BYTES`, an archive over :data:`MAX_ARCHIVE_BYTES` or a zip bomb is refused.
    """
    problems = _Problems()
    declared = {t.member: t.member_bytes for t in manifest.tables}
    files = {f.member: f.size for f in manifest.files}
    total = 0
    for info in zf.infolist():
        total += info.file_size
        name = info.filename
        expected = declared.get(name, files.get(name))
        if expected is not None and info.file_size != expected:
            problems.add("size", f"{name}: {info.file_size} bytes uncompressed, the manifest declares {expected}")
        elif name in files and info.file_size > MAX_FILE_BYTES:
            problems.add("size", f"{name}: {info.file_size} bytes, more than the limit of {MAX_FILE_BYTES} per file")
        if (bomb := _bomb(info)) is not None:
            problems.add("bomb", bomb)
    if total > MAX_ARCHIVE_BYTES:
        problems.add("size", f"the archive holds {total} bytes uncompressed, over the limit of {MAX_ARCHIVE_BYTES}")
    if problems:
        raise ArchiveRejected(
            "The archive's members exceed their declared sizes or the import limits; nothing was read or written.",
            problems.summary(),
        )


def _lines(zf: zipfile.ZipFile, member: str, problems: _Problems) -> Iterator[tuple[int, bytes]]:
    """Lines of a member (without the newline); stops with a problem on a corrupt member or an overlong line."""
    try:
        with zf.open(member) as handle:
            number = 0
            while line := handle.readline(MAX_LINE_BYTES + 1):
                number += 1
                if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                    problems.add("line", f"{member} line {number} is longer than {MAX_LINE_BYTES} bytes.")
                    return
                yield number, line.rstrip(b"\n")
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        problems.add("corrupt", f"{member} is corrupt: {exc}.")


def _parse(spec: TableSpec, line: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """A canonical line as ``(canonical values, database values)``; ``ValueError`` explains a bad line."""
    try:
        row = json.loads(line)
    except ValueError:
        raise ValueError("not JSON") from None
    if not isinstance(row, dict):
        raise ValueError("not a JSON object")
    if set(row) != set(spec.columns):
        raise ValueError(f"columns {sorted(row)} instead of {sorted(spec.columns)}")
    if canonical_line(row) != line:
        raise ValueError("not in canonical form")
    values = {}
    for col, kind in zip(spec.columns, spec.kinds, strict=True):
        try:
            values[col] = db_value(kind, row[col])
        except ValueError as exc:
            raise ValueError(f"column {col}: {exc}") from None
    return row, values


def _inside(spec: TableSpec, row: dict[str, Any], plan: _Plan) -> bool:
    """Whether a row belongs to the archived subtree (an archive may not write elsewhere)."""
    if spec.mode == "tenant":
        try:
            path = parse_path(str(row.get("path") or ""))
        except ValueError:
            return False
        parent = path[-2] if len(path) > 1 else None
        return (
            path[: len(plan.node_path)] == plan.node_path
            and path[-1] == row.get("id")
            and (row.get("parent_id") == parent)
        )
    if spec.mode == "scoped":
        column = ("region_id", "province_id", "school_id")[len(plan.node_path) - 2]
        values = [row.get(c) for c in SCOPE_COLUMNS]
        return row.get(column) == plan.node_path[-1] and all(
            v is None or v in plan.node_path or v in plan.subtree for v in values
        )
    if spec.mode == "linked":
        if _programme_level(spec, row):
            return row.get("programme_id") in plan.programmes
        return row.get("tenant_id") in plan.subtree
    return True


async def _existing(services: Services, table: str, column: str, values: list[Any]) -> dict[Any, dict[str, Any]]:
    if not values:
        return {}
    placeholders, args = in_list(values)
    rows = await services.db.fetch(f'SELECT * FROM "{table}" WHERE "{column}" IN {placeholders}', *args)
    return {r[column]: r for r in rows}


async def _check_chunk(
    services: Services, spec: TableSpec, rows: list[dict[str, Any]], plan: _Plan, clashes: _Problems
) -> None:
    """Compare a batch of archive rows with the target: ids and unique values must be free."""
    if spec.mode == "person":
        by_email = await _existing(services, "person", "email", [r["email"] for r in rows])
        by_id = await _existing(services, "person", "id", [r["id"] for r in rows])
        for row in rows:
            found = by_email.get(row["email"])
            if found is not None:
                plan.person_map[row["id"]] = int(found["id"])
                plan.merged.append(MergedPerson(email=row["email"], archive_id=row["id"], target_id=int(found["id"])))
            elif row["id"] in by_id:
                # Refused or re-numbered once the memberships are read (see validate).
                plan.id_taken[row["id"]] = (row, str(by_id[row["id"]]["email"]))
        return
    if spec.mode == "programme":
        by_id = await _existing(services, "programme", "id", [r["id"] for r in rows])
        by_slug = await _existing(services, "programme", "slug", [r["slug"] for r in rows])
        for row in rows:
            found = by_slug.get(row["slug"])
            if found is not None:
                plan.programme_map[row["id"]] = int(found["id"])
                plan.programme_rows[row["id"]] = found
            elif row["id"] in by_id:
                clashes.add(
                    "programme", f"programme id {row['id']} ({row['slug']!r}) is taken by {by_id[row['id']]['slug']!r}"
                )
        return
    rows = await _merge_programme_rows(services, spec, rows, plan)
    ids = await _existing(services, spec.name, spec.pk, [r[spec.pk] for r in rows])
    for value in ids:
        clashes.add(spec.name, f"{spec.name} id {value} exists in the target")
    for col in spec.unique:
        found = await _existing(services, spec.name, col, [r[col] for r in rows if r[col] is not None])
        for value in found:
            clashes.add(f"{spec.name}.{col}", f"{spec.name}.{col} {value!r} exists in the target")


async def _merge_programme_rows(
    services: Services, spec: TableSpec, rows: list[dict[str, Any]], plan: _Plan
) -> list[dict[str, Any]]:
    """Set aside programme-level rows the target's (merged) programme already has; returns the others."""
    merged = set(plan.programme_map.values())
    candidates = [r for r in rows if _programme_level(spec, r) and r.get("programme_id") in merged]
    if not candidates:
        return rows
    keys = PROGRAMME_ROW_KEYS.get(spec.name) or tuple(
        c for c in spec.columns if c != spec.pk and c not in PROGRAMME_COLUMNS
    )
    placeholders, args = in_list(sorted({r["programme_id"] for r in candidates}))
    existing = await services.db.fetch(
        f'SELECT * FROM "{spec.name}" WHERE tenant_id IS NULL AND programme_id IN {placeholders}', *args
    )
    by_key = {(r["programme_id"], *(r[c] for c in keys)): r for r in existing}
    chosen = {id(r) for r in candidates}
    rest = []
    for row in rows:
        found = by_key.get((row.get("programme_id"), *(row.get(c) for c in keys))) if id(row) in chosen else None
        if found is not None:
            plan.skip[(spec.name, row[spec.pk])] = found
        else:
            rest.append(row)
    return rest


async def _check_ancestors(services: Services, plan: _Plan, clashes: _Problems, problems: _Problems) -> None:
    spec = plan.specs["tenant"]
    ancestors = plan.manifest.ancestors
    if [a.get("id") for a in ancestors] != list(plan.node_path[:-1]):
        problems.add("ancestors", "The manifest's ancestors do not match the exported node's path.")
        return
    for ancestor in ancestors:
        try:
            _, values = _parse(spec, canonical_line(ancestor))
        except ValueError as exc:
            problems.add("ancestors", f"ancestor {ancestor.get('slug')!r}: {exc}")
            continue
        by_id = await _existing(services, "tenant", "id", [values["id"]])
        by_slug = await _existing(services, "tenant", "slug", [values["slug"]])
        same = by_id.get(values["id"])
        if same is not None and same["slug"] == values["slug"] and same["kind"] == values["kind"]:
            if same["path"] != values["path"]:
                clashes.add("ancestor", f"ancestor {values['slug']!r} sits elsewhere in the target's tree")
            plan.reuse["tenant"].add(values["id"])
        elif same is not None or by_slug:
            clashes.add("ancestor", f"ancestor {values['slug']!r} (id {values['id']}) clashes with the target's")
        elif values["kind"] == "platform":
            clashes.add("ancestor", f"the target's platform node is not id {values['id']}")
        else:
            plan.new_ancestors.append(values)


async def validate(services: Services, zf: zipfile.ZipFile) -> _Plan:
    """Check an archive completely and against the target; raises :class:`ArchiveRejected` or :class:`ArchiveClash`."""
    manifest = _read_manifest(zf)
    specs = table_specs(services)
    problems = _Problems()
    clashes = _Problems()
    _check_sizes(zf, manifest)
    names = set(zf.namelist())
    listed = {MANIFEST} | {t.member for t in manifest.tables} | {f.member for f in manifest.files}
    for extra in sorted(names - listed):
        problems.add("member", f"unexpected member {extra!r}")
    seen: set[str] = set()
    for name in [t.name for t in manifest.tables] + [f.key for f in manifest.files]:
        if name in seen:
            problems.add("duplicate", f"{name!r} is listed twice in the manifest")
        seen.add(name)
    for table in manifest.tables:
        if table.name not in specs:
            problems.add("table", f"unknown table {table.name!r}: this deployment's schema has no such table")
        elif table.columns != list(specs[table.name].columns):
            spec = specs[table.name]
            problems.add(
                "table",
                f"table {table.name!r}: columns differ (missing here: {sorted(set(table.columns) - set(spec.columns))},"
                f" missing in the archive: {sorted(set(spec.columns) - set(table.columns))})",
            )
        if table.member != f"tables/{table.name}.jsonl" or table.member not in names:
            problems.add("member", f"table {table.name!r}: member {table.member!r} is missing")
    for name in ("tenant", "person"):
        if name not in {t.name for t in manifest.tables}:
            problems.add("table", f"the archive has no {name!r} table")
    if manifest.tenant.kind not in ("region", "province", "school"):
        problems.add("tenant", f"cannot import a node of kind {manifest.tenant.kind!r}")
    if problems:
        raise ArchiveRejected("The archive does not fit this deployment.", problems.summary())
    try:
        node_path = parse_path(manifest.tenant.path)
    except ValueError:
        node_path = ()
    depth = {"region": 2, "province": 3, "school": 4}[manifest.tenant.kind]
    if len(node_path) != depth or node_path[-1] != manifest.tenant.id:
        raise ArchiveRejected("The manifest's tenant path does not match its kind and id.")
    plan = _Plan(manifest=manifest, specs=specs, node_path=node_path, subtree=set())
    order = {"tenant": 0, "person": 1, "programme": 2}
    async with services.db.scoped(Scope.everything(), write=False):
        for table in sorted(manifest.tables, key=lambda t: (order.get(t.name, 3), t.name)):
            spec = specs[table.name]
            # People whose id is taken are checked under a placeholder id no target row can have.
            person_map = {p: -p for p in plan.id_taken} | plan.person_map
            digest = TableDigest()
            member_hash = hashlib.sha256()
            size = 0
            batch: list[dict[str, Any]] = []
            ok = True
            for number, line in _lines(zf, table.member, problems):
                member_hash.update(line + b"\n")
                size += len(line) + 1
                digest.add(line)
                try:
                    _, values = _parse(spec, line)
                except ValueError as exc:
                    problems.add(f"rows of {table.name}", f"{table.member} line {number}: {exc}")
                    ok = False
                    continue
                if spec.mode == "tenant":
                    plan.subtree.add(values["id"])
                if spec.mode == "programme":
                    plan.programmes.add(values["id"])
                if not _inside(spec, values, plan):
                    problems.add(
                        "outside", f"{table.member} line {number}: the row lies outside {manifest.tenant.slug!r}"
                    )
                    ok = False
                    continue
                if spec.name == MEMBERSHIP and values.get("tenant_id") in plan.subtree:
                    plan.members.add(values.get("person_id"))
                if spec.name == MEMBERSHIP and values.get("person_id") is not None:
                    plan.holders.add(values["person_id"])
                if spec.mode != "person":
                    # Unique values are checked as they will be written.
                    _remap(spec, values, person_map)
                    _remap(spec, values, plan.programme_map, spec.programme_columns)
                if spec.serial and isinstance(values[spec.pk], int):
                    plan.max_ids[spec.name] = max(plan.max_ids.get(spec.name, 0), values[spec.pk])
                batch.append(values)
                if len(batch) >= CHUNK:
                    await _check_chunk(services, spec, batch, plan, clashes)
                    batch = []
            if batch:
                await _check_chunk(services, spec, batch, plan, clashes)
            if size != table.member_bytes or member_hash.hexdigest() != table.member_sha256:
                problems.add("hash", f"{table.member}: size or SHA-256 differs from the manifest (tampered?)")
            elif ok and (digest.count != table.rows or digest.hexdigest() != table.sha256):
                problems.add("hash", f"table {table.name!r}: row count or digest differs from the manifest")
            if spec.mode == "tenant" and manifest.tenant.id not in plan.subtree:
                problems.add("tenant", f"the tenant table lacks the exported node {manifest.tenant.slug!r}")
        await _check_ancestors(services, plan, clashes, problems)
    for person_id, (row, holder) in sorted(plan.id_taken.items()):
        if person_id in plan.holders:
            clashes.add("person", f"person id {person_id} ({row['email']}) is taken by {holder}")
        else:
            plan.renumber[person_id] = row
            plan.remapped.append(RemappedPerson(email=row["email"], archive_id=person_id))
    for entry in manifest.files:
        if entry.member != f"files/{entry.key}" or entry.member not in names:
            problems.add("file", f"file {entry.key!r}: member missing")
            continue
        try:
            check_key(entry.key, entry.tenant_id)
        except InvalidKey as exc:
            problems.add("file", f"file {entry.key!r}: {exc}")
            continue
        if entry.tenant_id not in plan.subtree:
            problems.add("file", f"file {entry.key!r} belongs to a node outside the archive")
            continue
        try:
            data = zf.read(entry.member)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            problems.add("corrupt", f"{entry.member} is corrupt: {exc}.")
            continue
        if len(data) != entry.size or hashlib.sha256(data).hexdigest() != entry.sha256:
            problems.add("hash", f"file {entry.key!r}: size or SHA-256 differs from the manifest (tampered?)")
        try:
            if await services.storage.exists(entry.key, tenant_id=entry.tenant_id):
                clashes.add("file", f"file {entry.key!r} exists in the target's storage")
        except StorageError as exc:
            raise ArchiveError(f"The target's storage cannot be reached: {exc}") from None
    if problems:
        raise ArchiveRejected("The archive is damaged or does not fit this deployment.", problems.summary())
    if clashes:
        raise ArchiveClash(
            "The archive's ids clash with data in this deployment: import it into a deployment that does not have "
            "these rows.",
            clashes.summary(),
        )
    return plan


# --------------------------------------------------------------------------- import: writing


async def _advance_sequences(services: Services, plan: _Plan) -> None:
    """On PostgreSQL, move each id sequence past the largest imported id (owner connection)."""
    db = services.db
    if db.dialect != "postgres":
        return
    engine = db.owner_engine
    targets = dict(plan.max_ids)
    for ancestor in plan.new_ancestors:
        targets["tenant"] = max(targets.get("tenant", 0), int(ancestor["id"]))
    try:
        for table, top in sorted(targets.items()):
            rows = await engine.run_ddl(f"SELECT pg_get_serial_sequence('\"{table}\"', '{plan.specs[table].pk}') AS s")
            sequence = rows[0]["s"] if rows else None
            if not sequence:
                continue
            await engine.run_ddl(
                f"SELECT setval('{sequence}', GREATEST({int(top)}, (SELECT last_value FROM {sequence})), true)"
            )
    except Exception as exc:
        raise ArchiveError(
            f"Cannot advance the id sequences ({exc}); run the import with MADRASA_MIGRATION_DATABASE_URL set to "
            "the owner role."
        ) from None


async def _insert(services: Services, spec: TableSpec, rows: list[dict[str, Any]]) -> None:
    columns = list(spec.columns)
    placeholders = ", ".join("{}" for _ in columns)
    await services.db.executemany(
        f'INSERT INTO "{spec.name}" ({_quoted(columns)}) VALUES ({placeholders})',
        [[row[c] for c in columns] for row in rows],
    )


async def _renumber_persons(services: Services, plan: _Plan) -> None:
    """Insert the people of ``plan.renumber`` under new ids, without password hash, and remap them.

    On PostgreSQL the ids come from the person id sequence (already advanced past the imported ids); on
    SQLite they follow the largest id of the target and of the archive, inside the write transaction.
    """
    if not plan.renumber:
        return
    db = services.db
    if db.dialect == "postgres":
        ids = [int(await db.fetchval("SELECT nextval(pg_get_serial_sequence('person', 'id'))")) for _ in plan.renumber]
    else:
        top = int(await db.fetchval("SELECT COALESCE(MAX(id), 0) FROM person") or 0)
        start = max(top, plan.max_ids.get("person", 0)) + 1
        ids = list(range(start, start + len(plan.renumber)))
    rows = []
    for (archive_id, row), new_id in zip(sorted(plan.renumber.items()), ids, strict=True):
        rows.append({**row, "id": new_id, "password_hash": None})
        plan.person_map[archive_id] = new_id
    await _insert(services, plan.specs["person"], rows)
    for entry in plan.remapped:
        entry.target_id = plan.person_map[entry.archive_id]


def _remap(spec: TableSpec, row: dict[str, Any], mapping: dict[int, int], columns: Iterable[str] | None = None) -> bool:
    """Replace ids in ``columns`` (default: the person columns) through ``mapping``; whether any matched."""
    changed = False
    for col in spec.person_columns if columns is None else columns:
        value = row[col]
        if value is not None and value in mapping and not isinstance(value, bool):
            row[col] = mapping[value]
            changed = True
    return changed


async def _write(services: Services, zf: zipfile.ZipFile, plan: _Plan, actor_id: int | None) -> dict[str, TableDigest]:
    """Insert every row and upload every file in one transaction; returns the digests of what was written."""
    db = services.db
    storage = services.storage
    expected: dict[str, TableDigest] = {}
    uploaded: list[tuple[str, int]] = []
    sink = _Problems()
    try:
        async with db.scoped(Scope.everything()):
            # Files first: if a row is refused below, they are removed again with the rollback.
            for entry in plan.manifest.files:
                await storage.put(entry.key, zf.read(entry.member), entry.content_type, tenant_id=entry.tenant_id)
                uploaded.append((entry.key, entry.tenant_id))
            if plan.new_ancestors:
                await _insert(services, plan.specs["tenant"], plan.new_ancestors)
            await _renumber_persons(services, plan)
            for table in plan.manifest.tables:
                spec = plan.specs[table.name]
                digest = expected[table.name] = TableDigest()
                batch: list[dict[str, Any]] = []
                for _, line in _lines(zf, table.member, sink):
                    canonical, values = _parse(spec, line)
                    if spec.mode == "person" and values["id"] in plan.person_map:
                        continue
                    if spec.mode == "programme" and values["id"] in plan.programme_map:
                        digest.add(canonical_line(canonical_row(spec, plan.programme_rows[values["id"]])))
                        continue
                    if (spec.name, values[spec.pk]) in plan.skip:
                        digest.add(canonical_line(canonical_row(spec, plan.skip[(spec.name, values[spec.pk])])))
                        continue
                    remapped = _remap(spec, values, plan.person_map)
                    remapped = _remap(spec, values, plan.programme_map, spec.programme_columns) or remapped
                    if remapped:
                        _remap(spec, canonical, plan.person_map)
                        _remap(spec, canonical, plan.programme_map, spec.programme_columns)
                        line = canonical_line(canonical)
                    digest.add(line)
                    batch.append(values)
                    if len(batch) >= CHUNK:
                        await _insert(services, spec, batch)
                        batch = []
                if batch:
                    await _insert(services, spec, batch)
                if spec.mode == "person" and plan.person_map:
                    members = {plan.person_map.get(p, p) for p in plan.members}
                    async for rows in _by_ids(services, spec, plan.person_map.values()):
                        for row in rows:
                            kept = redact_person(
                                canonical_row(spec, row),
                                member=row["id"] in members,
                                password_hashes=plan.manifest.password_hashes,
                            )
                            digest.add(canonical_line(kept))
            if sink:
                raise ArchiveError("The archive changed while it was imported.", sink.summary())
            await audit.record(
                db,
                actor_id=actor_id,
                action="archive.import",
                object_type="tenant",
                object_id=plan.manifest.tenant.id,
                tenant=None,
                after={
                    "slug": plan.manifest.tenant.slug,
                    "source": plan.manifest.source,
                    "tables": {t.name: t.rows for t in plan.manifest.tables},
                    "files": len(plan.manifest.files),
                },
            )
    except BaseException as exc:
        for key, tenant_id in uploaded:
            try:
                await storage.delete(key, tenant_id=tenant_id)
            except StorageError:
                log.exception("could not remove an uploaded file after a failed import", extra={"key": key})
        if isinstance(exc, ArchiveError | StorageError):
            raise
        if isinstance(exc, Exception):
            raise ArchiveError(f"The import failed and was rolled back: {type(exc).__name__}: {exc}") from exc
        raise
    return expected


async def compare(
    services: Services, manifest: Manifest, expected: dict[str, TableDigest] | None = None
) -> ImportReport:
    """Export the manifest's node from this deployment (digests only) and compare with the manifest."""
    node = await services.tenants.by_id(manifest.tenant.id)
    if node is None or node.slug != manifest.tenant.slug:
        raise TenantNotFound(f"This deployment has no tenant {manifest.tenant.slug!r} with id {manifest.tenant.id}.")
    sink = _Sink()
    target, _ = await _export(services, node, sink, password_hashes=manifest.password_hashes)
    by_name = {t.name: t for t in target.tables}
    reports = []
    for table in manifest.tables:
        got = by_name.get(table.name)
        target_sha = got.sha256 if got else None
        if target_sha == table.sha256:
            status = "equal"
        elif expected is not None and table.name in expected and target_sha == expected[table.name].hexdigest():
            status = "equal-after-merge"
        else:
            status = "different"
        reports.append(TableReport(table.name, table.rows, table.sha256, target_sha, status))
    for name in sorted(set(by_name) - {t.name for t in manifest.tables}):
        if by_name[name].rows:
            reports.append(TableReport(name, 0, TableDigest().hexdigest(), by_name[name].sha256, "different"))
    source_files = {(f.key, f.sha256, f.size) for f in manifest.files}
    target_files = {(f.key, f.sha256, f.size) for f in target.files}
    files_equal = source_files == target_files
    return ImportReport(
        tenant=manifest.tenant.slug,
        kind=manifest.tenant.kind,
        dry_run=False,
        equal=files_equal and all(r.status != "different" for r in reports),
        tables=reports,
        files=len(manifest.files),
        files_equal=files_equal,
        merged_persons=[],
        created_ancestors=[],
        missing_files=list(manifest.missing_files),
    )


@asynccontextmanager
async def _zip(path: Path) -> AsyncIterator[zipfile.ZipFile]:
    zf = _open(path)
    try:
        yield zf
    finally:
        zf.close()


async def import_archive(
    services: Services, path: Path, *, dry_run: bool = False, actor_id: int | None = None
) -> ImportReport:
    """Validate an archive, then (unless ``dry_run``) import it and run the equality check."""
    async with _zip(path) as zf:
        plan = await validate(services, zf)
        manifest = plan.manifest
        created = [str(a["slug"]) for a in plan.new_ancestors]
        if dry_run:
            return ImportReport(
                tenant=manifest.tenant.slug,
                kind=manifest.tenant.kind,
                dry_run=True,
                equal=None,
                tables=[TableReport(t.name, t.rows, t.sha256) for t in manifest.tables],
                files=len(manifest.files),
                files_equal=None,
                merged_persons=plan.merged,
                created_ancestors=created,
                missing_files=list(manifest.missing_files),
                remapped_persons=plan.remapped,
            )
        await _advance_sequences(services, plan)
        expected = await _write(services, zf, plan, actor_id)
    services.tenants.invalidate()
    services.grants.invalidate()
    services.modules.invalidate()
    report = await compare(services, manifest, expected)
    report.merged_persons = plan.merged
    report.remapped_persons = plan.remapped
    report.created_ancestors = created
    return report
