"""Module enablement: resolution order, per-school switches in one process, programmes across regions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.modules import SettingRow, effective_state

A, B = "lycee-ibn-batouta", "college-al-khawarizmi"  # two schools of region casablanca-settat
PROGRAMME_SCHOOLS = ("lycee-ibn-batouta", "lycee-moulay-youssef")  # one per region
OUTSIDE = ("college-al-khawarizmi", "ecole-al-amal")


def row(enabled: bool, minutes: int = 0) -> SettingRow:
    return SettingRow(enabled, datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes))


PATH = (1, 2, 3, 4)  # platform, region, province, school


@pytest.mark.parametrize(
    ("nodes", "programmes", "expected"),
    [
        ({}, {}, (True, "default")),
        ({1: row(False)}, {}, (False, "platform")),
        ({1: row(False), 2: row(True)}, {}, (True, "region")),
        ({2: row(True), 3: row(False)}, {}, (False, "province")),
        ({3: row(False)}, {9: row(True)}, (True, "programme")),
        ({4: row(False)}, {9: row(True)}, (False, "school")),
        ({}, {8: row(True, 1), 9: row(False, 2)}, (False, "programme")),  # latest programme setting wins
        ({}, {8: row(True, 5), 9: row(False, 2)}, (True, "programme")),
    ],
)
def test_resolution_order(nodes, programmes, expected):
    state = effective_state("grades", True, PATH, nodes, programmes)
    assert (state.enabled, state.source) == expected


def test_programmes_do_not_apply_above_schools():
    state = effective_state("grades", True, (1, 2), {}, {9: row(False)})
    assert state.enabled and state.source == "default"


async def hello(world, school):
    return await world.api("GET", "/api/v1/example/hello", as_=f"teacher.{school}@test.ma", tenant=school)


async def menu(world, school):
    response = await world.api("GET", "/", as_=f"teacher.{school}@test.ma", tenant=school)
    assert response.status_code == 200, response.text
    return response.text


async def switch(world, school, module, enabled, actor=None):
    actor = actor or f"director.{school}@test.ma"
    return await world.api(
        "PUT",
        f"/api/v1/tenants/{school}/modules/{module}",
        as_=actor,
        json={"enabled": enabled, "reason": "test switch"},
    )


async def test_school_switch_affects_only_that_school(world):
    assert (await hello(world, A)).status_code == 200
    assert (await hello(world, B)).status_code == 200
    response = await switch(world, A, "example", False)
    assert response.status_code == 200, response.text
    assert {m["module"]: m["enabled"] for m in response.json()}["example"] is False
    try:
        assert (await hello(world, A)).status_code == 404
        assert (await hello(world, B)).status_code == 200
        assert 'data-module-menu="/example/notes"' not in await menu(world, A)
        assert 'data-module-menu="/example/notes"' in await menu(world, B)
        assert "Example card" not in await menu(world, A)
        assert "Example card" in await menu(world, B)
        plugins = await world.api("GET", "/api/v1/plugins", as_=f"teacher.{A}@test.ma", tenant=A)
        example = next(p for p in plugins.json() if p["name"] == "example")
        assert example == {**example, "enabled": False, "source": "school"}
    finally:
        assert (await switch(world, A, "example", None)).status_code == 200
    assert (await hello(world, A)).status_code == 200


async def test_built_in_module_pages_follow_the_switch(world):
    page = await world.api("GET", "/grades/", as_=f"teacher.{A}@test.ma", tenant=A)
    assert page.status_code == 200 and "<main" in page.text
    await switch(world, A, "grades", False)
    try:
        assert (await world.api("GET", "/grades/", as_=f"teacher.{A}@test.ma", tenant=A)).status_code == 404
        assert 'data-module-menu="/grades/"' not in await menu(world, A)
        assert (await world.api("GET", "/grades/", as_=f"teacher.{B}@test.ma", tenant=B)).status_code == 200
    finally:
        await switch(world, A, "grades", None)


async def test_switches_are_audited_with_author_and_reason(world):
    await switch(world, A, "attendance", False)
    await switch(world, A, "attendance", None)
    response = await world.api(
        "GET",
        "/api/v1/audit",
        as_=f"director.{A}@test.ma",
        tenant=A,
        params={"object_type": "module", "object_id": "attendance"},
    )
    entries = response.json()
    assert len(entries) >= 2
    director_id = await world.services.db.fetchval("SELECT id FROM person WHERE email = {}", f"director.{A}@test.ma")
    assert entries[0]["actor_id"] == director_id and entries[0]["reason"] == "test switch"
    assert entries[0]["before"] == {"enabled": False} and entries[0]["after"] == {"enabled": None}
    assert entries[1]["after"] == {"enabled": False}


async def test_a_reason_is_required(world):
    response = await world.api(
        "PUT",
        f"/api/v1/tenants/{A}/modules/attendance",
        as_=f"director.{A}@test.ma",
        json={"enabled": False, "reason": ""},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "reason"


async def test_teacher_cannot_switch_and_unknown_module_is_404(world):
    response = await world.api(
        "PUT",
        f"/api/v1/tenants/{A}/modules/attendance",
        as_=f"teacher.{A}@test.ma",
        json={"enabled": False, "reason": "not mine"},
    )
    assert response.status_code == 403
    response = await switch(world, A, "no-such-module", False)
    assert response.status_code == 404
    response = await switch(world, A, "tenants", False)
    assert response.status_code == 400


async def ensure_teachers(world, schools):
    for school in schools:
        if f"teacher.{school}@test.ma" not in world.passwords:
            await world.add_person(f"teacher.{school}@test.ma", "teacher", school)


async def module_state(world, school, module):
    plugins = await world.api("GET", "/api/v1/plugins", as_=f"teacher.{school}@test.ma", tenant=school)
    return next((p["enabled"], p["source"]) for p in plugins.json() if p["name"] == module)


async def programme_switch(world, module, enabled, reason, actor="programme@madrasa.demo", programme="nouveau-lycee"):
    return await world.api(
        "PUT",
        f"/api/v1/programmes/{programme}/modules/{module}",
        as_=actor,
        json={"enabled": enabled, "reason": reason},
    )


async def test_unfinished_modules_are_off_by_default(world):
    """Homework and HR are landing pages only: off unless someone switches them on (HR nowhere is)."""
    await ensure_teachers(world, (*PROGRAMME_SCHOOLS, *OUTSIDE))
    infos = world.services.plugins.infos
    assert not infos["homework"].default_enabled and not infos["hr"].default_enabled
    for school in (*PROGRAMME_SCHOOLS, *OUTSIDE):
        assert await module_state(world, school, "hr") == (False, "default")
        assert 'data-module-menu="/hr/"' not in await menu(world, school)
    for school in OUTSIDE:
        assert await module_state(world, school, "homework") == (False, "default")
        assert 'data-module-menu="/homework/"' not in await menu(world, school)


async def test_programme_switch_reaches_member_schools_in_two_regions_only(world):
    await ensure_teachers(world, (*PROGRAMME_SCHOOLS, *OUTSIDE))
    for school in (*PROGRAMME_SCHOOLS, *OUTSIDE):
        assert await module_state(world, school, "attendance") == (True, "default")
        assert 'data-module-menu="/attendance/"' in await menu(world, school)

    response = await programme_switch(world, "attendance", False, "pause the pilot")
    assert response.status_code == 200, response.text
    try:
        for school in PROGRAMME_SCHOOLS:
            assert await module_state(world, school, "attendance") == (False, "programme")
            assert 'data-module-menu="/attendance/"' not in await menu(world, school)
        for school in OUTSIDE:
            assert await module_state(world, school, "attendance") == (True, "default")
            assert 'data-module-menu="/attendance/"' in await menu(world, school)
        # the region sees that the programme changed its school
        audit = await world.api(
            "GET", "/api/v1/audit", as_="region.rabat@madrasa.demo", params={"object_type": "programme_module"}
        )
        assert any(e["reason"] == "pause the pilot" for e in audit.json())
    finally:
        assert (await programme_switch(world, "attendance", None, "resume the pilot")).status_code == 200
    assert await module_state(world, PROGRAMME_SCHOOLS[1], "attendance") == (True, "default")


async def test_school_override_beats_the_programme(world):
    school = PROGRAMME_SCHOOLS[0]
    await ensure_teachers(world, (school,))
    assert (await programme_switch(world, "attendance", False, "programme off")).status_code == 200
    try:
        assert await module_state(world, school, "attendance") == (False, "programme")
        await switch(world, school, "attendance", True)
        try:
            assert await module_state(world, school, "attendance") == (True, "school")
        finally:
            await switch(world, school, "attendance", None)
    finally:
        await programme_switch(world, "attendance", None, "programme test done")
    assert await module_state(world, school, "attendance") == (True, "default")


async def test_programme_manager_is_limited_to_own_programme(world):
    response = await programme_switch(world, "attendance", False, "not mine", programme="other-programme")
    assert response.status_code == 404
    response = await programme_switch(world, "attendance", False, "not mine", actor="region.casa@madrasa.demo")
    assert response.status_code in (403, 404)
    # nor can the manager switch a member school's own setting outside the programme's schools
    response = await switch(world, "college-al-khawarizmi", "attendance", False, actor="programme@madrasa.demo")
    assert response.status_code in (403, 404)


async def test_region_default_reaches_its_schools_not_the_other_region(world):
    response = await world.api(
        "PUT",
        "/api/v1/tenants/casablanca-settat/modules/attendance",
        as_="region.casa@madrasa.demo",
        json={"enabled": False, "reason": "region test"},
    )
    assert response.status_code == 200
    try:
        await ensure_teachers(world, (A, B, "lycee-moulay-youssef"))
        for school, expected in ((A, False), (B, False), ("lycee-moulay-youssef", True)):
            assert (await module_state(world, school, "attendance"))[0] is expected
    finally:
        await world.api(
            "PUT",
            "/api/v1/tenants/casablanca-settat/modules/attendance",
            as_="region.casa@madrasa.demo",
            json={"enabled": None, "reason": "region test done"},
        )
