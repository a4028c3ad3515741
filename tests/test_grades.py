"""Grades: the mark grid (atomic, versioned), its validation, the workflow and who sees what."""

from __future__ import annotations

import asyncio
import random
from datetime import date

import pytest

from tests.conftest import link_guardian

A, A2, B = "lycee-ibn-batouta", "college-al-khawarizmi", "lycee-moulay-youssef"


def code() -> str:
    return "M" + "".join(random.choice("0123456789") for _ in range(9))


class Setup:
    """A fresh class of three pupils with a guardian, a PC teacher and a CC1, per test."""

    def __init__(self, world, school: str = A) -> None:
        self.world, self.school = world, school
        self.director = f"director.{school}@test.ma"
        self.teacher = f"teacher.{school}@test.ma"

    async def post(self, path, body, actor=None):
        return await self.world.api("POST", path, as_=actor or self.director, tenant=self.school, json=body)

    async def build(self) -> Setup:
        w = self.world
        name = f"G-{random.randrange(10**6)}"
        self.class_id = (
            await self.post("/api/v1/school/classes", {"name": name, "level_code": "TC", "track_code": "TCS"})
        ).json()["id"]
        self.pupils = []
        for first in ("Amal", "Badr", "Chaimae"):
            response = await self.post(
                "/api/v1/school/students",
                {"national_code": code(), "first_name": first, "last_name": "Test", "class_id": self.class_id},
            )
            self.pupils.append(response.json()["id"])
        self.guardian = f"g{random.randrange(10**9)}@test.ma"
        pid = await link_guardian(w, self.school, self.pupils[0], self.guardian, "Parent")
        await w.services.identity.set_password(pid, "a-good-password-1")
        w.passwords[self.guardian] = "a-good-password-1"
        self.teacher_id = w.objects[self.school]["teacher_id"]
        assert (
            await self.post(
                "/api/v1/school/assignments",
                {"teacher_id": self.teacher_id, "class_id": self.class_id, "subject_code": "PC"},
            )
        ).status_code == 201
        self.term_id = w.objects[self.school]["term_id"]
        response = await self.post(
            "/api/v1/grades/assessments",
            {
                "class_id": self.class_id,
                "subject_code": "PC",
                "term_id": self.term_id,
                "scheduled_on": "2026-10-12",
                "title": "Contrôle 1",
            },
            actor=self.teacher,
        )
        assert response.status_code == 201, response.text
        self.assessment_id = response.json()["id"]
        self.sheet_id = await w.sql("SELECT sheet_id FROM grade_assessment WHERE id = {}", self.assessment_id)
        return self

    async def grid(self, actor=None):
        return await self.world.api(
            "GET",
            f"/api/v1/grades/assessments/{self.assessment_id}/marks",
            as_=actor or self.teacher,
            tenant=self.school,
        )

    async def save(self, marks, etag, actor=None, reason=None):
        body = {"marks": marks}
        if reason:
            body["reason"] = reason
        headers = {"if-match": etag} if etag else {}
        return await self.world.api(
            "PUT",
            f"/api/v1/grades/assessments/{self.assessment_id}/marks",
            as_=actor or self.teacher,
            tenant=self.school,
            json=body,
            headers=headers,
        )

    async def move(self, action, actor=None):
        return await self.post(
            f"/api/v1/grades/sheets/{self.sheet_id}/{action}",
            {},
            actor=actor or (self.teacher if action == "submit" else self.director),
        )


async def test_grid_round_trip_with_etag(world):
    s = await Setup(world).build()
    first = await s.grid()
    assert first.status_code == 200 and first.headers["etag"] == f'"a{s.assessment_id}.v0"'
    assert [m["student_id"] for m in first.json()["marks"]] and all(m["score"] is None for m in first.json()["marks"])
    marks = [
        {"student_id": s.pupils[0], "score": 14.25},
        {"student_id": s.pupils[1], "score": "9.5"},
        {"student_id": s.pupils[2], "status": "absent"},
    ]
    saved = await s.save(marks, first.headers["etag"])
    assert saved.status_code == 200, saved.text
    assert saved.headers["etag"] == f'"a{s.assessment_id}.v1"'
    got = {m["student_id"]: (m["score"], m["status"]) for m in saved.json()["marks"]}
    assert got == {s.pupils[0]: (14.25, "present"), s.pupils[1]: (9.5, "present"), s.pupils[2]: (None, "absent")}


