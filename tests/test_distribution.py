"""Distribution by region on Citus (``docs/distribution.md``): every table is classified, and no table breaks it.

The migrations of core and of every built-in plugin run on a fresh PostgreSQL database; the catalogue is then
read back. The rule comes from how row-level security is generated (``core.migrate.Migrator.enable_rls``):
a table with the scope columns (``region_id``/``province_id``/``school_id``) is tenant-scoped, has the
policy, and is **distributed** by ``region_id``. Each such table must have ``region_id``, not null, in every
primary or unique key. Every other table is a **reference** table (replicated to every node) or a **local**
table (on the coordinator only). Today's keys use a serial ``id`` alone; they are listed below, one by one,
with what each becomes, so that only the current state passes: a new table, key or nullable ``region_id``
fails until it is made distributable or classified here (the one place, read by the doc).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from core.app import build_plugin_host, build_services
from core.migrate import migrate
from tests.conftest import PgServer, make_settings, pg_database, run_sync

DISTRIBUTION_COLUMN = "region_id"
SCOPE_COLUMNS = ("region_id", "province_id", "school_id")

#: Replicated to every node (``create_reference_table``): small or national, and joined with distributed tables.
REFERENCE_TABLES = {
    "tenant": "the tenant tree: every scope, path and slug lookup joins it",
    "tenant_domain": "custom hosts, resolved before any scope",
    "programme": "cohorts spanning regions",
    "programme_school": "cohorts spanning regions",
    "person": "one identity across regions (a parent with children in two regions); joined with guardianship, staff",
    "membership": "grants, read to build the scope before any query on distributed tables",
    "module_setting": "module switches read down the tree, from the platform to a school",
    "level": "national reference data",
    "track": "national reference data",
    "subject": "national reference data",
    "school_year": "national reference data",
    "subject_coefficient": "national rows with region and school overrides, read down the tree",
    "term": "national rows with region and school overrides, read down the tree",
    "holiday": "national rows with region and school overrides, read down the tree",
    "grade_policy": "a setting per node, read down the tree",
    "grade_deadline": "a setting per node, read down the tree",
    "attendance_reason": "a setting per node, read down the tree",
    "attendance_rule": "a setting per node, read down the tree",
    "retention_period": "a setting per region (or the platform's)",
    "notification_policy": "a setting per node (kinds that may use SMS, mandatory kinds), read down the tree",
}
#: Kept on the coordinator only: per person or per process, reached by a secret or one's own id, never joined
#: with a distributed table in one statement.
LOCAL_TABLES = {
    "auth_session": "sessions, by hashed secret or session id",
    "login_attempt": "throttling, by e-mail and address",
    "password_reset": "by hashed token",
    "calendar_feed": "by hashed token",
    "attendance_contact": "one's own phone number, by person id",
    "madrasa_migration": "the migrations applied",
    "notification_preference": "one's own notification choices per kind, by person id",
    "notification_setting": "one's own quiet hours, digest and SMS number, by person id",
    "notification_rate": "per-person sending counters, by person id",
}
#: Distributed tables whose primary key is today a serial ``id`` alone; at distribution it becomes
#: ``(region_id, id)`` (the sequence lives on the coordinator, so ids stay unique cluster-wide).
PRIMARY_KEY_ON_ID = frozenset(
    {
        "attendance_alert",
        "attendance_delivery",
        "attendance_justification",
        "attendance_mark",
        "attendance_notice",
        "attendance_session",
        "audit_log",
        "duty_slot",
        "enrolment",
        "grade_assessment",
        "grade_bulletin",
        "grade_class_stats",
        "grade_general_result",
        "grade_mark",
        "grade_publication",
        "grade_sheet",
        "grade_subject_result",
        "grade_term_close",
        "guardian_invitation",
        "guardianship",
        "job",
        "notification",
        "notification_batch",
        "notification_delivery",
        "onboarding_batch",
        "onboarding_invitation",
        "oneroster_link",
        "room",
        "school_class",
        "school_profile",
        "staff",
        "stored_file",
        "stored_file_reader",
        "student",
        "teaching_assignment",
        "timetable_slot",
    }
)
_SAME = "its ids belong to one region: with region_id first it is the same constraint"
#: Unique keys of distributed tables without ``region_id`` today, and what each becomes.
UNIQUE_KEYS_WITHOUT_REGION = {
    "attendance_alert_unique": _SAME,
    "attendance_delivery_unique": _SAME,
    "attendance_delivery_alert": _SAME,
    "attendance_mark_unique": _SAME,
    "attendance_notice_unique": _SAME,
    "attendance_session_unique": _SAME,
    "enrolment_one_open": _SAME + " (a pupil's open enrolment is in their school's region)",
    "grade_general_result_unique": _SAME,
    "grade_mark_unique": _SAME,
    "grade_sheet_unique": _SAME,
    "grade_subject_result_unique": _SAME,
    "grade_term_close_unique": _SAME,
    "guardianship_unique": _SAME,
    "notification_batch_person": _SAME + " (a batch is sent within one region)",
    "notification_delivery_unique": _SAME,
    "oneroster_link_key": _SAME,
    "room_name": _SAME,
    "school_class_name": _SAME,
    "school_profile_school_id_key": _SAME,
    "stored_file_key_key": _SAME + " (keys start with the tenant's id)",
    "stored_file_reader_unique": _SAME,
    "teaching_assignment_unique": _SAME,
    "guardian_invitation_token_hash_key": "a random 256-bit token, looked up before the scope: a reference lookup "
    "table token_hash -> region_id",
    "onboarding_invitation_token_hash_key": "a random 256-bit token, looked up before the scope: a reference lookup "
    "table token_hash -> region_id",
    "student_national_code_key": "national uniqueness: a reference table national_code -> region_id, written in the "
    "same transaction",
    "staff_staff_number_key": "national uniqueness: a reference table staff_number -> region_id",
    "staff_person_id_key": "one staff record per person nationally: a reference table person_id -> region_id",
}
#: Distributed tables whose ``region_id`` may be NULL today (platform-level rows); Citus refuses NULL in the
#: distribution column, so those rows take the platform's node id as region (``0``) before distribution.
NULLABLE_REGION = {
    "audit_log": "platform and programme actions",
    "job": "platform jobs (archives, a person's data export)",
    "notification": "notifications sent at platform level (no school or region)",
    "notification_batch": "batches sent at platform level",
    "notification_delivery": "deliveries of platform-level notifications",
    "stored_file": "platform files",
    "stored_file_reader": "readers of platform files",
    "guardian_invitation": "written before the pupil's school is known",
    "oneroster_link": "platform-level links",
}


@dataclass
class Catalogue:
    """What the migrated database declares, table by table."""

    rls: set[str] = field(default_factory=set)
    columns: dict[str, dict[str, bool]] = field(default_factory=dict)  # table -> column -> NOT NULL
    unique_keys: dict[str, list[tuple[str, bool, list[str]]]] = field(default_factory=dict)  # (index, primary, cols)


CATALOGUE_SQL = """
SELECT c.relname AS table, c.relrowsecurity AS rls,
       (SELECT json_object_agg(a.attname, a.attnotnull) FROM pg_attribute a
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
       (SELECT json_agg(json_build_array(i.relname, x.indisprimary,
               (SELECT coalesce(json_agg(a.attname ORDER BY k.n), '[]')
                  FROM unnest(x.indkey) WITH ORDINALITY k(attnum, n)
                  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum)))
          FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = c.oid AND x.indisunique) AS keys
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
"""


async def read_catalogue(url: str) -> Catalogue:
    """The tables of the ``public`` schema: row-level security, columns, primary and unique keys."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(CATALOGUE_SQL)
    finally:
        await conn.close()
    found = Catalogue()
    for r in rows:
        if r["rls"]:
            found.rls.add(r["table"])
        found.columns[r["table"]] = json.loads(r["columns"])
        found.unique_keys[r["table"]] = [(k[0], k[1], k[2]) for k in json.loads(r["keys"] or "[]")]
    return found


def problems(cat: Catalogue) -> list[str]:
    """Every way the schema breaks distribution by region or disagrees with the classification above."""
    out: list[str] = []
    tables = set(cat.columns)
    scoped = {t for t, cols in cat.columns.items() if any(c in cols for c in SCOPE_COLUMNS)}
    for t in sorted(scoped ^ cat.rls):
        out.append(f"{t}: scope columns and row-level security disagree (rls={t in cat.rls})")
    distributed = scoped | cat.rls
    for t in sorted(tables - distributed - set(REFERENCE_TABLES) - set(LOCAL_TABLES)):
        out.append(f"{t}: not classified (no scope columns; add it to REFERENCE_TABLES or LOCAL_TABLES)")
    for t in sorted(distributed & (set(REFERENCE_TABLES) | set(LOCAL_TABLES))):
        out.append(f"{t}: tenant-scoped, but classified as reference or local")
    for t in sorted((set(REFERENCE_TABLES) | set(LOCAL_TABLES)) - tables):
        out.append(f"{t}: classified, but no such table")
    listed_keys: set[str] = set()
    for t in sorted(distributed):
        cols = cat.columns[t]
        if DISTRIBUTION_COLUMN not in cols:
            out.append(f"{t}: tenant-scoped without {DISTRIBUTION_COLUMN}")
            continue
        if not cols[DISTRIBUTION_COLUMN] and t not in NULLABLE_REGION:
            out.append(f"{t}.{DISTRIBUTION_COLUMN} may be NULL (Citus refuses NULL in the distribution column)")
        if cols[DISTRIBUTION_COLUMN] and t in NULLABLE_REGION:
            out.append(f"{t}.{DISTRIBUTION_COLUMN} is NOT NULL now: remove it from NULLABLE_REGION")
        for index, primary, key in cat.unique_keys.get(t, []):
            if DISTRIBUTION_COLUMN in key:
                if index in UNIQUE_KEYS_WITHOUT_REGION or (primary and t in PRIMARY_KEY_ON_ID):
                    out.append(f"{index}: includes {DISTRIBUTION_COLUMN} now: remove it from the allow-list")
                continue
            if primary and key == ["id"] and t in PRIMARY_KEY_ON_ID:
                listed_keys.add(f"{t}:pkey")
            elif not primary and index in UNIQUE_KEYS_WITHOUT_REGION:
                listed_keys.add(index)
            else:
                kind = "primary key" if primary else "unique key"
                out.append(f"{index} on {t} ({', '.join(key)}): {kind} without {DISTRIBUTION_COLUMN}")
    for stale in sorted({f"{t}:pkey" for t in PRIMARY_KEY_ON_ID} - listed_keys):
        out.append(f"{stale.split(':')[0]}: in PRIMARY_KEY_ON_ID, but no primary key on id alone")
    for stale in sorted(set(UNIQUE_KEYS_WITHOUT_REGION) - listed_keys):
        out.append(f"{stale}: in UNIQUE_KEYS_WITHOUT_REGION, but no such key without {DISTRIBUTION_COLUMN}")
    return out


async def _migrate(pg: PgServer, tmp: Path) -> None:
    settings = make_settings("postgres", tmp, pg, allowed_plugins=())  # core and the built-in plugins
    services = build_services(settings, plugins=build_plugin_host(settings))
    await services.db.start()
    try:
        await migrate(services.db, services.migration_sets)
    finally:
        await services.db.stop()


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A fresh database with every migration applied (dropped afterwards)."""
    with pg_database() as pg:
        run_sync(_migrate(pg, tmp_path_factory.mktemp("distribution")))
        yield pg


def test_every_table_is_distributable_or_classified(migrated):
    cat = run_sync(read_catalogue(migrated.url(migrated.owner)))
    assert len(cat.rls) >= 30  # the migrations ran
    found = problems(cat)
    assert found == [], "\n".join(found)


def test_a_new_table_that_breaks_distribution_is_refused(migrated):
    """A later table with the scope columns but a key without region_id (or a table nobody classified) fails."""

    async def add_tables() -> None:
        conn = await asyncpg.connect(migrated.url(migrated.owner))
        try:
            await conn.execute(
                "CREATE TABLE late_scoped (id SERIAL PRIMARY KEY, region_id INTEGER, province_id INTEGER, "
                "school_id INTEGER, code TEXT UNIQUE)"
            )
            await conn.execute("ALTER TABLE late_scoped ENABLE ROW LEVEL SECURITY")
            await conn.execute("CREATE TABLE late_plain (id SERIAL PRIMARY KEY)")
            await conn.execute(
                "CREATE TABLE late_good (region_id INTEGER NOT NULL, id SERIAL, school_id INTEGER, "
                "PRIMARY KEY (region_id, id))"
            )
            await conn.execute("ALTER TABLE late_good ENABLE ROW LEVEL SECURITY")
        finally:
            await conn.close()

    async def drop_tables() -> None:
        conn = await asyncpg.connect(migrated.url(migrated.owner))
        try:
            await conn.execute("DROP TABLE late_scoped, late_plain, late_good")
        finally:
            await conn.close()

    run_sync(add_tables())
    try:
        found = problems(run_sync(read_catalogue(migrated.url(migrated.owner))))
    finally:
        run_sync(drop_tables())
    assert sorted(found) == [
        "late_plain: not classified (no scope columns; add it to REFERENCE_TABLES or LOCAL_TABLES)",
        "late_scoped.region_id may be NULL (Citus refuses NULL in the distribution column)",
        "late_scoped_code_key on late_scoped (code): unique key without region_id",
        "late_scoped_pkey on late_scoped (id): primary key without region_id",
    ]


def test_the_document_lists_the_same_tables():
    """``docs/distribution.md`` names every reference and local table, and the DDL for each distributed one."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "distribution.md").read_text()
    for table in [*REFERENCE_TABLES, *LOCAL_TABLES]:
        assert f"`{table}`" in text, table
    for table in PRIMARY_KEY_ON_ID:
        assert f"create_distributed_table('{table}', 'region_id'" in text, table
    for table in REFERENCE_TABLES:
        assert f"create_reference_table('{table}')" in text, table
