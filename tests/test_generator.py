"""The data generator (``devtools/generator.py``) on SQLite and on PostgreSQL as the application role.

A small run (one region × two schools × 80 pupils) is checked for what the issue asks: class sizes,
one enrolment per pupil, unique national codes, guardians shared across schools, assignments for
every subject, a timetable without clashes (``core.school.rules.clashes`` over every slot),
Arabic names, scope columns that RLS accepts, and determinism. The demo accounts are checked on
the shared test world, which ``load_demo`` populates with the generator.

Class sizes: every class has 30–45 pupils, except in a school of fewer than 60 pupils that cannot
be split that way, which gets exactly one smaller remainder class (see ``class_sizes``).
"""

from __future__ import annotations

import os
import random
import re
import secrets
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path
from typing import Any

import pytest

from core.app import build_services
from core.demo import DEMO_SCHOOLS
from core.migrate import migrate
from core.school.rules import PUPIL_CODE_RE, STAFF_NUMBER_RE, Slot, clashes
from core.scope import Scope
from core.services import Services
from devtools.generator import (
    CELLS,
    MAX_CLASS,
    MIN_CLASS,
    GenerateStats,
    build_timetable,
    class_sizes,
    generate,
    populate_school,
    tenant_info,
)
from tests.conftest import PgServer, _create_pg, _drop_pg, make_settings, run_sync

SEED = 11
SCHOOLS = 2
PUPILS = 80
ARABIC = re.compile(r"[\u0600-\u06FF]")


@dataclass
class Generated:
    """A fresh database after one small generator run."""

    backend: str
    services: Services
    stats: GenerateStats
    progress: list[tuple[int, int]]
    school_ids: list[int]

    async def rows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        """Rows read with the platform scope (RLS hides tenant rows otherwise)."""
        db = self.services.db
        async with db.scoped(Scope.everything(), write=False):
            return await db.fetch(sql, *args)

    async def value(self, sql: str, *args: Any) -> Any:
        """One value read with the platform scope."""
        rows = await self.rows(sql, *args)
        return next(iter(rows[0].values())) if rows else None


async def fresh_services(backend: str, tmp: Path, pg: PgServer | None) -> Services:
    """Services on a migrated, empty database."""
    services = build_services(make_settings(backend, tmp, pg))
    await services.db.start()
    await migrate(services.db, services.migration_sets)
    return services


@pytest.fixture(scope="module")
def own_pg(pg_server: PgServer) -> Iterator[PgServer]:
    """A database of this module's own (the session database holds the shared test world)."""
    suffix = secrets.token_hex(4)
    server = PgServer(
        pg_server.admin_url,
        f"madrasa_gen_{suffix}",
        f"madrasa_genown_{suffix}",
        f"madrasa_genapp_{suffix}",
        secrets.token_hex(12),
    )
    run_sync(_create_pg(server))
    try:
        yield server
    finally:
        run_sync(_drop_pg(server))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
async def generated(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Generated]:
    """One region × two schools × 80 pupils, generated as the application role."""
    backend = request.param
    pg = request.getfixturevalue("own_pg") if backend == "postgres" else None
    services = await fresh_services(backend, tmp_path_factory.mktemp(f"generator-{backend}"), pg)
    calls: list[tuple[int, int]] = []
    try:
        stats = await generate(
            services.db,
            regions=1,
            schools_per_region=SCHOOLS,
            students_per_school=PUPILS,
            seed=SEED,
            progress=lambda done, total: calls.append((done, total)),
        )
        rows = await services.db.fetch(
            "SELECT id FROM tenant WHERE kind = 'school' AND slug LIKE {} ORDER BY id", f"{stats.regions[0]}-%"
        )
        yield Generated(backend, services, stats, calls, [r["id"] for r in rows])
    finally:
        await services.db.stop()


# --------------------------------------------------------------------------- pure parts


def test_class_sizes_stay_within_30_to_45():
    rng = random.Random(1)
    for pupils in range(60, 1500, 7):
        sizes = class_sizes(pupils, rng)
        assert sum(sizes) == pupils
        assert all(MIN_CLASS <= s <= MAX_CLASS for s in sizes), (pupils, sizes)
    # small schools: one remainder class at most
    assert class_sizes(45, rng) == [45]
    assert class_sizes(20, rng) == [20]
    assert class_sizes(50, rng) == [30, 20]
    assert class_sizes(0, rng) == []


