"""Isolation samples for the administration console's pages (``admin_ui``: tree, programmes, branding, lifecycle)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.isolation import Multipart

FOREIGN = "lycee-moulay-youssef"
FOREIGN_REGION = "rabat-sale-kenitra"
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde\x00\x00\x00"
    b"\x0cIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82"
)

BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/admin/tenants"): {"parent": FOREIGN_REGION, "slug": "intruder-province", "name_fr": "Intrus"},
    ("POST", "/admin/tenants/{slug:str}/status"): {"status": "suspended", "reason": "isolation test"},
    ("POST", "/admin/tenants/{slug:str}/people"): {
        "email": "intruder@test.ma",
        "full_name": "Intruder",
        "role": "supervisor",
        "locale": "fr",
    },
    ("POST", "/admin/tenants/{slug:str}/people/remove"): {"person_id": "1", "role": "teacher", "reason": "isolation"},
    ("POST", "/admin/tenants/{slug:str}/branding"): {
        "display_name": "Intrus",
        "primary_color": "#000000",
        "secondary_color": "#000000",
        "default_locale": "fr",
    },
    ("POST", "/admin/tenants/{slug:str}/branding/preview"): {
        "display_name": "Intrus",
        "primary_color": "#000000",
        "secondary_color": "#000000",
        "default_locale": "fr",
    },
    ("POST", "/admin/tenants/{slug:str}/logo"): Multipart(files={"logo": ("logo.png", PNG, "image/png")}),
    ("POST", "/admin/tenants/{slug:str}/domains"): {"host": "intruder.example.ma"},
    ("POST", "/admin/tenants/{slug:str}/domains/remove"): {"host": "intruder.example.ma"},
    ("POST", "/admin/programmes"): {"slug": "intruder-programme", "name_fr": "Intrus"},
    ("POST", "/admin/programmes/{programme:str}/modules"): {
        "module": "grades",
        "state": "off",
        "reason": "isolation test",
    },
    ("POST", "/admin/programmes/{programme:str}/schools"): {"school": FOREIGN},
    ("POST", "/admin/programmes/{programme:str}/managers"): {"email": "intruder@test.ma", "full_name": "Intrus"},
    ("POST", "/admin/programmes/{programme:str}/schools/remove"): {"school": FOREIGN, "reason": "isolation test"},
    ("POST", "/api/v1/programmes/{slug:str}/schools/remove"): {"school": FOREIGN, "reason": "isolation test"},
}


async def foreign_values(world: Any) -> dict[str, Any]:
    """A programme made of the foreign school only, managed by nobody of the home region."""
    cached = world.objects.setdefault("_console", {})
    if "programme" not in cached:
        db = world.services.db
        slug = "isolation-foreign-programme"
        pid = await db.fetchval("SELECT id FROM programme WHERE slug = {}", slug)
        if pid is None:
            row = await db.fetchrow(
                "INSERT INTO programme (slug, name_ar, name_fr, name_en, created_at) "
                "VALUES ({}, '', 'Programme étranger', '', {}) RETURNING id",
                slug,
                datetime.now(UTC),
            )
            await db.execute(
                "INSERT INTO programme_school (programme_id, tenant_id) VALUES ({}, {})", row["id"], world.ids[FOREIGN]
            )
        cached["programme"] = slug
    return {"programme": cached["programme"]}
