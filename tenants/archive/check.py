"""Validating an archive completely, and against the target, before anything is written.

From the zip's directory alone first (:func:`tenants.archive.manifest.check_sizes`), then every
member: sizes and hashes, row counts and digests, canonical rows of the right types, every table
and column known to this deployment's schema (compared as sets: the order of columns may differ
between databases), every row inside the archived subtree; then the target: ids, unique values and
file keys must be free, people are merged by e-mail or re-numbered, programmes merged by slug.
The outcome is a :class:`Plan` for :mod:`tenants.archive.importing`.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from core.scope import Scope
from core.sql import SQL, ident, in_
from core.storage import InvalidKey, StorageError, check_key
from core.tenancy import parse_path
from tenants.archive.canonical import TableDigest, canonical_line, db_value
from tenants.archive.export import programme_level
from tenants.archive.manifest import MANIFEST, Manifest, Problems, check_sizes, read_manifest
from tenants.archive.schema import (
    CHUNK,
    MAX_LINE_BYTES,
    MEMBERSHIP,
    PROGRAMME_COLUMNS,
    PROGRAMME_ROW_KEYS,
    SCOPE_COLUMNS,
    ArchiveClash,
    ArchiveError,
    ArchiveRejected,
    TableSpec,
    table_specs,
)

if TYPE_CHECKING:
    from core.services import Services


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


@dataclass
class Plan:
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


def member_lines(zf: zipfile.ZipFile, member: str, problems: Problems) -> Iterator[tuple[int, bytes]]:
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


def parse_line(spec: TableSpec, line: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
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


def _inside(spec: TableSpec, row: dict[str, Any], plan: Plan) -> bool:
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
        if programme_level(spec, row):
            return row.get("programme_id") in plan.programmes
        return row.get("tenant_id") in plan.subtree
    return True


async def _existing(services: Services, table: str, column: str, values: list[Any]) -> dict[Any, dict[str, Any]]:
    if not values:
        return {}
    rows = await services.db.fetch(SQL("SELECT * FROM {} WHERE {} IN {}", ident(table), ident(column), in_(values)))
    return {r[column]: r for r in rows}


async def _check_chunk(
    services: Services, spec: TableSpec, rows: list[dict[str, Any]], plan: Plan, clashes: Problems
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
    services: Services, spec: TableSpec, rows: list[dict[str, Any]], plan: Plan
) -> list[dict[str, Any]]:
    """Set aside programme-level rows the target's (merged) programme already has; returns the others."""
    merged = set(plan.programme_map.values())
    candidates = [r for r in rows if programme_level(spec, r) and r.get("programme_id") in merged]
    if not candidates:
        return rows
    keys = PROGRAMME_ROW_KEYS.get(spec.name) or tuple(
        c for c in spec.columns if c != spec.pk and c not in PROGRAMME_COLUMNS
    )
    existing = await services.db.fetch(
        SQL(
            "SELECT * FROM {} WHERE tenant_id IS NULL AND programme_id IN {}",
            ident(spec.name),
            in_(sorted({r["programme_id"] for r in candidates})),
        )
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


async def _check_ancestors(services: Services, plan: Plan, clashes: Problems, problems: Problems) -> None:
    spec = plan.specs["tenant"]
    ancestors = plan.manifest.ancestors
    if [a.get("id") for a in ancestors] != list(plan.node_path[:-1]):
        problems.add("ancestors", "The manifest's ancestors do not match the exported node's path.")
        return
    for ancestor in ancestors:
        try:
            _, values = parse_line(spec, canonical_line(ancestor))
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


async def validate(services: Services, zf: zipfile.ZipFile) -> Plan:
    """Check an archive completely and against the target; raises :class:`ArchiveRejected` or :class:`ArchiveClash`."""
    manifest = read_manifest(zf)
    specs = await table_specs(services)
    problems = Problems()
    clashes = Problems()
    check_sizes(zf, manifest)
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
        elif set(table.columns) != set(specs[table.name].columns) or len(table.columns) != len(
            specs[table.name].columns
        ):
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
    plan = Plan(manifest=manifest, specs=specs, node_path=node_path, subtree=set())
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
            for number, line in member_lines(zf, table.member, problems):
                member_hash.update(line + b"\n")
                size += len(line) + 1
                digest.add(line)
                try:
                    _, values = parse_line(spec, line)
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
                    remap(spec, values, person_map)
                    remap(spec, values, plan.programme_map, spec.programme_columns)
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


def remap(spec: TableSpec, row: dict[str, Any], mapping: dict[int, int], columns: Iterable[str] | None = None) -> bool:
    """Replace ids in ``columns`` (default: the person columns) through ``mapping``; whether any matched."""
    changed = False
    for col in spec.person_columns if columns is None else columns:
        value = row[col]
        if value is not None and value in mapping and not isinstance(value, bool):
            row[col] = mapping[value]
            changed = True
    return changed
