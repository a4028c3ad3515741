"""The demo: two regions with provinces and schools, a programme across both, one account per role."""

from __future__ import annotations

import json
import random
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core import audit
from core.db import Database
from core.invalidation import ALL
from core.plugins import resolve
from core.scope import Scope
from core.services import Services
from devtools.generator import GeneratorRun, populate_school, tenant_info

DEMO_MARKER = "casablanca-settat"
#: Seed of the demo's generated people and timetables (the same demo on every machine).
DEMO_SEED = 2026
# (school slug, cycle, pupils): small, so ``make demo`` and every test world stay quick.
DEMO_SCHOOLS: list[tuple[str, str, int]] = [
    ("lycee-ibn-batouta", "lycee", 100),
    ("college-al-khawarizmi", "college", 90),
    ("lycee-moulay-youssef", "lycee", 90),
    ("ecole-al-amal", "primaire", 120),
]
#: The demo teacher teaches this subject in lycee-ibn-batouta.
DEMO_TEACHER_SUBJECT = "MATH"
# The demo family: the parent account is the father of the student account (lycee-ibn-batouta,
# Casablanca-Settat) and of his little sister in the other region (ecole-al-amal, Rabat-Salé-Kénitra).
# Not lycee-moulay-youssef: the isolation suite (tests/test_isolation.py) uses that school as the
# one the parent account must never reach.
# (school slug, gender, first name, first name in Arabic, student account?)
DEMO_CHILDREN: list[tuple[str, str, str, str, bool]] = [
    ("lycee-ibn-batouta", "M", "Amine", "أمين", True),
    ("ecole-al-amal", "F", "Yasmine", "ياسمين", False),
]
DEMO_FAMILY_NAME = ("El Fassi", "الفاسي")

# (slug, kind, parent slug, name_fr, name_ar, name_en, code)
TREE: list[tuple[str, str, str, str, str, str, str | None]] = [
    (
        "casablanca-settat",
        "region",
        "platform",
        "Casablanca-Settat",
        "جهة الدار البيضاء سطات",
        "Casablanca-Settat",
        "06",
    ),
    (
        "rabat-sale-kenitra",
        "region",
        "platform",
        "Rabat-Salé-Kénitra",
        "جهة الرباط سلا القنيطرة",
        "Rabat-Salé-Kénitra",
        "04",
    ),
    (
        "casablanca-anfa",
        "province",
        "casablanca-settat",
        "Casablanca-Anfa",
        "الدار البيضاء أنفا",
        "Casablanca-Anfa",
        "141",
    ),
    ("settat", "province", "casablanca-settat", "Settat", "سطات", "Settat", "511"),
    ("rabat", "province", "rabat-sale-kenitra", "Rabat", "الرباط", "Rabat", "421"),
    ("kenitra", "province", "rabat-sale-kenitra", "Kénitra", "القنيطرة", "Kenitra", "281"),
    (
        "lycee-ibn-batouta",
        "school",
        "casablanca-anfa",
        "Lycée Ibn Batouta",
        "ثانوية ابن بطوطة",
        "Ibn Batouta High School",
        "14101A",
    ),
    (
        "college-al-khawarizmi",
        "school",
        "settat",
        "Collège Al Khawarizmi",
        "إعدادية الخوارزمي",
        "Al Khawarizmi Middle School",
        "51102B",
    ),
    (
        "lycee-moulay-youssef",
        "school",
        "rabat",
        "Lycée Moulay Youssef",
        "ثانوية مولاي يوسف",
        "Moulay Youssef High School",
        "42103C",
    ),
    ("ecole-al-amal", "school", "kenitra", "École Al Amal", "مدرسة الأمل", "Al Amal Primary School", "28104D"),
]

# (email, role, tenant slug or programme slug, full name, full name in Arabic)
ACCOUNTS: list[tuple[str, str, str, str, str]] = [
    ("admin@madrasa.demo", "platform_admin", "platform", "Nadia Platform", "نادية"),
    ("region.casa@madrasa.demo", "region_admin", "casablanca-settat", "Karim Bennani", "كريم بناني"),
    ("region.rabat@madrasa.demo", "region_admin", "rabat-sale-kenitra", "Salma Alaoui", "سلمى العلوي"),
    ("province.anfa@madrasa.demo", "province_admin", "casablanca-anfa", "Youssef Tazi", "يوسف التازي"),
    ("programme@madrasa.demo", "programme_manager", "nouveau-lycee", "Hind Berrada", "هند برادة"),
    ("director@madrasa.demo", "school_director", "lycee-ibn-batouta", "Mohammed Idrissi", "محمد الإدريسي"),
    ("supervisor@madrasa.demo", "supervisor", "lycee-ibn-batouta", "Latifa Benjelloun", "لطيفة بنجلون"),
    ("teacher@madrasa.demo", "teacher", "lycee-ibn-batouta", "Fatima Zahra Amrani", "فاطمة الزهراء العمراني"),
    ("parent@madrasa.demo", "parent", "lycee-ibn-batouta", "Rachid El Fassi", "رشيد الفاسي"),
    ("student@madrasa.demo", "student", "lycee-ibn-batouta", "Amine El Fassi", "أمين الفاسي"),
]


