"""Closing a term through the API: averages with coefficients, ranks with ties, statistics, family results."""

from __future__ import annotations

import random

from tests.conftest import link_guardian

SCHOOL = "ecole-al-amal"  # its term 2 is closed here and nowhere else in the suite


def code() -> str:
    return "R" + "".join(random.choice("0123456789") for _ in range(9))


async def test_close_term_and_read_results(world):
    director, teacher = f"director.{SCHOOL}@test.ma", f"teacher.{SCHOOL}@test.ma"

    async def call(method, path, body=None, actor=director, **kw):
        return await world.api(method, path, as_=actor, tenant=SCHOOL, json=body, **kw)

    term = await world.services.db.fetchval("SELECT id FROM term WHERE tenant_id IS NULL AND number = 2")
    klass = (await call("POST", "/api/v1/school/classes", {"name": f"R-{world.backend}", "level_code": "6AP"})).json()
    pupils = []
    for first in ("Aya", "Bilal", "Chama"):
        created = await call(
            "POST",
            "/api/v1/school/students",
            {"national_code": code(), "first_name": first, "last_name": "Test", "class_id": klass["id"]},
        )
        pupils.append(created.json()["id"])
    guardian = f"res.{world.backend}@test.ma"
    person = await link_guardian(world, SCHOOL, pupils[0], guardian, "P")
    await world.services.identity.set_password(person, "a-good-password-1")
    world.passwords[guardian] = "a-good-password-1"
    teacher_id = world.objects[SCHOOL]["teacher_id"]
    # national coefficients at 6AP: ARA 1, MATH 1 — make MATH weigh 3 for this school
    for subject in ("ARA", "MATH"):
        assert (
            await call(
                "POST",
                "/api/v1/school/assignments",
                {"teacher_id": teacher_id, "class_id": klass["id"], "subject_code": subject},
            )
        ).status_code == 201
    override = await call(
        "PUT",
        "/api/v1/coefficients",
        {"level_code": "6AP", "subject_code": "MATH", "coefficient": 3, "weekly_hours": 5},
    )
    assert override.status_code == 200
    # marks: ARA /20 → 10, 16, 16 ; MATH two assessments (weights 1 and 2): pupil 3 absent on the second
    scores = {"ARA": [[10, 16, 16]], "MATH": [[12, 8, 14], [18, 11, None]]}
    sheets = set()
    for subject, rounds in scores.items():
        for index, values in enumerate(rounds):
            made = await call(
                "POST",
                "/api/v1/grades/assessments",
                {
                    "class_id": klass["id"],
                    "subject_code": subject,
                    "term_id": term,
                    "scheduled_on": f"2027-02-{10 + index:02d}",
                    "weight": 1 + index,
                },
                actor=teacher,
            )
            assert made.status_code == 201, made.text
            assessment = made.json()["id"]
            grid = await call("GET", f"/api/v1/grades/assessments/{assessment}/marks", actor=teacher)
            marks = [
                {"student_id": p, "score": v} if v is not None else {"student_id": p, "status": "absent"}
                for p, v in zip(pupils, values, strict=True)
            ]
            saved = await call(
                "PUT",
                f"/api/v1/grades/assessments/{assessment}/marks",
                {"marks": marks},
                actor=teacher,
                headers={"if-match": grid.headers["etag"]},
            )
            assert saved.status_code == 200, saved.text
            sheets.add(await world.sql("SELECT sheet_id FROM grade_assessment WHERE id = {}", assessment))
    for sheet in sheets:
        assert (await call("POST", f"/api/v1/grades/sheets/{sheet}/submit", {}, actor=teacher)).status_code == 200
        assert (await call("POST", f"/api/v1/grades/sheets/{sheet}/validate", {})).status_code == 200
        assert (await call("POST", f"/api/v1/grades/sheets/{sheet}/publish", {})).status_code == 200

    assert (await call("POST", f"/api/v1/grades/terms/{term}/close", {}, actor=teacher)).status_code == 403
    closed = await call("POST", f"/api/v1/grades/terms/{term}/close", {})
    assert closed.status_code == 200, closed.text
    assert (await call("POST", f"/api/v1/grades/terms/{term}/close", {})).status_code == 409

    results = (await call("GET", f"/api/v1/grades/classes/{klass['id']}/results", params={"term_id": term})).json()
    by_pupil = {p["student_id"]: p for p in results["pupils"]}
    # MATH averages: (12 + 2·18)/3 = 16, (8 + 2·11)/3 = 10, pupil 3: absent counts 0 → (14 + 0)/3 = 4.67
    math = {p: next(s["average"] for s in by_pupil[p]["subjects"] if s["subject_code"] == "MATH") for p in pupils}
    assert math == {pupils[0]: 16.0, pupils[1]: 10.0, pupils[2]: 4.67}
    # general = (ARA·1 + MATH·3) / 4: 14.5, 11.5, 7.5
    assert [by_pupil[p]["average"] for p in pupils] == [14.5, 11.5, 7.5]
    assert [by_pupil[p]["rank"] for p in pupils] == [1, 2, 3] and by_pupil[pupils[0]]["ranked"] == 3
    general = next(s for s in results["statistics"] if s["subject_code"] is None)
    assert general["count"] == 3 and general["median"] == 11.5 and general["maximum"] == 14.5
    assert round(general["pass_share"], 4) == 0.6667 and sum(general["distribution"]) == 3

    # the family reads the closed term's results, with the annual average
    family = await world.api("GET", f"/api/v1/me/pupils/{pupils[0]}/results", as_=guardian, tenant=SCHOOL)
    assert family.status_code == 200, family.text
    body = family.json()
    assert body["terms"][0]["average"] == 14.5 and body["terms"][0]["rank"] == 1
    assert body["annual_average"] == 14.5
    stranger = await world.api("GET", f"/api/v1/me/pupils/{pupils[1]}/results", as_=guardian, tenant=SCHOOL)
    assert stranger.status_code == 404

    # the marks are locked for the teacher now
    some = await world.sql("SELECT id FROM grade_assessment WHERE class_id = {} ORDER BY id LIMIT 1", klass["id"])
    grid = await call("GET", f"/api/v1/grades/assessments/{some}/marks", actor=teacher)
    locked = await call(
        "PUT",
        f"/api/v1/grades/assessments/{some}/marks",
        {"marks": [{"student_id": pupils[0], "score": 1}]},
        actor=teacher,
        headers={"if-match": grid.headers["etag"]},
    )
    assert locked.status_code == 423
