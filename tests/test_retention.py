"""Retention periods (law 09-08): a region sets them, the daily purge deletes what is past them, audited.

Each test's old rows are its own (made far in the past, in one region) and the other region's rows of the
same age show that a region's periods apply to that region only.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from core.cli import build_parser
from core.jobs import job_function
from core.privacy import retention
from core.scope import Scope
from tests.conftest import World
from tests.job_helpers import app_queue

REGION = "casablanca-settat"
OTHER_REGION = "rabat-sale-kenitra"
SCHOOL = "lycee-ibn-batouta"  # in REGION
OTHER_SCHOOL = "lycee-moulay-youssef"  # in OTHER_REGION
REGION_ADMIN = "region.casa@madrasa.demo"
OTHER_REGION_ADMIN = "region.rabat@madrasa.demo"


async def set_periods(world: World, region: str, values: dict[str, int], as_: str = REGION_ADMIN) -> Any:
    return await world.api("PUT", "/api/v1/privacy/retention", as_=as_, tenant=region, json=values)


def test_defaults_and_bounds_are_sensible() -> None:
    for kind in retention.KINDS.values():
        assert kind.minimum <= kind.default <= kind.maximum
    assert retention.KINDS["audit"].minimum >= 365  # the database function refuses less, too
    retention.check_days({"audit": 365, "logins": 30})
    with pytest.raises(retention.Invalid):
        retention.check_days({"audit": 364})
    with pytest.raises(retention.Invalid):
        retention.check_days({"shoe_sizes": 40})
    now = datetime(2027, 1, 31, tzinfo=UTC)
    cutoffs = retention.cutoffs_for({"notices": {"days": 30, "source": "region"}}, now)
    assert cutoffs == {"notices": datetime(2027, 1, 1, tzinfo=UTC)}


async def test_a_region_admin_sets_the_regions_periods_audited(world: World) -> None:
    before = await world.api("GET", "/api/v1/privacy/retention", as_=OTHER_REGION_ADMIN, tenant=OTHER_REGION)
    assert before.status_code == 200
    assert before.json()["periods"]["audit"] == {
        "days": 1095,
        "source": "default",
        "default": 1095,
        "minimum": 365,
        "maximum": 3650,
    }
    saved = await set_periods(world, OTHER_REGION, {"messages": 400}, as_=OTHER_REGION_ADMIN)
    assert saved.status_code == 200, saved.text
    assert saved.json()["periods"]["messages"]["days"] == 400
    assert saved.json()["periods"]["messages"]["source"] == "region"
    region_id = world.ids[OTHER_REGION]
    assert await world.sql(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'retention.change' AND object_id = {} AND region_id = {}",
        str(region_id),
        region_id,
    )
    too_short = await set_periods(world, OTHER_REGION, {"audit": 30}, as_=OTHER_REGION_ADMIN)
    assert too_short.status_code == 400 and too_short.json()["errors"][0]["field"] == "audit"
    # another region's administrator, a school's director, a school's address: refused
    assert (await set_periods(world, OTHER_REGION, {"messages": 500})).status_code == 403
    director = await set_periods(world, SCHOOL, {"messages": 500}, as_=f"director.{SCHOOL}@test.ma")
    assert director.status_code == 403
    assert (await set_periods(world, SCHOOL, {"messages": 500})).status_code == 403
    after = await world.api("GET", "/api/v1/privacy/retention", as_=OTHER_REGION_ADMIN, tenant=OTHER_REGION)
    assert after.json()["periods"]["messages"]["days"] == 400
    # the platform's row is the default of every region that set none
    platform = await world.api(
        "PUT", "/api/v1/privacy/retention", as_="admin@madrasa.demo", tenant="platform", json={"messages": 500}
    )
    assert platform.status_code == 200, platform.text
    region = await world.api("GET", "/api/v1/privacy/retention", as_=REGION_ADMIN, tenant=REGION)
    assert region.json()["periods"]["messages"] == {
        "days": 500,
        "source": "platform",
        "default": 365,
        "minimum": 30,
        "maximum": 1825,
    }
    assert (await set_periods(world, "platform", {"messages": 600})).status_code == 403


async def test_the_retention_page_of_a_region(world: World) -> None:
    page = await world.api("GET", "/privacy/retention?lang=fr", as_=REGION_ADMIN, tenant=REGION)
    assert page.status_code == 200 and "Conservation des données personnelles" in page.text
    assert 'name="notices"' in page.text
    home = await world.api("GET", "/", as_=REGION_ADMIN, tenant=REGION)
    assert f'href="/t/{REGION}/privacy/retention"' in home.text
    from_school = await world.api("GET", "/privacy/retention", as_=REGION_ADMIN, tenant=SCHOOL)
    assert from_school.status_code in (302, 303) and from_school.headers["location"].endswith(
        f"/t/{REGION}/privacy/retention"
    )
    _, csrf = await world.web_session(REGION_ADMIN)
    wrong = await world.api(
        "POST", "/privacy/retention?lang=fr", as_=REGION_ADMIN, tenant=REGION, data={"csrf_token": csrf, "logins": "5"}
    )
    assert wrong.status_code == 400 and "Conservez entre 30 et 730 jours." in wrong.text
    saved = await world.api(
        "POST", "/privacy/retention", as_=REGION_ADMIN, tenant=REGION, data={"csrf_token": csrf, "logins": "90"}
    )
    assert saved.status_code == 200
    current = await world.api("GET", "/api/v1/privacy/retention", as_=REGION_ADMIN, tenant=REGION)
    assert current.json()["periods"]["logins"]["days"] == 90


async def old_rows(world: World, school: str, age: timedelta) -> dict[str, Any]:
    """An audit entry, an ended session and a family notice of ``school``, ``age`` old; returns their keys."""
    tenant = await world.services.tenants.by_slug(school)
    assert tenant is not None
    cols = tenant.scope_columns()
    at = datetime.now(UTC) - age
    marker = secrets.token_hex(6)
    student = world.objects[school]["student_id"]
    on_date = date(1990, 1, 1) + timedelta(days=secrets.randbelow(3000))
    db = world.services.db
    async with db.scoped(Scope.everything()):
        await db.execute(
            "INSERT INTO audit_log (at, actor_id, action, object_type, object_id, tenant_id, region_id, province_id, "
            "school_id, reason, request_id) VALUES ({}, NULL, 'test.old', 'test', {}, {}, {}, {}, {}, '', '')",
            at,
            marker,
            tenant.id,
            cols["region_id"],
            cols["province_id"],
            cols["school_id"],
        )
        await db.execute(
            "INSERT INTO auth_session (id, person_id, kind, secret_hash, csrf_token, tenant_id, created_at, "
            "expires_at, user_agent, ip) VALUES ({}, {}, 'web', {}, '', {}, {}, {}, 'test', '127.0.0.1')",
            marker,
            world.objects[school]["guardian_id"],
            secrets.token_hex(32),
            tenant.id,
            at - timedelta(hours=12),
            at,
        )
        await db.execute(
            "INSERT INTO attendance_notice (region_id, province_id, school_id, student_id, on_date, kind, created_at, "
            "status, channels) VALUES ({}, {}, {}, {}, {}, 'absence', {}, 'sent', 'mail')",
            cols["region_id"],
            cols["province_id"],
            cols["school_id"],
            student,
            on_date,
            at,
        )
    return {"marker": marker, "on_date": on_date, "student": student}


async def still_there(world: World, rows: dict[str, Any]) -> dict[str, bool]:
    return {
        "audit": bool(await world.sql("SELECT COUNT(*) FROM audit_log WHERE object_id = {}", rows["marker"])),
        "logins": bool(await world.sql("SELECT COUNT(*) FROM auth_session WHERE id = {}", rows["marker"])),
        "notices": bool(
            await world.sql(
                "SELECT COUNT(*) FROM attendance_notice WHERE student_id = {} AND on_date = {}",
                rows["student"],
                rows["on_date"],
            )
        ),
    }


async def test_the_purge_deletes_what_is_past_the_regions_periods_and_audits_it(world: World) -> None:
    saved = await set_periods(world, REGION, {"audit": 400, "logins": 30, "notices": 30})
    assert saved.status_code == 200, saved.text
    old = await old_rows(world, SCHOOL, timedelta(days=500))
    recent = await old_rows(world, SCHOOL, timedelta(days=20))
    middle = await old_rows(world, SCHOOL, timedelta(days=200))  # past logins and notices, not the audit
    elsewhere = await old_rows(world, OTHER_SCHOOL, timedelta(days=200))  # the other region keeps its defaults
    results = await retention.purge(world.services)

    assert await still_there(world, old) == {"audit": False, "logins": False, "notices": False}
    assert await still_there(world, recent) == {"audit": True, "logins": True, "notices": True}
    assert await still_there(world, middle) == {"audit": True, "logins": False, "notices": False}
    assert await still_there(world, elsewhere) == {"audit": True, "logins": False, "notices": True}
    mine = next(r for r in results if r["tenant"] == REGION)
    assert mine["counts"]["audit"] >= 1 and mine["counts"]["notices"] >= 2 and mine["counts"]["logins"] >= 2
    assert {r["tenant"] for r in results} >= {"platform", REGION, OTHER_REGION}
    entry = await world.sql(
        "SELECT after FROM audit_log WHERE action = 'retention.purge' AND object_id = {} AND region_id = {} "
        "ORDER BY id DESC LIMIT 1",
        str(world.ids[REGION]),
        world.ids[REGION],
    )
    text = entry if isinstance(entry, str) else entry.decode() if isinstance(entry, bytes) else str(entry)
    assert '"notices"' in text and '"days"' in text


async def test_the_purge_runs_as_a_job_and_as_a_command(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert job_function(world.services, retention.JOB) is not None
    old = await old_rows(world, OTHER_SCHOOL, timedelta(days=4000))
    async with app_queue(world) as queue:
        job_id = await queue.enqueue(retention.JOB, {}, scope_columns={}, created_by=None)
        info = await queue.wait(job_id, seconds=60)
    assert info.status == "done", info.error
    assert any(r["tenant"] == OTHER_REGION for r in info.result["purged"])
    assert (await still_there(world, old))["audit"] is False

    args = build_parser(None).parse_args(["purge"])
    assert args.func is retention.cmd_purge
    older = await old_rows(world, OTHER_SCHOOL, timedelta(days=4000))
    assert await asyncio.to_thread(retention.cmd_purge, argparse.Namespace(), world.settings) == 0
    assert f"{OTHER_REGION}: audit 1," in capsys.readouterr().out
    assert (await still_there(world, older))["audit"] is False


@pytest.mark.postgres_only
async def test_the_application_role_still_cannot_erase_recent_audit_entries(world: World) -> None:
    conn = await asyncpg.connect(world.settings.database_url)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM audit_log WHERE action = 'test.old'")
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.platform', 'on', true)")
            with pytest.raises(asyncpg.RaiseError, match="at least 365 days"):
                await conn.fetchval("SELECT madrasa_purge_audit(NULL, now() - interval '30 days')")
    finally:
        await conn.close()


async def test_recent_audit_entries_cannot_be_deleted_even_by_the_purge_path(world: World) -> None:
    recent = await old_rows(world, SCHOOL, timedelta(days=300))
    db = world.services.db
    with pytest.raises(Exception, match=r"append-only|at least 365 days"):
        async with db.scoped(Scope.everything()):
            await retention._purge_audit(db, world.ids[REGION], datetime.now(UTC))
    if db.dialect == "sqlite":  # one connection, no roles: the trigger is the guard
        with pytest.raises(Exception, match="append-only"):
            async with db.scoped(Scope.everything()):
                await db.execute("DELETE FROM audit_log WHERE object_id = {}", recent["marker"])
    assert (await still_there(world, recent))["audit"] is True


def test_the_purge_is_scheduled_daily():
    """Nobody has to remember cron: the purge is a periodic job of the scheduler every process that runs jobs has."""
    from core.jobs import JOBS
    from core.privacy.retention import JOB
    from core.schedule import PERIOD_ATTR

    assert getattr(JOBS[JOB], PERIOD_ATTR, None) == 24 * 3600
