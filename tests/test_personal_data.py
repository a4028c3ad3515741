"""The right of access (law 09-08): a person, or a guardian for each child, downloads everything held as a zip.

The archive is made by the ``privacy.export`` job from core's sections and every plugin's
``madrasa_personal_data``; the API and the portal page start it and download it, only for the person who
asked; requests and downloads are audited. A guardian with children in two regions exports for each.
"""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, date, datetime
from typing import Any

from core import audit
from core.middleware import SESSION_COOKIE
from core.privacy.export import DataSubject, collect
from core.scope import Scope
from tests.conftest import PASSWORD, World, link_guardian
from tests.job_helpers import app_queue

SCHOOL = "lycee-ibn-batouta"  # casablanca-settat
OTHER_REGION_SCHOOL = "lycee-moulay-youssef"  # rabat-sale-kenitra


def archive_of(response: Any) -> tuple[dict[str, Any], zipfile.ZipFile]:
    """The manifest and the zip of a download."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/zip")
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    return json.loads(archive.read("manifest.json")), archive


def section(archive: zipfile.ZipFile, name: str) -> list[dict[str, Any]]:
    """The rows of ``data/<name>.json``."""
    return json.loads(archive.read(f"data/{name}.json"))


async def pupil_records(world: World, school: str) -> dict[str, int]:
    """A mark and a family notice of the school's seeded pupil (once per world)."""
    objects = world.objects[school]
    tenant = await world.services.tenants.by_slug(school)
    assert tenant is not None
    cols = tenant.scope_columns()
    db = world.services.db
    async with db.scoped(Scope.everything()):
        exists = await db.fetchval(
            "SELECT COUNT(*) FROM grade_mark WHERE student_id = {} AND assessment_id = {}",
            objects["student_id"],
            objects["assessment_id"],
        )
        if not exists:
            await db.execute(
                "INSERT INTO grade_mark (region_id, province_id, school_id, assessment_id, student_id, score, status, "
                "updated_at) VALUES ({}, {}, {}, {}, {}, {}, 'present', {})",
                cols["region_id"],
                cols["province_id"],
                cols["school_id"],
                objects["assessment_id"],
                objects["student_id"],
                "15.50",
                datetime.now(UTC),
            )
        notice = await db.fetchval(
            "SELECT COUNT(*) FROM attendance_notice WHERE student_id = {} AND on_date = {}",
            objects["student_id"],
            date(2026, 10, 6),
        )
        if not notice:  # on its own: another test may have saved the mark already
            await db.execute(
                "INSERT INTO attendance_notice (region_id, province_id, school_id, student_id, on_date, kind, "
                "created_at, status, channels) VALUES ({}, {}, {}, {}, {}, 'absence', {}, 'sent', 'mail')",
                cols["region_id"],
                cols["province_id"],
                cols["school_id"],
                objects["student_id"],
                date(2026, 10, 6),
                datetime.now(UTC),
            )
    return objects


async def finished(world: World, queue: Any, response: Any) -> str:
    """Wait for the export a POST started; returns its job id."""
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    info = await queue.wait(job_id, seconds=60)
    assert info.status == "done", info.error
    return str(job_id)


async def test_a_guardian_exports_a_childs_data_through_the_api(world: World) -> None:
    objects = await pupil_records(world, SCHOOL)
    guardian = f"guardian.{SCHOOL}@test.ma"
    async with app_queue(world) as queue:
        started = await world.api(
            "POST", "/api/v1/me/data-export", as_=guardian, json={"student_id": objects["student_id"]}
        )
        job_id = await finished(world, queue, started)
    status = await world.api("GET", f"/api/v1/me/data-export/{job_id}", as_=guardian)
    assert status.status_code == 200 and status.json()["status"] == "done"
    assert status.json()["result"]["rows"] > 0
    manifest, archive = archive_of(await world.api("GET", f"/api/v1/me/data-export/{job_id}/download", as_=guardian))
    names = {s["name"] for s in manifest["sections"]}
    assert {"pupil", "enrolments", "guardians", "grades.marks", "attendance.notices", "audit"} <= names
    assert "README.txt" in archive.namelist()
    assert section(archive, "pupil")[0]["national_code"] == "S000000001"
    marks = section(archive, "grades.marks")
    held = await world.sql(  # the mark as the database holds it (another test may have changed it)
        "SELECT score FROM grade_mark WHERE student_id = {} AND assessment_id = {}",
        objects["student_id"],
        objects["assessment_id"],
    )
    assert [float(m["score"]) for m in marks if m["title"] == "Contrôle 1"] == [float(held)]
    notices = [n["on_date"] for n in section(archive, "attendance.notices")]
    held = await world.sql("SELECT COUNT(*) FROM attendance_notice WHERE student_id = {}", objects["student_id"])
    assert "2026-10-06" in notices and len(notices) == held
    # the seeded report card has no stored PDF: listed as missing rather than failing the export
    assert {"section": "grades.bulletins", "name": f"bulletin-{objects['term_id']}-{objects['bulletin_id']}.pdf",
            "missing": True} in manifest["files"]  # fmt: skip
    actions = await world.sql(
        "SELECT COUNT(*) FROM audit_log WHERE action IN ('privacy.export', 'privacy.export_download') "
        "AND actor_id = {} AND object_type = 'student' AND object_id = {}",
        objects["guardian_id"],
        str(objects["student_id"]),
    )
    assert actions == 2


