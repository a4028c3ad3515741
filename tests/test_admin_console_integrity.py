"""The console's writes under concurrency and failure: unique school codes, races answered 409 (never 500),
tenant and grant caches cleared only once a transaction has ended, and schools taken out of programmes.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from piccolo.engine.sqlite import SQLiteEngine

from core.context import RequestContext
from core.identity import Identity
from core.migrate import Migrator
from core.scope import Scope
from tenants import service
from tenants.migrations import m0003_console
from tests.test_admin_console import ADMIN, fresh_tree, make_manager, make_programme

postgres_only = pytest.mark.postgres_only


async def create(world: Any, parent: str, slug: str, code: str | None = None) -> httpx.Response:
    """Create a school through the API as the platform administrator."""
    body: dict[str, Any] = {"parent": parent, "kind": "school", "slug": slug, "name_fr": f"École {slug}"}
    if code is not None:
        body["code"] = code
    return await world.api("POST", "/api/v1/tenants", as_=ADMIN, json=body)


async def admin_context(world: Any) -> RequestContext:
    """The platform administrator's request context, for calling the services directly."""
    row = await world.services.db.fetchrow("SELECT id, email, full_name FROM person WHERE email = {}", ADMIN)
    identity = Identity(row["id"], row["email"], row["full_name"], "", "fr")
    return RequestContext(
        services=world.services, permission="tenants.manage", identity=identity, scope=Scope.everything()
    )