@dataclass
class DemoAccount:
    """A demo login."""

    email: str
    password: str
    role: str
    tenant: str


async def demo_loaded(services: Services) -> bool:
    """Whether the demo data is already in the database."""
    return await services.db.fetchval("SELECT id FROM tenant WHERE slug = {}", DEMO_MARKER) is not None


async def load_demo(services: Services) -> list[DemoAccount]:
    """Create the demo tree, programme and accounts in one transaction; returns the accounts."""
    db = services.db
    now = datetime.now(UTC)
    ids: dict[str, int] = {}
    accounts: list[DemoAccount] = []
    async with db.scoped(Scope.everything()):
        root = await db.fetchrow("SELECT id, path FROM tenant WHERE kind = 'platform'")
        assert root is not None, "run migrations first"
        ids["platform"] = root["id"]
        paths = {"platform": root["path"]}
        for slug, kind, parent, name_fr, name_ar, name_en, code in TREE:
            row = await db.fetchrow(
                "INSERT INTO tenant (kind, parent_id, path, slug, code, name_ar, name_fr, name_en, status, "
                "default_locale, created_at) VALUES ({}, {}, '', {}, {}, {}, {}, {}, 'active', {}, {}) RETURNING id",
                kind,
                ids[parent],
                slug,
                code,
                name_ar,
                name_fr,
                name_en,
                "ar" if kind == "school" else "fr",
                now,
            )
            assert row is not None
            ids[slug] = row["id"]
            paths[slug] = f"{paths[parent]}{row['id']}/"
            await db.execute("UPDATE tenant SET path = {} WHERE id = {}", paths[slug], row["id"])
        await db.execute(
            "UPDATE tenant SET primary_color = '#1d4e89', secondary_color = '#8f6200' "
            "WHERE slug = 'rabat-sale-kenitra' OR path LIKE {}",
            paths["rabat-sale-kenitra"] + "%",
        )
        programme = await db.fetchrow(
            "INSERT INTO programme (slug, name_ar, name_fr, name_en, created_at) VALUES ({}, {}, {}, {}, {}) "
            "RETURNING id",
            "nouveau-lycee",
            "نموذج الثانوية الجديد",
            "Nouveau modèle de lycée",
            "New high-school model",
            now,
        )
        assert programme is not None
        for school in ("lycee-ibn-batouta", "lycee-moulay-youssef"):
            await db.execute(
                "INSERT INTO programme_school (programme_id, tenant_id) VALUES ({}, {})", programme["id"], ids[school]
            )
        people: dict[str, int] = {}
        for email, role, target, name, name_ar in ACCOUNTS:
            password = f"demo-{secrets.token_hex(4)}"
            person = await db.fetchrow(
                "INSERT INTO person (email, password_hash, full_name, full_name_ar, locale, active, created_at) "
                "VALUES ({}, {}, {}, {}, {}, {}, {}) RETURNING id",
                email,
                services.identity.hash_password(password),
                name,
                name_ar,
                "fr",
                True,
                now,
            )
            assert person is not None
            people[email] = person["id"]
            if role == "programme_manager":
                await db.execute(
                    "INSERT INTO membership (person_id, role, programme_id, created_at) VALUES ({}, {}, {}, {})",
                    person["id"],
                    role,
                    programme["id"],
                    now,
                )
            else:
                await db.execute(
                    "INSERT INTO membership (person_id, role, tenant_id, created_at) VALUES ({}, {}, {}, {})",
                    person["id"],
                    role,
                    ids[target],
                    now,
                )
            accounts.append(
                DemoAccount(email, password, role, target if role != "programme_manager" else "lycee-ibn-batouta")
            )
        pupils = await populate_demo_schools(db, ids, paths, people)
        await audit.record(
            db,
            actor_id=None,
            action="demo.load",
            object_type="platform",
            object_id="demo",
            tenant=None,
            after={"tenants": len(TREE), "accounts": len(ACCOUNTS), "pupils": pupils},
        )
    for _, result in services.plugins.each("madrasa_demo_data", db=db, tenants=ids):
        await resolve(result)
    services.invalidation.publish(ALL)
    return accounts


