"""Importing a validated archive: every row in one transaction, files uploaded, then the equality check.

Rows are written with ``INSERT`` in batches (PostgreSQL refuses ``COPY FROM`` on tables with
row-level security); files are uploaded before the commit and deleted again if anything fails. On
PostgreSQL the id sequences are first advanced past the imported ids through the owner connection
(the application role may not ``setval``). After the commit the subtree is exported again, digests
only, and compared with the manifest (:func:`compare`).
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import audit
from core.db import querystring
from core.invalidation import ALL
from core.scope import Scope
from core.sql import SQL, ident, slots
from core.storage import StorageError
from tenants.archive.canonical import TableDigest, canonical_line, canonical_row
from tenants.archive.check import (
    ImportReport,
    Plan,
    TableReport,
    member_lines,
    parse_line,
    remap,
    validate,
)
from tenants.archive.export import Sink, by_ids, column_list, export, redact_person
from tenants.archive.manifest import Manifest, Problems, open_zip
from tenants.archive.schema import CHUNK, ArchiveError, TableSpec, TenantNotFound

if TYPE_CHECKING:
    from core.services import Services

log = logging.getLogger("madrasa.tenants.archive")


async def _advance_sequences(services: Services, plan: Plan) -> None:
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
            quoted = SQL("quote_ident({})", table)
            rows = await _owner_fetch(
                engine, SQL("SELECT pg_get_serial_sequence({}, {}) AS s", quoted, plan.specs[table].pk)
            )
            sequence = rows[0]["s"] if rows else None
            if not sequence:
                continue
            await _owner_fetch(
                engine,
                SQL(
                    "SELECT setval({}::regclass, "
                    "GREATEST({}, COALESCE(pg_sequence_last_value({}::regclass), 1)), true)",
                    sequence,
                    int(top),
                    sequence,
                ),
            )
    except Exception as exc:
        raise ArchiveError(
            f"Cannot advance the id sequences ({exc}); run the import with MADRASA_MIGRATION_DATABASE_URL set to "
            "the owner role."
        ) from None


async def _owner_fetch(engine: Any, query: SQL) -> list[dict[str, Any]]:
    """Run a PostgreSQL statement on the owner engine (outside the application's transaction)."""
    return list(await engine.run_querystring(querystring(query, "postgres")))


async def _insert(services: Services, spec: TableSpec, rows: list[dict[str, Any]]) -> None:
    """Insert rows in one ``executemany`` inside the open transaction (one statement, many parameter rows)."""
    db = services.db
    columns = list(spec.columns)
    statement = SQL("INSERT INTO {} ({}) VALUES {}", ident(spec.name), column_list(columns), slots(len(columns)))
    assert db.in_transaction(), "rows are inserted inside the import's transaction"
    await db.executemany(statement, [[row[c] for c in columns] for row in rows])


async def _renumber_persons(services: Services, plan: Plan) -> None:
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


async def _write(services: Services, zf: zipfile.ZipFile, plan: Plan, actor_id: int | None) -> dict[str, TableDigest]:
    """Insert every row and upload every file in one transaction; returns the digests of what was written."""
    db = services.db
    storage = services.storage
    expected: dict[str, TableDigest] = {}
    uploaded: list[tuple[str, int]] = []
    sink = Problems()
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
                for _, line in member_lines(zf, table.member, sink):
                    canonical, values = parse_line(spec, line)
                    if spec.mode == "person" and values["id"] in plan.person_map:
                        continue
                    if spec.mode == "programme" and values["id"] in plan.programme_map:
                        digest.add(canonical_line(canonical_row(spec, plan.programme_rows[values["id"]])))
                        continue
                    if (spec.name, values[spec.pk]) in plan.skip:
                        digest.add(canonical_line(canonical_row(spec, plan.skip[(spec.name, values[spec.pk])])))
                        continue
                    remapped = remap(spec, values, plan.person_map)
                    remapped = remap(spec, values, plan.programme_map, spec.programme_columns) or remapped
                    if remapped:
                        remap(spec, canonical, plan.person_map)
                        remap(spec, canonical, plan.programme_map, spec.programme_columns)
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
                    async for rows in by_ids(services, spec, plan.person_map.values()):
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
    sink = Sink()
    target, _ = await export(services, node, sink, password_hashes=manifest.password_hashes)
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
    zf = open_zip(path)
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
    services.invalidation.publish(ALL)
    report = await compare(services, manifest, expected)
    report.merged_persons = plan.merged
    report.remapped_persons = plan.remapped
    report.created_ancestors = created
    return report