async def test_missing_and_stale_if_match(world):
    s = await Setup(world).build()
    etag = (await s.grid()).headers["etag"]
    assert (await s.save([], None)).status_code == 428
    assert (await s.save([{"student_id": s.pupils[0], "score": 12}], etag)).status_code == 200
    stale = await s.save([{"student_id": s.pupils[0], "score": 3}], etag)
    assert stale.status_code == 409
    assert stale.json()["current"]["marks"][0]["score"] == 12  # the current marks come back
    assert (await s.grid()).json()["marks"][0]["score"] == 12  # nothing overwritten
    other_grid = await s.save([{"student_id": s.pupils[0], "score": 3}], '"a999999.v1"')
    assert other_grid.status_code == 409


async def test_concurrent_saves_one_wins(world):
    s = await Setup(world).build()
    etag = (await s.grid()).headers["etag"]
    results = await asyncio.gather(
        *(s.save([{"student_id": p, "score": score} for p in s.pupils], etag) for score in (11, 17))
    )
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 409], [r.text for r in results]
    winner = next(r for r in results if r.status_code == 200)
    final = (await s.grid()).json()["marks"]
    assert {m["score"] for m in final} == {winner.json()["marks"][0]["score"]}


@pytest.mark.parametrize(
    ("score", "status", "why"),
    [
        (21, "present", "between 0 and 20"),
        (-1, "present", "between 0 and 20"),
        ("12.345", "present", "two decimals"),
        (12, "absent", "no score"),
        (None, "sleeping", "status"),
    ],
)
async def test_invalid_marks_are_refused_with_the_pupil_named_and_nothing_saved(world, score, status, why):
    s = await Setup(world).build()
    etag = (await s.grid()).headers["etag"]
    marks = [{"student_id": s.pupils[0], "score": 10}, {"student_id": s.pupils[1], "score": score, "status": status}]
    response = await s.save(marks, etag)
    assert response.status_code == 400
    assert why in response.json()["detail"] and "Badr" in response.json()["detail"]
    grid = await s.grid()
    assert grid.headers["etag"] == etag and all(m["score"] is None for m in grid.json()["marks"])


async def test_text_in_a_mark_is_a_400_naming_the_field(world):
    s = await Setup(world).build()
    etag = (await s.grid()).headers["etag"]
    response = await s.save([{"student_id": s.pupils[0], "score": "douze"}], etag)
    assert response.status_code == 400 and "score" in response.text


async def test_a_pupil_not_in_the_class_is_refused(world):
    s = await Setup(world).build()
    etag = (await s.grid()).headers["etag"]
    stranger = world.objects[A]["student_id"]  # a pupil of another class of the school
    response = await s.save([{"student_id": stranger, "score": 10}], etag)
    assert response.status_code == 400 and f"pupil {stranger} is not in this class" in response.json()["detail"]


async def test_only_the_subject_teacher_enters_marks(world):
    s = await Setup(world).build()
    other = await world.add_person(f"other.teacher.{random.randrange(10**6)}@test.ma", "teacher", A)
    etag = (await s.grid()).headers["etag"]
    response = await s.save([{"student_id": s.pupils[0], "score": 10}], etag, actor=other)
    assert response.status_code == 403
    foreign = await world.api(
        "GET", f"/api/v1/grades/assessments/{s.assessment_id}/marks", as_=f"teacher.{B}@test.ma", tenant=B
    )
    assert foreign.status_code == 404