async def populate_demo_schools(
    db: Database, ids: dict[str, int], paths: dict[str, str], people: dict[str, int]
) -> int:
    """Fill the demo schools with the generator and link the teacher, student and parent accounts.

    Runs inside :func:`load_demo`'s transaction. ``teacher@madrasa.demo`` takes the first
    mathematics post of lycee-ibn-batouta (assignments and timetable slots); ``student@madrasa.demo``
    becomes a pupil there; ``parent@madrasa.demo`` becomes the father of that pupil and of a pupil
    of ecole-al-amal (the other region), with a parent membership in both schools.
    """
    run = await GeneratorRun.start(db, DEMO_SEED, guardian_domain="parents.demo.madrasa.test")
    by_slug = {row[0]: row for row in TREE}
    total = 0
    for slug, cycle, pupils in DEMO_SCHOOLS:
        _, kind, parent, name_fr, name_ar, name_en, code = by_slug[slug]
        school = tenant_info(
            {
                "id": ids[slug],
                "kind": kind,
                "parent_id": ids[parent],
                "path": paths[slug],
                "slug": slug,
                "code": code,
                "name_fr": name_fr,
                "name_ar": name_ar,
                "name_en": name_en,
                "default_locale": "ar",
            }
        )
        teachers = [(people["teacher@madrasa.demo"], DEMO_TEACHER_SUBJECT)] if slug == "lycee-ibn-batouta" else []
        await populate_school(
            db,
            school,
            random.Random(f"{DEMO_SEED}:{slug}"),
            pupils,
            run=run,
            cycle=cycle,
            teachers=teachers,
            fresh=True,
            flush=False,
        )
        total += pupils
    await run.flush()
    father = people["parent@madrasa.demo"]
    for slug, gender, first, first_ar, is_account in DEMO_CHILDREN:
        pupil = await _adopt_pupil(db, ids[slug], gender)
        last, last_ar = DEMO_FAMILY_NAME
        await db.execute(
            "UPDATE student SET first_name = {}, last_name = {}, first_name_ar = {}, last_name_ar = {}, "
            "person_id = {} WHERE id = {}",
            first,
            last,
            first_ar,
            last_ar,
            people["student@madrasa.demo"] if is_account else None,
            pupil["id"],
        )
        await db.execute(
            "INSERT INTO guardianship (region_id, province_id, school_id, student_id, person_id, relation) "
            "VALUES ({}, {}, {}, {}, {}, 'father')",
            pupil["region_id"],
            pupil["province_id"],
            pupil["school_id"],
            pupil["id"],
            father,
        )
        member = await db.fetchval(
            "SELECT id FROM membership WHERE person_id = {} AND role = 'parent' AND tenant_id = {}", father, ids[slug]
        )
        if member is None:
            await db.execute(
                "INSERT INTO membership (person_id, role, tenant_id, created_at) VALUES ({}, 'parent', {}, {})",
                father,
                ids[slug],
                datetime.now(UTC),
            )
    return total


async def _adopt_pupil(db: Database, school_id: int, gender: str) -> dict[str, Any]:
    """A generated pupil of the school whose guardians have no other child; they are removed.

    The pupil keeps their class (and its timetable); the demo family replaces their generated
    guardians, whose memberships and identities go with them.
    """
    pupil = await db.fetchrow(
        "SELECT s.id, s.region_id, s.province_id, s.school_id FROM student s "
        "JOIN enrolment e ON e.student_id = s.id AND e.ends_on IS NULL "
        "WHERE s.school_id = {} AND s.gender = {} AND NOT EXISTS (SELECT 1 FROM guardianship g "
        "JOIN guardianship other ON other.person_id = g.person_id AND other.student_id <> g.student_id "
        "WHERE g.student_id = s.id) ORDER BY s.id LIMIT 1",
        school_id,
        gender,
    )
    assert pupil is not None, "the generator left no single-child family"
    guardians = [
        r["person_id"] for r in await db.fetch("SELECT person_id FROM guardianship WHERE student_id = {}", pupil["id"])
    ]
    await db.execute("DELETE FROM guardianship WHERE student_id = {}", pupil["id"])
    for person_id in guardians:
        await db.execute("DELETE FROM membership WHERE person_id = {}", person_id)
        await db.execute("DELETE FROM person WHERE id = {}", person_id)
    return pupil


def write_accounts(path: Path, accounts: list[DemoAccount]) -> None:
    """Save the demo accounts (readable by the owner only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data: list[dict[str, Any]] = [a.__dict__ for a in accounts]
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2))
    path.chmod(0o600)
