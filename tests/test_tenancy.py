"""Tenant resolution (host, custom domain, path prefix, token), unknown and suspended tenants, the tree API."""

from __future__ import annotations

import pytest

from core.access import Grant, scope_for
from core.cache import MISSING, TTLCache
from core.scope import Scope
from core.tenancy import TenantInfo

TEACHER = "teacher.lycee-ibn-batouta@test.ma"


def node(path: tuple[int, ...]) -> TenantInfo:
    kinds = ("platform", "region", "province", "school")
    return TenantInfo(
        id=path[-1],
        kind=kinds[len(path) - 1],
        parent_id=path[-2] if len(path) > 1 else None,
        path=path,
        slug=f"n{path[-1]}",
        code=None,
        name_ar="",
        name_fr="",
        name_en="",
        status="active",
        default_locale="fr",
        display_name=None,
        logo_key=None,
        primary_color="#000000",
        secondary_color="#ffffff",
    )


ALL = frozenset({"region_admin", "teacher", "platform_admin", "programme_manager"})


@pytest.mark.parametrize(
    ("grants", "tenant", "expected"),
    [
        ([Grant("region_admin", ((1, 2),))], None, Scope(frozenset({2}))),
        ([Grant("region_admin", ((1, 2),))], node((1, 2, 3, 4)), Scope(frozenset({4}))),  # above: narrowed
        ([Grant("teacher", ((1, 2, 3, 4),))], node((1, 2)), Scope(frozenset({4}))),  # below: own subtree
        ([Grant("teacher", ((1, 2, 3, 4),))], node((1, 5, 6, 7)), Scope()),  # elsewhere: nothing
        ([Grant("platform_admin", ((1,),))], None, Scope.everything()),
        ([Grant("platform_admin", ((1,),))], node((1, 5)), Scope(frozenset({5}))),
        ([Grant("programme_manager", ((1, 2, 3, 4), (1, 5, 6, 7)), programme_id=9)], None, Scope(frozenset({4, 7}))),
        (
            [Grant("programme_manager", ((1, 2, 3, 4), (1, 5, 6, 7)), programme_id=9)],
            node((1, 5)),
            Scope(frozenset({7})),
        ),
    ],
)
def test_scope_for(grants, tenant, expected):
    assert scope_for(grants, ALL, tenant) == expected


def test_scope_needs_a_role_holding_the_permission():
    assert scope_for([Grant("teacher", ((1, 2, 3, 4),))], frozenset({"school_director"}), None) == Scope()


async def test_tenant_host_name_resolves_the_portal(world):
    response = await world.client.get("/login", headers={"host": f"lycee-ibn-batouta.{world.settings.base_domain}"})
    assert response.status_code == 200
    assert "Ibn Batouta" in response.text or "ابن بطوطة" in response.text


async def test_custom_domain_resolves_the_portal(world):
    db = world.services.db
    async with db.transaction():
        await db.execute(
            "INSERT INTO tenant_domain (tenant_id, host) VALUES ({}, {})",
            world.ids["ecole-al-amal"],
            f"alamal-{world.backend}.example.ma",
        )
    response = await world.client.get("/login", headers={"host": f"alamal-{world.backend}.example.ma"})
    assert response.status_code == 200
    assert "Al Amal" in response.text or "الأمل" in response.text


async def test_unknown_tenant_is_404_page_and_problem(world):
    page = await world.client.get("/t/no-such-school/login", headers={"accept": "text/html"})
    assert page.status_code == 404 and "<html" in page.text
    host = await world.client.get(
        "/login", headers={"host": f"ghost.{world.settings.base_domain}", "accept": "text/html"}
    )
    assert host.status_code == 404
    api = await world.api("GET", "/api/v1/plugins", as_=TEACHER, tenant="no-such-school")
    assert api.status_code == 404 and api.headers["content-type"].startswith("application/problem+json")
    bad = await world.client.get("/t/BAD..slug/login")
    assert bad.status_code == 404


async def test_api_takes_the_tenant_from_the_token_never_a_header(world):
    token = await world.token(TEACHER, tenant="lycee-ibn-batouta")
    headers = {
        "authorization": f"Bearer {token}",
        "host": f"lycee-moulay-youssef.{world.settings.base_domain}",
        "x-tenant": "lycee-moulay-youssef",
    }
    response = await world.client.get("/api/v1/me", headers=headers)
    assert response.json()["tenant"] == "lycee-ibn-batouta"
    response = await world.client.get("/api/v1/plugins", headers=headers)
    assert response.status_code == 200


async def test_suspended_school_shows_a_clear_page_and_keeps_its_data(world):
    slug = f"suspend-me-{world.backend}"
    created = await world.api(
        "POST",
        "/api/v1/tenants",
        as_="region.casa@madrasa.demo",
        json={"parent": "settat", "kind": "school", "slug": slug, "name_fr": "École à suspendre", "name_ar": "مدرسة"},
    )
    assert created.status_code == 201, created.text
    world.ids[slug] = created.json()["id"]
    teacher = await world.add_person(f"t.{slug}@test.ma", "teacher", slug)
    assert (await world.api("GET", "/", as_=teacher, tenant=slug)).status_code == 200

    response = await world.api(
        "POST",
        f"/api/v1/tenants/{slug}/status",
        as_="region.casa@madrasa.demo",
        json={"status": "suspended", "reason": "end of contract"},
    )
    assert response.status_code == 200 and response.json()["status"] == "suspended"
    page = await world.client.get(f"/t/{slug}/login", headers={"accept": "text/html"})
    assert page.status_code == 403 and "suspendu" in page.text
    api = await world.api("GET", "/api/v1/plugins", as_=teacher, tenant=slug)
    assert api.status_code == 403 and "suspended" in api.json()["detail"]
    assert (
        await world.services.db.fetchval("SELECT COUNT(*) FROM membership WHERE tenant_id = {}", world.ids[slug]) == 1
    )

    response = await world.api(
        "POST",
        f"/api/v1/tenants/{slug}/status",
        as_="region.casa@madrasa.demo",
        json={"status": "active", "reason": "renewed"},
    )
    assert response.status_code == 200
    assert (await world.client.get(f"/t/{slug}/login")).status_code == 200