async def test_workflow_and_what_families_see(world):
    s = await Setup(world).build()
    etag = (await s.grid()).headers["etag"]
    await s.save([{"student_id": s.pupils[0], "score": 15.5}], etag)
    marks_url = f"/api/v1/me/pupils/{s.pupils[0]}/marks"
    assert (await world.api("GET", marks_url, as_=s.guardian, tenant=A)).json() == []  # draft: not visible

    assert (await s.move("validate")).status_code == 409  # must be submitted first
    assert (await s.move("submit", actor=f"teacher.{A2}@test.ma")).status_code in (403, 404)
    assert (await s.move("submit")).json()["state"] == "submitted"
    etag = (await s.grid()).headers["etag"]
    locked = await s.save([{"student_id": s.pupils[0], "score": 1}], etag)
    assert locked.status_code == 423  # the teacher cannot change submitted marks
    assert (await s.move("validate", actor=s.teacher)).status_code == 403
    assert (await s.move("validate")).json()["state"] == "validated"
    assert (await world.api("GET", marks_url, as_=s.guardian, tenant=A)).json() == []  # validated: still not visible

    from madrasa_example import plugin as example

    example.RECEIVED.clear()
    assert (await s.move("publish")).json()["state"] == "published"
    assert [e.name for e in example.RECEIVED] == ["grades.marks_published"]
    assert example.RECEIVED[0].data["sheet_id"] == s.sheet_id

    seen = (await world.api("GET", marks_url, as_=s.guardian, tenant=A)).json()
    assert [(m["subject_code"], m["score"]) for m in seen] == [("PC", 15.5)]
    # another family sees nothing of this pupil
    other = f"guardian.{A}@test.ma"
    assert (await world.api("GET", marks_url, as_=other, tenant=A)).status_code == 404

    # after publication a change needs a reason, and it is audited
    etag = (await s.grid(actor=s.director)).headers["etag"]
    silent = await s.save([{"student_id": s.pupils[0], "score": 16}], etag, actor=s.director)
    assert silent.status_code == 400 and silent.json()["errors"][0]["field"] == "reason"
    fixed = await s.save(
        [{"student_id": s.pupils[0], "score": 16}], etag, actor=s.director, reason="copie mal additionnée"
    )
    assert fixed.status_code == 200
    audit = await world.api(
        "GET",
        "/api/v1/audit",
        as_=s.director,
        tenant=A,
        params={"object_type": "assessment", "object_id": str(s.assessment_id)},
    )
    entry = audit.json()[0]
    assert entry["before"] == {str(s.pupils[0]): "15.50"} and entry["after"] == {str(s.pupils[0]): "16.00"}
    assert entry["reason"] == "copie mal additionnée"


async def test_first_saves_are_not_audited_but_changes_are(world):
    s = await Setup(world).build()
    etag = (await s.grid()).headers["etag"]
    response = await s.save([{"student_id": p, "score": 10} for p in s.pupils], etag)
    assert (
        await world.sql(
            "SELECT COUNT(*) FROM audit_log WHERE object_type = 'assessment' AND object_id = {}", str(s.assessment_id)
        )
        == 0
    )
    await s.save([{"student_id": s.pupils[0], "score": 11}], response.headers["etag"])
    assert (
        await world.sql(
            "SELECT COUNT(*) FROM audit_log WHERE object_type = 'assessment' AND object_id = {}", str(s.assessment_id)
        )
        == 1
    )


async def test_closed_term_locks_marks_and_the_director_corrects_with_a_reason(world):
    s = await Setup(world).build()
    etag = (await s.grid()).headers["etag"]
    etag = (await s.save([{"student_id": s.pupils[0], "score": 10}], etag)).headers["etag"]
    school = await world.services.tenants.by_slug(A)
    cols = school.scope_columns()
    from core.scope import Scope

    async with world.services.db.scoped(Scope.everything()):
        existing = await world.services.db.fetchval(
            "SELECT id FROM grade_term_close WHERE school_id = {} AND term_id = {}", school.id, s.term_id
        )
        if existing is None:
            await world.services.db.execute(
                "INSERT INTO grade_term_close (region_id, province_id, school_id, term_id, closed_at) "
                "VALUES ({}, {}, {}, {}, CURRENT_TIMESTAMP)",
                cols["region_id"],
                cols["province_id"],
                school.id,
                s.term_id,
            )
    try:
        teacher = await s.save([{"student_id": s.pupils[0], "score": 12}], etag)
        assert teacher.status_code == 423 and "closed" in teacher.json()["detail"]
        no_reason = await s.save([{"student_id": s.pupils[0], "score": 12}], etag, actor=s.director)
        assert no_reason.status_code == 400
        fixed = await s.save(
            [{"student_id": s.pupils[0], "score": 12}], etag, actor=s.director, reason="erreur de report"
        )
        assert fixed.status_code == 200
        scheduling = await s.post(
            "/api/v1/grades/assessments",
            {"class_id": s.class_id, "subject_code": "PC", "term_id": s.term_id, "scheduled_on": "2026-11-02"},
            actor=s.teacher,
        )
        assert scheduling.status_code == 423
    finally:
        async with world.services.db.scoped(Scope.everything()):
            await world.services.db.execute(
                "DELETE FROM grade_term_close WHERE school_id = {} AND term_id = {}", school.id, s.term_id
            )


