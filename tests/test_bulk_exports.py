"""Bulk exports of personal data: every export route is marked, audited, and limited per account and hour.

The marking is checked on the routes themselves (a new export cannot forget it); the audit entry and the
429 with ``Retry-After`` (translated, on the API and on the portal) are checked through HTTP on both
backends.
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from typing import Any

import msgspec
from litestar import Litestar, get

from core.app import create_app
from core.permissions import PUBLIC
from core.privacy import bulk
from tests.conftest import World, make_settings

SCHOOL = "lycee-ibn-batouta"

#: Media types of downloads: a route answering one of them hands out a file.
FILE_TYPES = ("csv", "spreadsheet", "excel", "zip", "pdf", "octet-stream", "calendar")
#: Words of a path that name an export or a download.
EXPORT_WORDS = ("export", ".csv", ".xlsx", ".zip", "download", "archive")
#: Routes that hand out a file but not personal data in bulk, and why.
NOT_BULK = {
    "/api/v1/files/{file_id:int}": "one stored file, read by its uploader, its readers or the school's managers",
    "/api/v1/grades/bulletins/{bulletin_id:int}": "one pupil's report card, for the family or the school",
    "/api/v1/attendance/justifications/{justification_id:int}/document": "one justification's document",
    "/api/v1/me/data-export": "one's own data (the right of access), audited by the export itself",
    "/api/v1/me/data-export/{job_id:str}": "the status of one's own data export",
    "/api/v1/me/data-export/{job_id:str}/download": "one's own data, or one's child's (audited download)",
    "/my-data/{job_id:str}/download": "one's own data, or one's child's (audited download)",
    "/calendar/{token:str}": "one's own timetable as an iCalendar feed",
    "/api/v1/me/pupils/{student_id:int}/bulletins/{term_id:int}/{locale:str}": "one's child's (or one's own) report "
    "card for a term",
    "/api/v1/me/pupils/{student_id:int}/marks": "one's child's (or one's own) published marks, as JSON with an ETag",
    "/api/v1/me/pupils/{student_id:int}/results": "one's child's (or one's own) averages, as JSON with an ETag",
    "/logo": "the tenant's logo",
    "/metrics": "operational metrics, no personal data",
}


def _annotation(handler: Any) -> str:
    fn = getattr(handler, "fn", None)
    return str(inspect.signature(fn).return_annotation) if fn is not None else ""


def looks_like_export(path: str, handler: Any) -> bool:
    """Whether a GET route hands out a file or names an export (a pure check of its declaration)."""
    media = str(handler.media_type or "").lower()
    returns = _annotation(handler)
    return (
        any(kind in media for kind in FILE_TYPES)
        or bool(re.search(r"\bFile\b|\bStream\b|\bbytes\b", returns))
        or any(word in path.lower() for word in EXPORT_WORDS)
    )


def unmarked(app: Litestar) -> list[str]:
    """Export routes that carry no ``bulk_export`` and are not explained in :data:`NOT_BULK`."""
    found = []
    for route in app.routes:
        if route.path.startswith(("/static", "/schema")):
            continue
        for handler in getattr(route, "route_handlers", []):
            if "GET" not in handler.http_methods or not looks_like_export(route.path, handler):
                continue
            if not handler.opt.get("bulk_export") and route.path not in NOT_BULK:
                found.append(route.path)
    return sorted(set(found))


def marked(app: Litestar) -> dict[str, str]:
    """``{path: kind}`` of the routes marked as bulk exports."""
    return {
        route.path: handler.opt["bulk_export"]
        for route in app.routes
        for handler in getattr(route, "route_handlers", [])
        if handler.opt.get("bulk_export")
    }


def test_every_export_route_is_marked(tmp_path: Path) -> None:
    app = create_app(make_settings("sqlite", tmp_path, None), wrap=False)
    assert unmarked(app) == []
    kinds = marked(app)
    assert {
        "/api/v1/attendance/stats.csv": "attendance.stats",
        "/api/v1/grades/sheets/{sheet_id:int}/xlsx": "grades.xlsx",
        "/api/v1/oneroster/export": "oneroster",
        "/admin/oneroster/export": "oneroster",
        "/api/v1/archives/{slug:str}": "archive",
        "/api/v1/archive-jobs/{job_id:str}": "archive",
        "/api/v1/onboarding/batches/{batch_id:str}/errors.csv": "onboarding.errors",
        "/admin/onboarding/batches/{batch_id:str}/errors.csv": "onboarding.errors",
    }.items() <= kinds.items()
    assert all(isinstance(kind, str) and kind for kind in kinds.values())
    # the explained exceptions are real routes (a renamed route must not leave a stale excuse behind)
    paths = {route.path for route in app.routes}
    assert set(NOT_BULK) <= paths


def test_the_check_bites() -> None:
    @get("/api/v1/example/pupils.csv", opt={"permission": PUBLIC}, media_type="text/csv", sync_to_thread=False)
    def pupils() -> str:
        return ""

    @get("/api/v1/example/report", opt={"permission": PUBLIC}, media_type="application/zip", sync_to_thread=False)
    def report() -> bytes:
        return b""

    @get("/api/v1/example/class-list.csv", opt={"permission": PUBLIC, "bulk_export": "x"}, sync_to_thread=False)
    def marked_list() -> str:
        return ""

    app = Litestar([pupils, report, marked_list])
    assert unmarked(app) == ["/api/v1/example/pupils.csv", "/api/v1/example/report"]


def test_retry_after_counts_down_from_the_oldest_export() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)
    assert bulk.retry_after(now - timedelta(minutes=50), now) == 600
    assert bulk.retry_after(now - timedelta(hours=2), now) == 1
    assert bulk.retry_after(None, now) == 1


async def exports_of(world: World, email: str) -> list[dict[str, Any]]:
    person = await world.sql("SELECT id FROM person WHERE email = {}", email)
    rows = []
    db = world.services.db
    from core.scope import Scope

    async with db.scoped(Scope.everything(), write=False):
        for row in await db.fetch(
            "SELECT object_id, school_id, after FROM audit_log WHERE action = 'bulk_export' AND actor_id = {} "
            "ORDER BY id",
            person,
        ):
            after = row["after"]
            row["after"] = json.loads(after) if isinstance(after, str | bytes) else after
            rows.append(row)
    return rows


async def test_an_export_is_audited_and_a_failed_one_is_not(world: World) -> None:
    director = f"director.{SCHOOL}@test.ma"
    before = len(await exports_of(world, director))
    response = await world.api("GET", "/api/v1/attendance/stats.csv?level=class", as_=director, tenant=SCHOOL)
    assert response.status_code == 200, response.text
    entries = await exports_of(world, director)
    assert len(entries) == before + 1
    assert entries[-1]["object_id"] == "attendance.stats"
    assert entries[-1]["school_id"] == world.ids[SCHOOL]
    assert entries[-1]["after"]["path"] == "/api/v1/attendance/stats.csv"
    assert entries[-1]["after"]["query"] == "level=class"
    assert entries[-1]["after"]["rows"] == response.text.count("\n") - 1  # the CSV's lines but its header
    missing = await world.api("GET", "/api/v1/grades/sheets/99999999/xlsx", as_=director, tenant=SCHOOL)
    assert missing.status_code == 404
    assert len(await exports_of(world, director)) == before + 1


async def test_an_account_over_its_hourly_limit_gets_429_on_the_api_and_the_portal(world: World) -> None:
    email = await world.add_person("bulk.exporter@test.ma", "school_director", SCHOOL)
    settings = world.services.settings
    world.services.settings = msgspec.structs.replace(settings, bulk_exports_per_hour=2)
    try:
        for _ in range(2):
            ok = await world.api("GET", "/api/v1/oneroster/export", as_=email, tenant=SCHOOL)
            assert ok.status_code == 200, ok.text
        refused = await world.api("GET", "/api/v1/oneroster/export?lang=fr", as_=email, tenant=SCHOOL)
        assert refused.status_code == 429
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert 1 <= int(refused.headers["retry-after"]) <= 3600
        assert refused.json()["code"] == "bulk_export_limit"
        assert "exports en masse" in refused.json()["detail"]
        page = await world.api("GET", "/admin/oneroster/export?lang=ar", as_=email, tenant=SCHOOL)
        assert page.status_code == 429 and "text/html" in page.headers["content-type"]
        assert "تصدير جماعي" in page.text and int(page.headers["retry-after"]) >= 1
        # the limit is the account's: another director of the school still exports (a fresh one: the shared
        # director's exports in other tests count against the same hour)
        colleague = await world.add_person("bulk.colleague@test.ma", "school_director", SCHOOL)
        other = await world.api("GET", "/api/v1/oneroster/export", as_=colleague, tenant=SCHOOL)
        assert other.status_code == 200
        assert len(await exports_of(world, email)) == 2  # refusals are not exports
    finally:
        world.services.settings = settings