def test_tight_timetables_are_still_built_without_clashes():
    """Every class and teacher at the grid's full capacity: greedy placement fails, the chain swaps finish."""
    rng = random.Random(5)
    classes = teachers = 8
    demand = [[0] * teachers for _ in range(classes)]
    for _ in range(CELLS):  # a union of random permutations: every class and teacher needs all cells
        perm = list(range(teachers))
        rng.shuffle(perm)
        for c, t in enumerate(perm):
            demand[c][t] += 1
    lessons = [[(f"S{t}", t, h) for t, h in enumerate(row) if h] for row in demand]
    grids = build_timetable(lessons, teachers, rng)
    busy: dict[int, set[int]] = defaultdict(set)
    for c, grid in enumerate(grids):
        assert len(grid) == CELLS
        placed = Counter(t for _, t in grid.values())
        assert placed == Counter({t: h for t, h in enumerate(demand[c]) if h})
        for cell, (_, t) in grid.items():
            assert cell not in busy[t], f"teacher {t} twice in cell {cell}"
            busy[t].add(cell)
    with pytest.raises(ValueError):
        build_timetable([[("MATH", 0, CELLS + 1)]], 1, rng)


# --------------------------------------------------------------------------- a generated region


async def test_run_reports_counts_and_progress(generated):
    stats = generated.stats
    assert stats.schools == SCHOOLS and len(generated.school_ids) == SCHOOLS
    assert stats.regions == [f"gen-r{SEED}-1"]
    assert stats.counts["student"] == SCHOOLS * PUPILS
    assert stats.counts["enrolment"] == SCHOOLS * PUPILS
    assert stats.rows == sum(stats.counts.values()) and stats.seconds > 0
    assert generated.progress[0] == (0, SCHOOLS) and generated.progress[-1] == (SCHOOLS, SCHOOLS)
    provinces = await generated.value(
        "SELECT COUNT(*) FROM tenant WHERE kind = 'province' AND parent_id = (SELECT id FROM tenant WHERE slug = {})",
        stats.regions[0],
    )
    assert provinces >= 2
    for table in ("student", "enrolment", "guardianship", "timetable_slot", "teaching_assignment", "staff", "room"):
        assert await generated.value(f"SELECT COUNT(*) FROM {table}") == stats.counts[table], table


async def test_every_row_carries_its_schools_scope(generated):
    paths = {r["id"]: r["path"] for r in await generated.rows("SELECT id, path FROM tenant WHERE kind = 'school'")}
    for table in (
        "room",
        "school_class",
        "student",
        "guardianship",
        "staff",
        "enrolment",
        "teaching_assignment",
        "timetable_slot",
    ):
        for row in await generated.rows(f"SELECT DISTINCT region_id, province_id, school_id FROM {table}"):
            expected = f"1/{row['region_id']}/{row['province_id']}/{row['school_id']}/"
            assert paths[row["school_id"]] == expected, (table, row)


async def test_classes_have_30_to_45_pupils_and_every_pupil_one_enrolment(generated):
    sizes = await generated.rows(
        "SELECT c.id, c.school_id, COUNT(e.id) AS n FROM school_class c LEFT JOIN enrolment e ON e.class_id = c.id "
        "AND e.ends_on IS NULL GROUP BY c.id, c.school_id"
    )
    assert sizes and all(MIN_CLASS <= r["n"] <= MAX_CLASS for r in sizes), sizes
    assert "TEST-1" not in {r["name"] for r in await generated.rows("SELECT name FROM school_class")}
    counts = await generated.rows(
        "SELECT s.id, s.school_id, COUNT(e.id) AS n, MIN(c.school_id) AS class_school FROM student s "
        "LEFT JOIN enrolment e ON e.student_id = s.id AND e.ends_on IS NULL "
        "LEFT JOIN school_class c ON c.id = e.class_id GROUP BY s.id, s.school_id"
    )
    assert len(counts) == SCHOOLS * PUPILS
    assert all(r["n"] == 1 and r["class_school"] == r["school_id"] for r in counts)


async def test_pupil_codes_are_unique_and_well_formed_and_names_are_bilingual(generated):
    rows = await generated.rows("SELECT national_code, first_name, last_name, first_name_ar, last_name_ar FROM student")
    codes = [r["national_code"] for r in rows]
    assert len(set(codes)) == len(codes) == SCHOOLS * PUPILS
    assert all(PUPIL_CODE_RE.match(c) for c in codes)
    assert all(ARABIC.search(r["first_name_ar"]) and ARABIC.search(r["last_name_ar"]) for r in rows)
    assert all(r["first_name"].isascii() and r["first_name"] for r in rows)
    assert len({r["last_name"] for r in rows}) > 20


