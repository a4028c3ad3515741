"""The console's per-school module switch: a region administrator switches a module for one school, with a reason."""

from __future__ import annotations

import re
import secrets
from typing import Any

from tests.test_admin_console import fresh_tree

ADMIN = "admin@madrasa.demo"
RABAT = "region.rabat@madrasa.demo"


async def states(world: Any, slug: str) -> dict[str, tuple[bool, str]]:
    response = await world.api("GET", f"/api/v1/tenants/{slug}/modules", as_=ADMIN)
    assert response.status_code == 200, response.text
    return {m["module"]: (m["enabled"], m["source"]) for m in response.json()}


async def test_region_admin_switches_a_module_for_one_school_with_a_reason(world):
    tree = await fresh_tree(world, f"sw{secrets.token_hex(2)}")
    region_admin = await world.add_person(f"ra-{tree['region']}@test.ma", "region_admin", tree["region"])
    province, one, two = tree["province"], tree["school1"], tree["school2"]
    path = f"/admin/tenants/{province}/modules"

    page = await world.api("GET", f"/admin/tenants/{province}?lang=fr", as_=region_admin)
    assert page.status_code == 200 and 'id="node-switch-form"' in page.text
    assert set(
        re.findall(r'<option value="([^"]+)"', page.text.split('id="node-switch-target"')[1].split("</select>")[0])
    ) == {
        province,
        one,
        two,
    }

    # The reason is required; the error is shown in the page, translated, and nothing changes.
    missing = await world.api(
        "POST",
        f"{path}?lang=fr",
        as_=region_admin,
        data={"target": one, "module": "attendance", "state": "off", "reason": ""},
    )
    assert missing.status_code == 400 and 'id="node-switch-reason-error"' in missing.text
    assert "Indiquez un motif (3 caractères au moins)" in missing.text
    assert (await states(world, one))["attendance"][0] is True

    reason = "Pilote retardé pour cette école"
    saved = await world.api(
        "POST", path, as_=region_admin, data={"target": one, "module": "attendance", "state": "off", "reason": reason}
    )
    assert saved.status_code == 303 and saved.headers["location"] == f"/admin/tenants/{province}?done=module"
    assert (await states(world, one))["attendance"] == (False, "school")
    assert (await states(world, two))["attendance"][0] is True  # the neighbour keeps it
    logged = await world.sql(
        "SELECT reason FROM audit_log WHERE action = 'module.set' AND object_id = 'attendance' AND tenant_id = {}",
        world.ids[one],
    )
    assert logged == reason
    after = await world.api("GET", f"/admin/tenants/{province}?lang=fr", as_=region_admin)
    cell = re.search(rf'<tr data-school="{one}">.*?</tr>', after.text, re.S).group(0)
    assert 'data-module="attendance" data-state="off" data-source="school"' in cell and reason in cell

    # Back to inherit: the school's own setting is removed.
    back = await world.api(
        "POST",
        path,
        as_=region_admin,
        data={"target": one, "module": "attendance", "state": "inherit", "reason": "Fin"},
    )
    assert back.status_code == 303 and (await states(world, one))["attendance"] == (True, "default")

    # Another region's administrator and a school director may not.
    refused = await world.api(
        "POST", path, as_=RABAT, data={"target": one, "module": "attendance", "state": "off", "reason": "nope"}
    )
    assert refused.status_code == 403
    director = await world.add_person(f"dir-{one}@test.ma", "school_director", one)
    refused = await world.api(
        "POST", path, as_=director, data={"target": one, "module": "attendance", "state": "off", "reason": "nope"}
    )
    assert refused.status_code == 403
    # A school outside the page's node is not a choice.
    other = await world.api(
        "POST",
        path,
        as_=region_admin,
        data={"target": "lycee-ibn-batouta", "module": "attendance", "state": "off", "reason": "nope"},
    )
    assert other.status_code == 400 and 'id="node-switch-target-error"' in other.text
    assert (await states(world, one))["attendance"][0] is True