async def while_held(
    world: Any, held: list[tuple[str, tuple[Any, ...]]], request: Callable[[], Awaitable[httpx.Response]]
) -> httpx.Response:
    """Run ``request`` while another connection holds an uncommitted conflicting write, then commit that write.

    The request's own check does not see the uncommitted row, so it reaches its INSERT and waits on
    the unique index; the commit then makes the index refuse it: the race, made deterministic.
    """
    conn = await asyncpg.connect(world.pg.url(world.pg.app_role))
    try:
        tx = conn.transaction()
        await tx.start()
        await conn.execute("SELECT set_config('app.platform', 'on', true)")
        for sql, args in held:
            await conn.execute(sql, *args)
        task = asyncio.create_task(request())
        waiting = 0
        for _ in range(800):
            waiting = await conn.fetchval(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if waiting or task.done():
                break
            await asyncio.sleep(0.025)
        await tx.commit()
        response = await task
        assert waiting, f"the request did not wait on the held row: {response.status_code} {response.text}"
        return response
    finally:
        await conn.close()


async def school_row(world: Any, province: str, slug: str, code: str | None) -> list[tuple[str, tuple[Any, ...]]]:
    """Statements inserting a complete school row under ``province`` (for a held transaction)."""
    parent = await world.services.tenants.by_slug(province)
    now = datetime.now(UTC)
    insert = (
        "INSERT INTO tenant (kind, parent_id, path, slug, code, name_ar, name_fr, name_en, status, default_locale, "
        "primary_color, secondary_color, created_at) VALUES ('school', $1, $2, $3, $4, '', $3, '', 'active', 'fr', "
        "'#0b5d3b', '#c1272d', $5)"
    )
    path = "/".join(map(str, parent.path)) + "/"
    fix = "UPDATE tenant SET path = path || id::text || '/' WHERE slug = $1"
    return [(insert, (parent.id, path, slug, code, now)), (fix, (slug,))]


# -- 1. school codes are unique on the platform ------------------------------------------------------


async def test_a_school_code_names_one_school(world):
    tree = await fresh_tree(world, "uc", schools=0)
    code = f"UC{world.backend[:2].upper()}001"
    first = await create(world, tree["province"], f"uc-a-{world.backend}", code)
    assert first.status_code == 201, first.text
    second = await create(world, tree["province"], f"uc-b-{world.backend}", f" {code} ")
    assert second.status_code == 409, second.text
    problem = second.json()
    assert code in problem["detail"] and problem["field"] == "code"
    assert await world.services.tenants.by_slug(f"uc-b-{world.backend}") is None
    assert await world.sql("SELECT COUNT(*) FROM tenant WHERE code = {}", code) == 1
    # regions and provinces keep their own numbering; schools without a code are fine
    province = await world.api(
        "POST",
        "/api/v1/tenants",
        as_=ADMIN,
        json={
            "parent": tree["region"],
            "kind": "province",
            "slug": f"uc-p2-{world.backend}",
            "name_fr": "P",
            "code": code,
        },
    )
    assert province.status_code == 201, province.text
    for n in (1, 2):
        assert (await create(world, tree["province"], f"uc-none{n}-{world.backend}")).status_code == 201
        assert (await create(world, tree["province"], f"uc-empty{n}-{world.backend}", "")).status_code == 201


async def test_the_migration_names_existing_duplicate_codes(tmp_path: Path):
    engine = SQLiteEngine(path=str(tmp_path / "codes.sqlite3"))
    await engine.run_ddl("CREATE TABLE tenant (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, code TEXT)")
    await engine.run_ddl(
        "INSERT INTO tenant (kind, code) VALUES ('school', '111A'), ('school', '111A'), ('region', '06'), "
        "('province', '06'), ('school', NULL), ('school', NULL)"
    )
    migrator = Migrator(engine, "sqlite")
    with pytest.raises(RuntimeError, match=r"111A \(2 schools\)"):
        await m0003_console.forwards(migrator)
    await engine.run_ddl("UPDATE tenant SET code = '111B' WHERE id = 2")
    await m0003_console.forwards(migrator)
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        await engine.run_ddl("INSERT INTO tenant (kind, code) VALUES ('school', '111B')")
    await engine.run_ddl("INSERT INTO tenant (kind, code) VALUES ('region', '111B'), ('school', NULL)")


@postgres_only
async def test_a_school_code_taken_by_a_concurrent_creation_answers_409(world):
    tree = await fresh_tree(world, "ucr", schools=0)
    await world.token(ADMIN)
    held = await school_row(world, tree["province"], "ucr-other-postgres", "UCR0001")
    response = await while_held(world, held, lambda: create(world, tree["province"], "ucr-mine-postgres", "UCR0001"))
    assert response.status_code == 409, response.text
    assert "UCR0001" in response.json()["detail"]
    assert await world.sql("SELECT COUNT(*) FROM tenant WHERE code = 'UCR0001'") == 1


# -- 2. caches are cleared after the transaction, never filled inside it ------------------------------


async def test_a_creation_rolled_back_leaves_no_cached_tenant(world):
    tree = await fresh_tree(world, "rb", schools=0)
    ctx = await admin_context(world)
    tenants = world.services.tenants
    province = await tenants.by_slug(tree["province"])
    slug = f"rb-phantom-{world.backend}"
    created: dict[str, int] = {}
    with pytest.raises(RuntimeError, match="a later step failed"):
        async with service.tenant_change(ctx, Scope.everything()):
            node = await service.create_node(
                ctx,
                province,
                kind="school",
                slug=slug,
                code=None,
                name_ar="",
                name_fr="Fantôme",
                name_en="",
                default_locale="fr",
            )
            created["id"] = node.id
            # a later step of the same unit of work reads the new node, then fails
            assert (await tenants.by_slug(slug)).id == node.id
            raise RuntimeError("a later step failed")
    assert await world.sql("SELECT COUNT(*) FROM tenant WHERE slug = {}", slug) == 0
    assert await tenants.by_slug(slug) is None
    assert await tenants.by_id(created["id"]) is None


async def test_a_new_node_is_served_at_once_after_its_commit(world):
    tree = await fresh_tree(world, "vis", schools=0)
    slug = f"vis-new-{world.backend}"
    assert await world.services.tenants.by_slug(slug) is None  # the miss is cached for 10 s
    assert (await create(world, tree["province"], slug)).status_code == 201
    node = await world.services.tenants.by_slug(slug)
    assert node is not None and node.kind == "school"
    suspended = await world.api(
        "POST", f"/api/v1/tenants/{slug}/status", as_=ADMIN, json={"status": "suspended", "reason": "audit"}
    )
    assert suspended.status_code == 200
    assert (await world.services.tenants.by_slug(slug)).status == "suspended"


async def test_a_refused_status_change_leaves_the_cached_status(world):
    tree = await fresh_tree(world, "st", schools=1)
    school = tree["school1"]
    ctx = await admin_context(world)
    node = await world.services.tenants.by_slug(school)
    with pytest.raises(RuntimeError):
        async with service.tenant_change(ctx, Scope.everything()):
            await service.set_status(ctx, node, "suspended", "test")
            assert (await world.services.tenants.by_id(node.id)).status == "suspended"  # inside: uncommitted
            raise RuntimeError("refused later")
    assert (await world.services.tenants.by_id(node.id)).status == "active"
    assert (await world.services.tenants.by_slug(school)).status == "active"


# -- 3. concurrent duplicates answer 409, never 500 ---------------------------------------------------


@postgres_only
async def test_concurrent_creations_of_one_slug(world):
    tree = await fresh_tree(world, "cc", schools=0)
    await world.token(ADMIN)
    responses = await asyncio.gather(*(create(world, tree["province"], "cc-twice-postgres") for _ in range(2)))
    assert sorted(r.status_code for r in responses) == [201, 409], [r.text for r in responses]
    held = await school_row(world, tree["province"], "cc-held-postgres", None)
    raced = await while_held(world, held, lambda: create(world, tree["province"], "cc-held-postgres"))
    assert raced.status_code == 409, raced.text
    assert raced.json()["field"] == "slug" and "cc-held-postgres" in raced.json()["detail"]
    assert await world.sql("SELECT COUNT(*) FROM tenant WHERE slug LIKE 'cc-%-postgres'") == 2


@postgres_only
async def test_concurrent_additions_of_one_school_to_a_programme(world):
    tree = await fresh_tree(world, "cp", schools=2)
    programme = "prog-cp-postgres"
    await make_programme(world, programme, [])
    await world.token(ADMIN)

    def add(school: str) -> Awaitable[httpx.Response]:
        return world.api("POST", f"/api/v1/programmes/{programme}/schools", as_=ADMIN, json={"school": school})

    responses = await asyncio.gather(add(tree["school1"]), add(tree["school1"]))
    statuses = sorted(r.status_code for r in responses)
    assert statuses in ([200, 200], [200, 409]), [r.text for r in responses]
    pid = await world.sql("SELECT id FROM programme WHERE slug = {}", programme)
    school2 = world.ids[tree["school2"]]
    held = [("INSERT INTO programme_school (programme_id, tenant_id) VALUES ($1, $2)", (pid, school2))]
    raced = await while_held(world, held, lambda: add(tree["school2"]))
    assert raced.status_code == 409, raced.text
    assert tree["school2"] in raced.json()["detail"]
    assert await world.sql("SELECT COUNT(*) FROM programme_school WHERE programme_id = {}", pid) == 2
    audited = await world.sql(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'programme.add_school' AND object_id = {}", programme
    )
    assert audited == 1  # the held row was written outside the app; the app wrote school 1 once


@postgres_only
async def test_concurrent_registrations_of_one_domain(world):
    tree = await fresh_tree(world, "cd", schools=2)
    s1, s2 = tree["school1"], tree["school2"]
    await world.web_session(ADMIN)

    def add(school: str, host: str) -> Awaitable[httpx.Response]:
        return world.api("POST", f"/admin/tenants/{school}/domains", as_=ADMIN, data={"host": host})

    responses = await asyncio.gather(add(s1, "cd-one.example.ma"), add(s2, "cd-one.example.ma"))
    statuses = sorted(r.status_code for r in responses)
    assert statuses in ([303, 400], [303, 409]), statuses
    assert await world.sql("SELECT COUNT(*) FROM tenant_domain WHERE host = 'cd-one.example.ma'") == 1
    held = [("INSERT INTO tenant_domain (tenant_id, host) VALUES ($1, $2)", (world.ids[s2], "cd-two.example.ma"))]
    raced = await while_held(world, held, lambda: add(s1, "cd-two.example.ma"))
    assert raced.status_code == 409, raced.text
    assert 'id="host-error"' in raced.text
    owner = await world.sql("SELECT tenant_id FROM tenant_domain WHERE host = 'cd-two.example.ma'")
    assert owner == world.ids[s2]
    assert (await world.services.tenants.by_host("cd-two.example.ma")).slug == s2


# -- 4. taking a school out of a programme ------------------------------------------------------------


async def test_platform_admin_takes_a_school_out_of_a_programme(world):
    tree = await fresh_tree(world, "rm", schools=2)
    s1, s2 = tree["school1"], tree["school2"]
    programme = f"prog-rm-{world.backend}"
    await make_programme(world, programme, [s1, s2])
    manager = await make_manager(world, programme, f"pm.rm.{world.backend}@test.ma")
    switched = await world.api(
        "POST",
        f"/admin/programmes/{programme}/modules",
        as_=manager,
        data={"module": "homework", "state": "on", "reason": "pilot"},
    )
    assert switched.status_code == 303
    node1 = await world.services.tenants.by_slug(s1)
    assert "homework" not in await world.services.disabled_for(node1.path)
    assert (await world.api("GET", f"/admin/tenants/{s1}", as_=manager)).status_code == 200

    page = await world.api("GET", f"/admin/programmes/{programme}", as_=ADMIN)
    assert 'id="remove-form"' in page.text and f'<option value="{s1}"' in page.text
    managers_page = await world.api("GET", f"/admin/programmes/{programme}", as_=manager)
    assert 'id="remove-form"' not in managers_page.text

    url = f"/admin/programmes/{programme}/schools/remove"
    no_reason = await world.api("POST", url, as_=ADMIN, data={"school": s1, "reason": " x "})
    assert no_reason.status_code == 400 and 'id="remove-reason-error"' in no_reason.text
    by_manager = await world.api("POST", url, as_=manager, data={"school": s1, "reason": "not theirs"})
    assert by_manager.status_code == 403
    stranger = await world.api("POST", url, as_=ADMIN, data={"school": "lycee-ibn-batouta", "reason": "not in it"})
    assert stranger.status_code == 404 and 'id="remove-school-error"' in stranger.text
    pid = await world.sql("SELECT id FROM programme WHERE slug = {}", programme)
    assert await world.sql("SELECT COUNT(*) FROM programme_school WHERE programme_id = {}", pid) == 2

    done = await world.api("POST", url, as_=ADMIN, data={"school": s1, "reason": "Leaves the pilot in June"})
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"/admin/programmes/{programme}?done=school-removed"
    assert await world.sql("SELECT COUNT(*) FROM programme_school WHERE programme_id = {}", pid) == 1
    # at once: the programme's switch no longer applies there, and the manager no longer reaches it
    assert "homework" in await world.services.disabled_for(node1.path)
    node2 = await world.services.tenants.by_slug(s2)
    assert "homework" not in await world.services.disabled_for(node2.path)
    assert (await world.api("GET", f"/admin/tenants/{s1}", as_=manager)).status_code == 403
    page = await world.api("GET", f"/admin/programmes/{programme}?done=school-removed", as_=manager)
    assert f'data-member="{s1}"' not in page.text and f'data-member="{s2}"' in page.text
    assert 'role="status"' in page.text

    audit = await world.sql(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'programme.remove_school' AND object_id = {} "
        "AND reason = 'Leaves the pilot in June' AND school_id = {}",
        programme,
        node1.id,
    )
    assert audit == 1
    history = await world.api("GET", f"/admin/programmes/{programme}/history", as_=ADMIN)
    assert 'data-action="programme.remove_school"' in history.text and "Leaves the pilot in June" in history.text
    again = await world.api("POST", url, as_=ADMIN, data={"school": s1, "reason": "twice"})
    assert again.status_code == 404


async def test_the_api_takes_a_school_out_of_a_programme(world):
    tree = await fresh_tree(world, "rma", schools=2)
    s1, s2 = tree["school1"], tree["school2"]
    programme = f"prog-rma-{world.backend}"
    await make_programme(world, programme, [s1, s2])
    url = f"/api/v1/programmes/{programme}/schools/remove"
    short = await world.api("POST", url, as_=ADMIN, json={"school": s1, "reason": "x"})
    assert short.status_code == 400
    blank = await world.api("POST", url, as_=ADMIN, json={"school": s1, "reason": "     "})
    assert blank.status_code == 400 and blank.json()["errors"][0]["field"] == "reason"
    casa = await world.api("POST", url, as_="region.casa@madrasa.demo", json={"school": s1, "reason": "mine"})
    assert casa.status_code == 403
    done = await world.api("POST", url, as_=ADMIN, json={"school": s1, "reason": "Leaves the pilot"})
    assert done.status_code == 200, done.text
    assert done.json()["schools"] == [s2]
    again = await world.api("POST", url, as_=ADMIN, json={"school": s1, "reason": "Leaves the pilot"})
    assert again.status_code == 404
    unknown = await world.api("POST", url, as_=ADMIN, json={"school": "no-such-school", "reason": "Leaves"})
    assert unknown.status_code == 404


@postgres_only
async def test_concurrent_removals_audit_once(world):
    tree = await fresh_tree(world, "rmc", schools=1)
    programme = "prog-rmc-postgres"
    await make_programme(world, programme, [tree["school1"]])
    await world.token(ADMIN)
    url = f"/api/v1/programmes/{programme}/schools/remove"
    body = {"school": tree["school1"], "reason": "Leaves the pilot"}
    responses = await asyncio.gather(*(world.api("POST", url, as_=ADMIN, json=body) for _ in range(2)))
    assert sorted(r.status_code for r in responses) == [200, 404], [r.text for r in responses]
    audited = await world.sql(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'programme.remove_school' AND object_id = {}", programme
    )
    assert audited == 1


def test_unique_violations_are_recognised():
    assert service.unique_violation(sqlite3.IntegrityError("UNIQUE constraint failed: tenant.code")) is not None
    assert service.unique_violation(sqlite3.IntegrityError("NOT NULL constraint failed: tenant.kind")) is None
    assert service.unique_violation(ValueError("UNIQUE")) is None
    assert re.search("code", service.unique_violation(sqlite3.IntegrityError("UNIQUE constraint failed: tenant.code")))


async def test_the_programme_page_serves_the_manager_of_an_empty_programme(world):
    from admin_ui.programme_pages import programme_page
    from core.access import scope_for

    programme = f"prog-empty-{world.backend}"
    await make_programme(world, programme, [])
    manager = await make_manager(world, programme, f"pm.empty.{world.backend}@test.ma")
    row = await world.services.db.fetchrow("SELECT id, email, full_name FROM person WHERE email = {}", manager)
    grants = await world.services.grants.grants(row["id"])
    # what the request's permission check sees: a manager whose programme has no school reaches no tenant
    assert not scope_for(grants, world.services.permissions.roles_for("modules.view"), None)
    identity = Identity(row["id"], row["email"], row["full_name"], "", "fr")
    ctx = RequestContext(services=world.services, permission="modules.view", identity=identity)
    response = await programme_page.fn(ctx=ctx, programme=programme, done=None)
    assert response.status_code == 200
    assert response.context["matrix"] == [] and response.context["schools"] == []
    assert response.context["admin_roles"] == frozenset({"programme_manager"})
    assert response.template_name == "admin/programme.html" and not response.context["can_edit_members"]


async def test_a_switch_for_a_programme_without_schools_is_audited(world):
    programme = f"prog-noschool-{world.backend}"
    await make_programme(world, programme, [])
    page = await world.api("GET", f"/admin/programmes/{programme}", as_=ADMIN)
    assert page.status_code == 200 and "data-matrix" not in page.text and 'id="switch-form"' in page.text
    done = await world.api(
        "POST",
        f"/admin/programmes/{programme}/modules",
        as_=ADMIN,
        data={"module": "homework", "state": "on", "reason": "Ready before the schools join"},
    )
    assert done.status_code == 303, done.text
    audited = await world.sql(
        "SELECT COUNT(*) FROM audit_log WHERE object_type = 'programme_module' AND object_id = {} AND reason = {}",
        f"{programme}:homework",
        "Ready before the schools join",
    )
    assert audited == 1
    history = await world.api("GET", f"/admin/programmes/{programme}/history", as_=ADMIN)
    assert 'data-module="homework"' in history.text
