"""Exporting a region, province or school: its rows (canonical JSON lines) and stored files, streamed.

Rows are read in primary-key batches of :data:`CHUNK` and written as they come; memory holds one
batch, one file and the sets of referenced person ids and file keys. The same walk with a
digest-only :class:`Sink` is the equality check after an import.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import msgspec

from core.db import scope_sql
from core.scope import Scope
from core.sql import SQL, ident, in_, join
from core.storage import InvalidKey, ObjectNotFound
from core.tenancy import TenantInfo
from tenants.archive.canonical import TableDigest, canonical_line, canonical_row
from tenants.archive.manifest import Manifest, ManifestFile, ManifestTable, ManifestTenant
from tenants.archive.schema import (
    CHUNK,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    MEMBERSHIP,
    ArchiveError,
    ProgressFn,
    TableSpec,
    TenantNotFound,
    order_specs,
    table_specs,
)

if TYPE_CHECKING:
    from core.services import Services

_KEY_RE = re.compile(r"^t/(\d+)/")


class Sink:
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


class _ZipSink(Sink):
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


def programme_level(spec: TableSpec, row: dict[str, Any]) -> bool:
    """A platform row that belongs to a programme rather than a node (a programme's switch or manager)."""
    return spec.mode == "linked" and "programme_id" in spec.programme_columns and row.get("tenant_id") is None


def subtree_filter(spec: TableSpec, node: TenantInfo, programmes: Iterable[int] = ()) -> SQL:
    """The rows of ``spec`` that belong to the subtree of ``node`` (and to its schools' ``programmes``)."""
    prefix = "/".join(map(str, node.path)) + "/%"
    if spec.mode == "tenant":
        return SQL("path LIKE {}", prefix)
    if spec.mode == "scoped":
        return scope_sql(Scope(frozenset({node.id})))
    if spec.mode == "linked":
        where = SQL("tenant_id IN (SELECT id FROM tenant WHERE path LIKE {})", prefix)
        ids = sorted(programmes)
        if "programme_id" in spec.programme_columns and ids:
            return SQL("({} OR (tenant_id IS NULL AND programme_id IN {}))", where, in_(ids))
        return where
    raise AssertionError(spec.mode)


def column_list(columns: Iterable[str]) -> SQL:
    """``"a", "b", …``."""
    return join(", ", [ident(c) for c in columns])


async def _batches(services: Services, spec: TableSpec, where: SQL) -> AsyncIterator[list[dict[str, Any]]]:
    """Rows of ``spec`` matching ``where``, in primary-key order, a batch at a time."""
    db = services.db
    last: Any = None
    while True:
        after = SQL(" AND {} > {}", ident(spec.pk), last) if last is not None else SQL()
        rows = await db.fetch(
            SQL(
                "SELECT {} FROM {} WHERE ({}){} ORDER BY {} LIMIT {}",
                column_list(spec.columns),
                ident(spec.name),
                where,
                after,
                ident(spec.pk),
                CHUNK,
            )
        )
        if not rows:
            return
        yield rows
        if len(rows) < CHUNK:
            return
        last = rows[-1][spec.pk]


async def by_ids(services: Services, spec: TableSpec, ids: Iterable[int]) -> AsyncIterator[list[dict[str, Any]]]:
    """Rows of ``spec`` with these primary keys, in order, a batch at a time."""
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), CHUNK):
        yield await services.db.fetch(
            SQL(
                "SELECT {} FROM {} WHERE {} IN {} ORDER BY {}",
                column_list(spec.columns),
                ident(spec.name),
                ident(spec.pk),
                in_(ordered[start : start + CHUNK]),
                ident(spec.pk),
            )
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


async def export(
    services: Services,
    node: TenantInfo,
    sink: Sink,
    progress: ProgressFn | None = None,
    *,
    password_hashes: bool = False,
) -> tuple[Manifest, dict[str, TableDigest]]:
    """Stream the subtree of ``node`` into ``sink``; returns the manifest and each table's digest."""
    if node.kind == "platform":
        raise ArchiveError("Export a region, a province or a school, not the whole platform.")
    specs = order_specs(await table_specs(services))
    db = services.db
    digests: dict[str, TableDigest] = {}
    tables: list[ManifestTable] = []
    files: list[ManifestFile] = []
    missing: list[str] = []
    async with db.scoped(Scope(frozenset({node.id})), write=False):
        prefix = "/".join(map(str, node.path)) + "/%"
        subtree = {int(r["id"]) for r in await db.fetch("SELECT id FROM tenant WHERE path LIKE {}", prefix)}
        state = _ExportState(subtree=subtree)
        state.programmes = {
            int(r["programme_id"])
            for r in await db.fetch(
                SQL("SELECT DISTINCT programme_id FROM programme_school WHERE tenant_id IN {}", in_(sorted(subtree)))
            )
        }
        tenant_spec = next(s for s in specs if s.mode == "tenant")
        ancestors = []
        async for rows in by_ids(services, tenant_spec, node.path[:-1]):
            ancestors.extend(canonical_row(tenant_spec, r) for r in rows)
        total = 0
        if progress is not None:
            for spec in specs:
                if spec.mode in ("tenant", "scoped", "linked"):
                    where = subtree_filter(spec, node, state.programmes)
                    total += int(
                        await db.fetchval(SQL("SELECT COUNT(*) FROM {} WHERE {}", ident(spec.name), where)) or 0
                    )
        done = 0
        for spec in specs:
            sink.begin(spec)
            if spec.mode in ("tenant", "scoped", "linked"):
                batches = _batches(services, spec, subtree_filter(spec, node, state.programmes))
            else:
                batches = by_ids(services, spec, state.persons if spec.mode == "person" else state.programmes)
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
        manifest, _ = await export(services, node, sink, progress, password_hashes=password_hashes)
    except BaseException:
        sink.abort()
        raise
    return manifest
