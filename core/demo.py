"""The demo: two regions with provinces and schools, a programme across both, one account per role."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core import audit
from core.plugins import resolve
from core.scope import Scope
from core.services import Services

DEMO_MARKER = "casablanca-settat"

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
            "UPDATE tenant SET primary_color = '#1d4e89', secondary_color = '#e0a100' "
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
        await db.execute(
            "INSERT INTO module_setting (module, programme_id, enabled, reason, updated_at) "
            "VALUES ('homework', {}, {}, {}, {})",
            programme["id"],
            True,
            "Pilot of the new high-school model",
            now,
        )
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
        await audit.record(
            db,
            actor_id=None,
            action="demo.load",
            object_type="platform",
            object_id="demo",
            tenant=None,
            after={"tenants": len(TREE), "accounts": len(ACCOUNTS)},
        )
    for _, result in services.plugins.each("madrasa_demo_data", db=db, tenants=ids):
        await resolve(result)
    services.tenants.invalidate()
    services.grants.invalidate()
    services.modules.invalidate()
    return accounts


def write_accounts(path: Path, accounts: list[DemoAccount]) -> None:
    """Save the demo accounts (readable by the owner only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data: list[dict[str, Any]] = [a.__dict__ for a in accounts]
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2))
    path.chmod(0o600)
