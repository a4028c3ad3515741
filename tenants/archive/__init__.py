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
and every plugin's ``madrasa_tables``), so a new plugin's tables are included without changes here;
their columns are read from the database catalogue (``information_schema.columns`` on PostgreSQL,
``PRAGMA table_info`` on SQLite), so a column a migration added without a field on its table class
travels too (:func:`tenants.archive.schema.table_specs`):

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

**Modules.** :mod:`~tenants.archive.schema` (tables, columns, limits, errors),
:mod:`~tenants.archive.canonical` (canonical rows, digests), :mod:`~tenants.archive.manifest`,
:mod:`~tenants.archive.export`, :mod:`~tenants.archive.check` (validation) and
:mod:`~tenants.archive.importing` (writing, equality check); this package gathers their public names.
"""

from __future__ import annotations

from tenants.archive.canonical import TableDigest, canonical_line, canonical_row, canonical_value, db_value
from tenants.archive.check import ImportReport, MergedPerson, RemappedPerson, TableReport, validate
from tenants.archive.export import export_tenant, find_node, redact_person
from tenants.archive.importing import compare, import_archive
from tenants.archive.manifest import Manifest, ManifestFile, ManifestTable, ManifestTenant
from tenants.archive.schema import (
    CHUNK,
    EXCLUDED_TABLES,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    MAX_ARCHIVE_BYTES,
    MAX_FILE_BYTES,
    MAX_LINE_BYTES,
    MAX_MANIFEST_BYTES,
    MAX_RATIO,
    PERSON_COLUMNS,
    RATIO_FLOOR,
    ArchiveClash,
    ArchiveError,
    ArchiveRejected,
    TableSpec,
    TenantNotFound,
    catalogue_columns,
    schema_tables,
    table_specs,
)

__all__ = [
    "CHUNK",
    "EXCLUDED_TABLES",
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "MAX_ARCHIVE_BYTES",
    "MAX_FILE_BYTES",
    "MAX_LINE_BYTES",
    "MAX_MANIFEST_BYTES",
    "MAX_RATIO",
    "PERSON_COLUMNS",
    "RATIO_FLOOR",
    "ArchiveClash",
    "ArchiveError",
    "ArchiveRejected",
    "ImportReport",
    "Manifest",
    "ManifestFile",
    "ManifestTable",
    "ManifestTenant",
    "MergedPerson",
    "RemappedPerson",
    "TableDigest",
    "TableReport",
    "TableSpec",
    "TenantNotFound",
    "canonical_line",
    "canonical_row",
    "canonical_value",
    "catalogue_columns",
    "compare",
    "db_value",
    "export_tenant",
    "find_node",
    "import_archive",
    "redact_person",
    "schema_tables",
    "table_specs",
    "validate",
]
