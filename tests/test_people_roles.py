"""Roles granted through the people API, and the demo's accounts: the school's supervisor."""

from __future__ import annotations

from core.demo import ACCOUNTS
from core.scope import Scope
from tenants.service import PEOPLE_ROLES
from tests.conftest import World

SCHOOL = "lycee-ibn-batouta"
REGION_ADMIN = "region.casa@madrasa.demo"


def test_supervisor_is_a_role_people_can_be_given() -> None:
    assert "supervisor" in PEOPLE_ROLES
    assert "programme_manager" not in PEOPLE_ROLES and "platform_admin" not in PEOPLE_ROLES


async def test_the_demo_has_a_supervisor_who_can_log_in(world: World) -> None:
    supervisors = [a for a in ACCOUNTS if a[1] == "supervisor"]
    assert [(a[0], a[2]) for a in supervisors] == [("supervisor@madrasa.demo", SCHOOL)]
    db = world.services.db
    async with db.scoped(Scope.everything(), write=False):
        roles = await db.fetch(
            "SELECT m.role, t.slug FROM membership m JOIN person p ON p.id = m.person_id "
            "JOIN tenant t ON t.id = m.tenant_id WHERE p.email = {}",
            "supervisor@madrasa.demo",
        )
    assert roles == [{"role": "supervisor", "slug": SCHOOL}]
    response = await world.api("GET", "/api/v1/me", as_="supervisor@madrasa.demo", tenant=SCHOOL)
    assert response.status_code == 200, response.text


async def test_a_supervisor_is_granted_through_the_people_api_at_a_school_only(world: World) -> None:
    body = {"email": "supervisor.new@test.ma", "full_name": "S", "role": "supervisor", "tenant": SCHOOL}
    response = await world.api("POST", "/api/v1/people", as_=REGION_ADMIN, json=body)
    assert response.status_code == 201, response.text
    role = await world.sql(
        "SELECT m.role FROM membership m JOIN person p ON p.id = m.person_id WHERE p.email = {} AND m.tenant_id = {}",
        "supervisor.new@test.ma",
        world.ids[SCHOOL],
    )
    assert role == "supervisor"
    body = {**body, "email": "supervisor.region@test.ma", "tenant": "casablanca-settat"}
    response = await world.api("POST", "/api/v1/people", as_=REGION_ADMIN, json=body)
    assert response.status_code == 400, response.text


async def test_a_role_is_taken_away_with_a_reason_inside_the_callers_scope_only(world: World) -> None:
    body = {"email": "leaving.teacher@test.ma", "full_name": "L", "role": "teacher", "tenant": SCHOOL}
    created = await world.api("POST", "/api/v1/people", as_=REGION_ADMIN, json=body)
    assert created.status_code == 201, created.text
    person = created.json()["id"]
    path = f"/api/v1/people/{person}/roles/remove"
    removal = {"role": "teacher", "tenant": SCHOOL, "reason": "Moved to another academy"}
    short = await world.api("POST", path, as_=REGION_ADMIN, json={**removal, "reason": "  x "})
    assert short.status_code in (400, 422) and "reason" in short.text
    unknown = await world.api("POST", path, as_=REGION_ADMIN, json={**removal, "role": "platform_admin"})
    assert unknown.status_code == 400, unknown.text
    elsewhere = await world.api("POST", path, as_=REGION_ADMIN, json={**removal, "tenant": "lycee-moulay-youssef"})
    assert elsewhere.status_code == 404, elsewhere.text  # a school of another region is not the caller's
    removed = await world.api("POST", path, as_=REGION_ADMIN, json=removal)
    assert removed.status_code == 204, removed.text
    left = await world.sql("SELECT COUNT(*) FROM membership WHERE person_id = {}", person)
    assert left == 0
    again = await world.api("POST", path, as_=REGION_ADMIN, json=removal)
    assert again.status_code == 404