async def test_entry_after_the_deadline_is_refused_for_teachers(world):
    s = await Setup(world).build()
    etag = (await s.grid()).headers["etag"]
    region = world.ids["casablanca-settat"]
    db = world.services.db
    async with db.transaction():
        await db.execute(
            "INSERT INTO grade_deadline (tenant_id, term_id, entry_deadline) VALUES ({}, {}, {})",
            region,
            s.term_id,
            date(2020, 1, 1),
        )
    try:
        late = await s.save([{"student_id": s.pupils[0], "score": 10}], etag)
        assert late.status_code == 423 and "deadline" in late.json()["detail"]
        neighbour_region = await Setup(world, B).build()
        fine = await neighbour_region.save(
            [{"student_id": neighbour_region.pupils[0], "score": 10}], (await neighbour_region.grid()).headers["etag"]
        )
        assert fine.status_code == 200
    finally:
        async with db.transaction():
            await db.execute("DELETE FROM grade_deadline WHERE tenant_id = {} AND term_id = {}", region, s.term_id)


async def test_assessment_rules(world):
    s = await Setup(world).build()
    outside = await s.post(
        "/api/v1/grades/assessments",
        {"class_id": s.class_id, "subject_code": "PC", "term_id": s.term_id, "scheduled_on": "2027-05-01"},
        actor=s.teacher,
    )
    assert outside.status_code == 400 and outside.json()["errors"][0]["field"] == "scheduled_on"
    not_mine = await s.post(
        "/api/v1/grades/assessments",
        {"class_id": s.class_id, "subject_code": "SVT", "term_id": s.term_id, "scheduled_on": "2026-10-01"},
        actor=s.teacher,
    )
    assert not_mine.status_code == 403
    second = await s.post(
        "/api/v1/grades/assessments",
        {"class_id": s.class_id, "subject_code": "PC", "term_id": s.term_id, "scheduled_on": "2026-11-02"},
        actor=s.teacher,
    )
    assert second.status_code == 201
    listed = await world.api(
        "GET", "/api/v1/grades/assessments", as_=s.teacher, tenant=A, params={"class_id": s.class_id}
    )
    assert [a["position"] for a in listed.json()] == [1, 2]
    coming = await world.api("GET", f"/api/v1/me/pupils/{s.pupils[0]}/assessments", as_=s.guardian, tenant=A)
    assert coming.status_code == 200


async def test_missing_marks_dashboard(world):
    s = await Setup(world).build()
    etag = (await s.grid()).headers["etag"]
    await s.save([{"student_id": s.pupils[0], "score": 10}], etag)
    rows = (
        await world.api("GET", "/api/v1/grades/missing", as_=s.director, tenant=A, params={"term_id": s.term_id})
    ).json()
    mine = next(r for r in rows if r["class_id"] == s.class_id and r["subject_code"] == "PC")
    assert mine["assessments"] == 1 and mine["required"] == 3 and mine["missing"] == 2
    assert mine["deadline"] is not None
    assert (
        await world.api("GET", "/api/v1/grades/missing", as_=s.teacher, tenant=A, params={"term_id": s.term_id})
    ).status_code == 403


async def test_module_off_for_a_school_hides_grades_there_only(world):
    s = await Setup(world).build()
    director = s.director
    off = await world.api(
        "PUT",
        f"/api/v1/tenants/{A}/modules/grades",
        as_=director,
        json={"enabled": False, "reason": "pilot not started"},
    )
    assert off.status_code == 200
    try:
        assert (await s.grid()).status_code == 404
        neighbour = await world.api(
            "GET",
            f"/api/v1/grades/assessments/{world.objects[A2]['assessment_id']}/marks",
            as_=f"teacher.{A2}@test.ma",
            tenant=A2,
        )
        assert neighbour.status_code == 200
    finally:
        await world.api(
            "PUT", f"/api/v1/tenants/{A}/modules/grades", as_=director, json={"enabled": None, "reason": "back on"}
        )
    assert (await s.grid()).status_code == 200