async def test_teachers_have_accounts_memberships_and_staff_numbers(generated):
    teachers = await generated.rows(
        "SELECT p.id, p.email, p.password_hash, t.slug, st.staff_number, st.school_id FROM membership m "
        "JOIN person p ON p.id = m.person_id JOIN tenant t ON t.id = m.tenant_id "
        "LEFT JOIN staff st ON st.person_id = p.id WHERE m.role = 'teacher'"
    )
    assert teachers
    for t in teachers:
        assert re.fullmatch(rf"t\d{{4}}@{re.escape(t['slug'])}\.madrasa\.test", t["email"]), t["email"]
        assert t["password_hash"] is None
        assert t["staff_number"] and STAFF_NUMBER_RE.match(t["staff_number"])
    numbers = [t["staff_number"] for t in teachers]
    assert len(set(numbers)) == len(numbers)
    assigned = {r["person_id"] for r in await generated.rows("SELECT DISTINCT person_id FROM teaching_assignment")}
    assert assigned == {t["id"] for t in teachers}


async def test_guardians_are_shared_between_siblings_in_two_schools(generated):
    shared = await generated.rows(
        "SELECT person_id FROM guardianship GROUP BY person_id HAVING COUNT(DISTINCT school_id) > 1"
    )
    assert shared
    for row in shared:
        schools = {
            r["school_id"]
            for r in await generated.rows("SELECT school_id FROM guardianship WHERE person_id = {}", row["person_id"])
        }
        memberships = {
            r["tenant_id"]
            for r in await generated.rows(
                "SELECT tenant_id FROM membership WHERE person_id = {} AND role = 'parent'", row["person_id"]
            )
        }
        assert schools <= memberships
    # every pupil has a guardian; no duplicate parent membership
    orphans = await generated.value(
        "SELECT COUNT(*) FROM student s WHERE NOT EXISTS (SELECT 1 FROM guardianship g WHERE g.student_id = s.id)"
    )
    assert orphans == 0
    duplicates = await generated.value(
        "SELECT COUNT(*) FROM (SELECT person_id, tenant_id FROM membership GROUP BY person_id, role, tenant_id "
        "HAVING COUNT(*) > 1) d"
    )
    assert duplicates == 0


async def test_every_class_has_its_levels_subjects_assigned_and_timetabled(generated):
    classes = await generated.rows("SELECT id, level_code, track_code FROM school_class")
    national = await generated.rows(
        "SELECT level_code, track_code, subject_code, weekly_hours FROM subject_coefficient WHERE tenant_id IS NULL"
    )
    for klass in classes:
        expected = {
            r["subject_code"]: round(float(r["weekly_hours"]))
            for r in national
            if r["level_code"] == klass["level_code"] and r["track_code"] == klass["track_code"]
        }
        assert expected
        assigned = {
            r["subject_code"]: r["person_id"]
            for r in await generated.rows(
                "SELECT subject_code, person_id FROM teaching_assignment WHERE class_id = {}", klass["id"]
            )
        }
        assert set(assigned) == set(expected)
        hours: Counter[str] = Counter()
        for slot in await generated.rows(
            "SELECT subject_code, teacher_id, starts_at, ends_at FROM timetable_slot WHERE class_id = {}", klass["id"]
        ):
            assert slot["teacher_id"] == assigned[slot["subject_code"]]
            start, end = _t(slot["starts_at"]), _t(slot["ends_at"])
            hours[slot["subject_code"]] += end.hour - start.hour
        assert dict(hours) == expected


async def test_timetable_has_no_clash(generated):
    rows = await generated.rows(
        "SELECT s.id, s.weekday, s.starts_at, s.ends_at, s.valid_from, s.valid_to, s.class_id, s.teacher_id, "
        "s.room_id, s.school_id, r.school_id AS room_school FROM timetable_slot s JOIN room r ON r.id = s.room_id"
    )
    assert len(rows) > 30
    slots = [
        Slot(
            id=r["id"],
            weekday=r["weekday"],
            starts_at=_t(r["starts_at"]),
            ends_at=_t(r["ends_at"]),
            valid_from=_d(r["valid_from"]),
            valid_to=_d(r["valid_to"]),
            class_id=r["class_id"],
            teacher_id=r["teacher_id"],
            room_id=r["room_id"],
        )
        for r in rows
    ]
    assert all(r["room_school"] == r["school_id"] for r in rows)
    assert all(1 <= s.weekday <= 6 and time(8) <= s.starts_at < s.ends_at <= time(18) for s in slots)
    for slot in slots:
        assert clashes(slot, slots) == [], slot