async def test_suspending_a_region_suspends_its_schools(world):
    admin = "admin@madrasa.demo"
    region = f"region-{world.backend}"
    for body in (
        {"parent": "platform", "kind": "region", "slug": region, "name_fr": "Région test"},
        {"parent": region, "kind": "province", "slug": f"prov-{world.backend}", "name_fr": "Province"},
        {"parent": f"prov-{world.backend}", "kind": "school", "slug": f"school-{world.backend}", "name_fr": "École"},
    ):
        assert (await world.api("POST", "/api/v1/tenants", as_=admin, json=body)).status_code == 201
    await world.api(
        "POST", f"/api/v1/tenants/{region}/status", as_=admin, json={"status": "suspended", "reason": "audit"}
    )
    assert (await world.client.get(f"/t/school-{world.backend}/login")).status_code == 403
    back = await world.api(
        "POST", f"/api/v1/tenants/{region}/status", as_=admin, json={"status": "active", "reason": "audit done"}
    )
    assert back.status_code == 200, back.text
    assert (await world.client.get(f"/t/school-{world.backend}/login")).status_code == 200


async def test_tree_rules(world):
    admin = "region.casa@madrasa.demo"
    wrong_kind = await world.api(
        "POST",
        "/api/v1/tenants",
        as_=admin,
        json={"parent": "casablanca-settat", "kind": "school", "slug": "x-school", "name_fr": "X"},
    )
    assert wrong_kind.status_code == 400 and "province" in wrong_kind.json()["detail"]
    duplicate = await world.api(
        "POST",
        "/api/v1/tenants",
        as_=admin,
        json={"parent": "settat", "kind": "school", "slug": "lycee-ibn-batouta", "name_fr": "Doublon"},
    )
    assert duplicate.status_code == 409
    bad_slug = await world.api(
        "POST",
        "/api/v1/tenants",
        as_=admin,
        json={"parent": "settat", "kind": "school", "slug": "Bad Slug", "name_fr": "X"},
    )
    assert bad_slug.status_code == 400 and bad_slug.json()["errors"][0]["field"] == "slug"
    region_by_region_admin = await world.api(
        "POST",
        "/api/v1/tenants",
        as_=admin,
        json={"parent": "platform", "kind": "region", "slug": "sneaky", "name_fr": "X"},
    )
    assert region_by_region_admin.status_code == 404
    cannot_suspend_platform = await world.api(
        "POST",
        "/api/v1/tenants/platform/status",
        as_="admin@madrasa.demo",
        json={"status": "suspended", "reason": "oops"},
    )
    assert cannot_suspend_platform.status_code == 403


async def test_people_have_one_identity_across_tenants(world):
    director_a = "director.lycee-ibn-batouta@test.ma"
    director_b = "director.lycee-moulay-youssef@test.ma"
    email = f"shared.{world.backend}@test.ma"
    for actor, school in ((director_a, "lycee-ibn-batouta"), (director_b, "lycee-moulay-youssef")):
        response = await world.api(
            "POST",
            "/api/v1/people",
            as_=actor,
            json={
                "email": email,
                "full_name": "Parent Partagé",
                "role": "parent",
                "tenant": school,
                "password": "a-good-password-1",
            },
        )
        assert response.status_code == 201, response.text
    ids = await world.services.db.fetch("SELECT id FROM person WHERE email = {}", email)
    assert len(ids) == 1
    world.passwords[email] = "a-good-password-1"
    me = await world.api("GET", "/api/v1/me", as_=email)
    assert {m["tenant"] for m in me.json()["memberships"]} == {"lycee-ibn-batouta", "lycee-moulay-youssef"}
    landing = await world.api("GET", "/", as_=email)
    assert "/t/lycee-ibn-batouta/" in landing.text and "/t/lycee-moulay-youssef/" in landing.text
    # a director cannot grant a role in another school
    response = await world.api(
        "POST",
        "/api/v1/people",
        as_=director_a,
        json={"email": "x@test.ma", "full_name": "X", "role": "teacher", "tenant": "lycee-moulay-youssef"},
    )
    assert response.status_code == 404


async def test_ttl_cache_expires_bounds_and_caches_none(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr("core.cache.time.monotonic", lambda: clock[0])
    cache: TTLCache[str, int | None] = TTLCache(10, max_entries=3)
    loads = []

    async def load() -> int | None:
        loads.append(1)
        return None

    assert await cache.get("a", load) is None
    assert await cache.get("a", load) is None
    assert len(loads) == 1  # a cached absence is a hit
    clock[0] += 10.5
    assert cache.peek("a") is MISSING
    assert await cache.get("a", load) is None and len(loads) == 2
    cache.put("b", 2, ttl=100)
    clock[0] += 50
    assert cache.peek("b") == 2 and cache.peek("a") is MISSING
    cache.put("c", 3)
    cache.put("d", 4)
    cache.put("e", 5)  # full: emptied before the store
    assert len(cache) == 1 and cache.peek("e") == 5
    cache.pop("e")
    cache.pop("missing")
    assert cache.peek("e") is MISSING