async def test_someone_elses_child_and_export_stay_out_of_reach(world: World) -> None:
    objects = await pupil_records(world, SCHOOL)
    stranger = f"guardian.{OTHER_REGION_SCHOOL}@test.ma"
    refused = await world.api(
        "POST", "/api/v1/me/data-export", as_=stranger, json={"student_id": objects["student_id"]}
    )
    assert refused.status_code == 404
    async with app_queue(world) as queue:
        mine = await world.api("POST", "/api/v1/me/data-export", as_=f"guardian.{SCHOOL}@test.ma", json={})
        job_id = await finished(world, queue, mine)
    assert (await world.api("GET", f"/api/v1/me/data-export/{job_id}", as_=stranger)).status_code == 404
    assert (await world.api("GET", f"/api/v1/me/data-export/{job_id}/download", as_=stranger)).status_code == 404
    assert (await world.api("GET", "/api/v1/me/data-export")).status_code == 401


async def test_a_person_exports_account_logins_and_uploaded_files(world: World) -> None:
    director = f"director.{SCHOOL}@test.ma"
    person = await world.sql("SELECT id FROM person WHERE email = {}", director)
    tenant = await world.services.tenants.by_slug(SCHOOL)
    db = world.services.db
    async with db.scoped(Scope.everything()):
        # what the director did to a pupil's record: listed without the pupil's values
        await audit.record(
            db,
            actor_id=person,
            action="test.pupil_change",
            object_type="student",
            object_id=world.objects[SCHOOL]["student_id"],
            tenant=tenant,
            before={"score": "9"},
            after={"score": "12"},
            reason="about the pupil",
        )
        # what someone did to the director's own record: listed in full
        await audit.record(
            db,
            actor_id=None,
            action="test.person_change",
            object_type="person",
            object_id=person,
            tenant=tenant,
            after={"full_name": "Director"},
        )
    async with app_queue(world) as queue:
        job_id = await finished(world, queue, await world.api("POST", "/api/v1/me/data-export", as_=director, json={}))
    manifest, archive = archive_of(await world.api("GET", f"/api/v1/me/data-export/{job_id}/download", as_=director))
    account = section(archive, "account")
    assert account[0]["email"] == director and account[0]["has_password"] is True
    assert "password_hash" not in account[0] and "$argon2" not in archive.read("data/account.json").decode()
    assert {"role": "school_director", "tenant": SCHOOL}.items() <= section(archive, "roles")[0].items()
    assert section(archive, "login_sessions"), "the logins that made the test's tokens are listed"
    uploaded = [f for f in manifest["files"] if f["section"] == "files"]
    # every file the director uploaded (other tests upload more as this director), the seeded one among them
    assert len(uploaded) == await world.sql("SELECT COUNT(*) FROM stored_file WHERE owner_id = {}", person)
    assert b"%PDF-1.4\n% test\n" in {archive.read(f["name"]) for f in uploaded}
    entries = {entry["action"]: entry for entry in section(archive, "audit")}
    assert entries["privacy.export"]["after"]["person_id"] == person
    assert entries["test.pupil_change"]["after"] is None and entries["test.pupil_change"]["reason"] == ""
    assert entries["test.person_change"]["after"] == {"full_name": "Director"}