async def test_rls_lets_a_school_see_exactly_its_generated_rows(generated):
    """On PostgreSQL the run wrote as the application role; a school's scope sees its own pupils only."""
    db = generated.services.db
    for school_id in generated.school_ids:
        async with db.scoped(Scope(nodes=frozenset({school_id})), write=False):
            assert await db.fetchval("SELECT COUNT(*) FROM student") == (
                PUPILS if generated.backend == "postgres" else SCHOOLS * PUPILS
            )
            assert await db.fetchval("SELECT COUNT(*) FROM student WHERE school_id = {}", school_id) == PUPILS


# --------------------------------------------------------------------------- determinism and re-runs


async def _snapshot(services: Services) -> list[tuple[Any, ...]]:
    db = services.db
    async with db.scoped(Scope.everything(), write=False):
        pupils = await db.fetch(
            "SELECT national_code, first_name, last_name, first_name_ar, birth_date FROM student ORDER BY id"
        )
        slots = await db.fetch(
            "SELECT class_id, subject_code, teacher_id, room_id, weekday, starts_at FROM timetable_slot ORDER BY id"
        )
        people = await db.fetch("SELECT email, full_name_ar FROM person ORDER BY id")
        tenants = await db.fetch("SELECT slug, name_fr, name_ar FROM tenant ORDER BY id")
    return [tuple(r.values()) for r in [*pupils, *slots, *people, *tenants]]


async def test_same_seed_same_data_in_a_fresh_database(tmp_path):
    snapshots = []
    for run, seed in enumerate((SEED, SEED, SEED + 1)):
        services = await fresh_services("sqlite", tmp_path / f"run{run}", None)
        try:
            await generate(services.db, regions=1, schools_per_region=2, students_per_school=50, seed=seed)
            snapshots.append(await _snapshot(services))
        finally:
            await services.db.stop()
    assert snapshots[0] == snapshots[1]
    assert snapshots[0] != snapshots[2]


async def test_second_run_with_the_same_seed_adds_a_new_region_without_collisions(tmp_path):
    services = await fresh_services("sqlite", tmp_path, None)
    try:
        first = await generate(services.db, regions=2, schools_per_region=1, students_per_school=40, seed=3)
        second = await generate(services.db, regions=1, schools_per_region=2, students_per_school=40, seed=3)
        assert first.regions == ["gen-r3-1", "gen-r3-2"] and second.regions == ["gen-r3-3"]
        db = services.db
        async with db.scoped(Scope.everything(), write=False):
            assert await db.fetchval("SELECT COUNT(DISTINCT national_code) FROM student") == 160
            # two regions in the first run: some family has children in both
            cross_region = await db.fetchval(
                "SELECT COUNT(*) FROM (SELECT person_id FROM guardianship GROUP BY person_id "
                "HAVING COUNT(DISTINCT region_id) > 1) x"
            )
            assert cross_region > 0
    finally:
        await services.db.stop()


async def test_populate_school_fills_an_existing_school_and_avoids_taken_codes(tmp_path):
    services = await fresh_services("sqlite", tmp_path, None)
    db = services.db
    try:
        stats = await generate(db, regions=1, schools_per_region=1, students_per_school=35, seed=8)
        row = await db.fetchrow("SELECT * FROM tenant WHERE kind = 'school' AND slug LIKE {}", f"{stats.regions[0]}-%")
        assert row is not None
        school = tenant_info(row)
        result = await populate_school(db, school, random.Random(2), 70)  # its own run and transaction
        assert len(result.student_ids) == 70 and len(result.class_ids) == 2
        async with db.scoped(Scope.everything(), write=False):
            assert await db.fetchval("SELECT COUNT(*) FROM student WHERE school_id = {}", school.id) == 105
            emails = [
                r["email"]
                for r in await db.fetch(
                    "SELECT email FROM person WHERE email LIKE {} ORDER BY id", f"t%@{school.slug}.madrasa.test"
                )
            ]
            assert len(emails) == len(set(emails)) and emails[-1].startswith(f"t{len(emails):04d}@")
            names = [r["name"] for r in await db.fetch("SELECT name FROM school_class WHERE school_id = {}", school.id)]
            assert len(names) == len(set(names))
    finally:
        await db.stop()


