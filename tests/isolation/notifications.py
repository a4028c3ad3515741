"""Isolation samples for the notification centre: a foreign family's notification (nobody else may open or mark
it), and the bodies of its forms. The inbox, "mark all read" and the preferences act on the caller's own
notifications and settings only; a tenant's rules are set at the tenant of the address (refused under a foreign
prefix)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from core.scope import Scope

FOREIGN = "lycee-moulay-youssef"

BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/v1/me/notifications/{notification_id:int}/read"): {},
    ("POST", "/api/v1/me/notifications/read-all"): {},
    ("PUT", "/api/v1/me/notifications/preferences"): {"kinds": {}},
    ("PUT", "/api/v1/notifications/policy"): {"example.note": {"sms_allowed": True, "mandatory": True}},
    ("POST", "/notifications/read-all"): {},
    ("POST", "/notifications/preferences"): {"quiet_start": "", "quiet_end": ""},
    ("POST", "/notifications/policy"): {"example.note.sms_allowed": "1"},
}

# One's own inbox and preferences, and the rules of one's own tenant.
CREATES_AT_HOME = {
    ("POST", "/api/v1/me/notifications/read-all"),
    ("PUT", "/api/v1/me/notifications/preferences"),
    ("PUT", "/api/v1/notifications/policy"),
    ("POST", "/notifications/read-all"),
    ("POST", "/notifications/preferences"),
    ("POST", "/notifications/policy"),
}


async def foreign_values(world: Any) -> dict[str, Any]:
    """A notification addressed to the foreign school's guardian (created once)."""
    objects = world.objects[FOREIGN]
    if "notification_id" not in objects:
        db = world.services.db
        tenant = await world.services.tenants.by_slug(FOREIGN)
        cols = tenant.scope_columns()
        async with db.scoped(Scope.everything()):
            row = await db.fetchrow(
                "INSERT INTO notification (region_id, province_id, school_id, tenant_id, batch_id, person_id, kind, "
                "text, link, created_at) VALUES ({}, {}, {}, {}, 'isolation', {}, 'example.note', 'foreign', '', {}) "
                "RETURNING id",
                cols["region_id"],
                cols["province_id"],
                cols["school_id"],
                tenant.id,
                objects["guardian_id"],
                datetime.now(UTC),
            )
        objects["notification_id"] = row["id"]
    return {"notification_id": objects["notification_id"]}