async def test_a_guardian_with_children_in_two_regions_exports_each_from_the_portal(world: World) -> None:
    email = "two.regions@test.ma"
    first = world.objects[SCHOOL]["student_id"]
    second = world.objects[OTHER_REGION_SCHOOL]["student_id"]
    person = await link_guardian(world, SCHOOL, first, email, "Parent of two")
    await link_guardian(world, OTHER_REGION_SCHOOL, second, email, "Parent of two")
    await world.services.identity.set_password(person, PASSWORD)
    world.passwords[email] = PASSWORD

    listed = await world.api("GET", "/api/v1/me/data-export", as_=email)
    assert [s["student_id"] for s in listed.json()["subjects"]] == [None, *sorted([first, second])]

    page = await world.api("GET", "/my-data?lang=fr", as_=email, tenant=SCHOOL)
    assert page.status_code == 200
    assert "Mes données" in page.text and "Pupil1" in page.text and "Pupil3" in page.text
    arabic = await world.api("GET", "/my-data?lang=ar", as_=email, tenant=SCHOOL)
    assert "بياناتي" in arabic.text and "تلميذ" in arabic.text
    home = await world.api("GET", "/", as_=email, tenant=SCHOOL)
    assert f'href="/t/{SCHOOL}/my-data"' in home.text
    cookie, csrf = await world.web_session(email)
    async with app_queue(world) as queue:
        posted = await world.client.post(
            f"/t/{SCHOOL}/my-data",
            data={"csrf_token": csrf, "student_id": str(second)},
            headers={"cookie": f"{SESSION_COOKIE}={cookie}"},
        )
        assert posted.status_code in (302, 303), posted.text
        job_id = await world.sql(
            "SELECT id FROM job WHERE kind = 'privacy.export' AND created_by = {} ORDER BY created_at DESC LIMIT 1",
            person,
        )
        assert (await queue.wait(job_id, seconds=60)).status == "done"
    page = await world.api("GET", "/my-data", as_=email, tenant=SCHOOL)
    assert f"/t/{SCHOOL}/my-data/{job_id}/download" in page.text
    download = await world.api("GET", f"/my-data/{job_id}/download", as_=email, tenant=SCHOOL)
    manifest, archive = archive_of(download)
    assert manifest["subject"]["student_ids"] == [second]
    assert section(archive, "pupil")[0]["school"] == OTHER_REGION_SCHOOL
    forged = await world.client.post(
        f"/t/{SCHOOL}/my-data", data={"student_id": str(second)}, headers={"cookie": f"{SESSION_COOKIE}={cookie}"}
    )
    assert forged.status_code == 403  # no CSRF token


async def test_core_and_every_plugin_contribute_sections(world: World) -> None:
    objects = await pupil_records(world, SCHOOL)
    sections = await collect(world.services, DataSubject(person_id=None, student_ids=(objects["student_id"],)))
    names = [s.name for s in sections]
    assert names.index("pupil") < names.index("grades.marks")
    assert {"attendance.absences", "attendance.justifications", "grades.bulletins"} <= set(names)


async def test_the_archive_is_in_storage_and_goes_after_the_keeping_time(world: World) -> None:
    """Any web process finds the zip a worker made (it is in core storage, not on one machine's disk); a week after
    the export it is deleted and the download answers 410."""
    from datetime import timedelta

    from core.privacy.export import KEEP_SECONDS, archive_key, prune_archives

    guardian = f"guardian.{SCHOOL}@test.ma"
    async with app_queue(world) as queue:
        job_id = await finished(world, queue, await world.api("POST", "/api/v1/me/data-export", as_=guardian, json={}))
    platform = (await world.services.tenants.root()).id
    key = archive_key(platform, job_id)
    assert await world.services.storage.exists(key, tenant_id=platform)
    stored = await world.services.storage.get(key, tenant_id=platform)
    download = await world.api("GET", f"/api/v1/me/data-export/{job_id}/download", as_=guardian)
    assert download.status_code == 200 and download.content == stored

    db = world.services.db
    async with db.scoped(Scope.everything()):
        await db.execute(
            "UPDATE job SET finished_at = {} WHERE id = {}",
            datetime.now(UTC) - timedelta(seconds=KEEP_SECONDS + 60),
            job_id,
        )
    assert await prune_archives(world.services) >= 1
    assert not await world.services.storage.exists(key, tenant_id=platform)
    gone = await world.api("GET", f"/api/v1/me/data-export/{job_id}/download", as_=guardian)
    assert gone.status_code == 410