def test_generate_command(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "MADRASA_DATA_DIR": str(tmp_path), "MADRASA_LOG_LEVEL": "WARNING"}
    madrasa = str(Path(sys.executable).parent / "madrasa")
    args = ["generate", "--regions", "1", "--schools-per-region", "2", "--students-per-school", "40", "--seed", "4"]
    done = subprocess.run([madrasa, *args], capture_output=True, text=True, timeout=120, env={**os.environ, **env})
    assert done.returncode == 0, done.stderr
    assert "gen-r4-1" in done.stdout and "student" in done.stdout and "rows/s" in done.stdout
    assert "2/2 schools" in done.stderr
    bad = subprocess.run(
        [madrasa, "generate", "--regions", "0"], capture_output=True, text=True, timeout=60, env={**os.environ, **env}
    )
    assert bad.returncode == 2


# --------------------------------------------------------------------------- the demo


async def test_demo_parent_has_children_in_two_regions(world):
    # without a tenant prefix the scope is the union of the parent's memberships: both regions
    response = await world.api("GET", "/api/v1/me/children", as_="parent@madrasa.demo")
    assert response.status_code == 200, response.text
    children = response.json()
    assert len(children) == 2
    db = world.services.db
    async with db.scoped(Scope.everything(), write=False):
        rows = await db.fetch(
            "SELECT s.id, s.region_id, t.slug, e.class_id FROM guardianship g JOIN student s ON s.id = g.student_id "
            "JOIN tenant t ON t.id = s.school_id JOIN enrolment e ON e.student_id = s.id AND e.ends_on IS NULL "
            "JOIN person p ON p.id = g.person_id WHERE p.email = 'parent@madrasa.demo'"
        )
        memberships = await db.fetch(
            "SELECT t.slug FROM membership m JOIN tenant t ON t.id = m.tenant_id JOIN person p ON p.id = m.person_id "
            "WHERE p.email = 'parent@madrasa.demo' AND m.role = 'parent'"
        )
    assert {r["slug"] for r in rows} == {"lycee-ibn-batouta", "ecole-al-amal"}
    assert len({r["region_id"] for r in rows}) == 2 and all(r["class_id"] for r in rows)
    assert {r["slug"] for r in memberships} == {"lycee-ibn-batouta", "ecole-al-amal"}


async def test_demo_student_has_a_class_with_a_timetable(world):
    response = await world.api("GET", "/api/v1/me/timetable", as_="student@madrasa.demo", tenant="lycee-ibn-batouta")
    assert response.status_code == 200, response.text
    assert len(response.json()) >= 10
    db = world.services.db
    async with db.scoped(Scope.everything(), write=False):
        pupil = await db.fetchrow(
            "SELECT s.school_id, e.class_id FROM student s JOIN person p ON p.id = s.person_id "
            "JOIN enrolment e ON e.student_id = s.id AND e.ends_on IS NULL WHERE p.email = 'student@madrasa.demo'"
        )
        assert pupil is not None and pupil["school_id"] == world.ids["lycee-ibn-batouta"]
        assert await db.fetchval("SELECT COUNT(*) FROM timetable_slot WHERE class_id = {}", pupil["class_id"]) > 0


async def test_demo_teacher_teaches_with_slots_and_schools_are_populated(world):
    response = await world.api("GET", "/api/v1/me/timetable", as_="teacher@madrasa.demo", tenant="lycee-ibn-batouta")
    assert response.status_code == 200, response.text
    assert response.json()
    db = world.services.db
    async with db.scoped(Scope.everything(), write=False):
        # The demo's pupils are those of the demo families (other tests add pupils of their own to these schools).
        for slug, _, planned in DEMO_SCHOOLS:
            pupils = await db.fetchval(
                "SELECT COUNT(DISTINCT s.id) FROM student s JOIN guardianship g ON g.student_id = s.id "
                "JOIN person p ON p.id = g.person_id WHERE s.school_id = {} "
                "AND (p.email LIKE '%@parents.demo.madrasa.test' OR p.email = 'parent@madrasa.demo')",
                world.ids[slug],
            )
            assert pupils == planned and 60 <= planned <= 130, (slug, pupils, planned)


def _t(value: Any) -> time:
    return value if isinstance(value, time) else time.fromisoformat(str(value))


def _d(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
