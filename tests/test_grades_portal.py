"""Grades portal pages: the mark grid (form posts, validation, stale versions), sheets, family marks, dashboard.

Pages are driven like a browser does (session cookie, CSRF, form posts); what was stored is read
back through the JSON API. Each test builds its own class, pupils and assessment through the API
so the seeded data the other tests rely on stays as it is.
"""

from __future__ import annotations

import random
import re
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po

from plugins.grades import portal
from tests.conftest import link_guardian

A, A2 = "lycee-ibn-batouta", "college-al-khawarizmi"
ROOT = Path(__file__).resolve().parents[1]


def national_code() -> str:
    return "P" + "".join(random.choice("0123456789") for _ in range(9))


def students_in(html: str) -> list[int]:
    """Pupil ids of a grid page, in page order."""
    return [int(v) for v in re.findall(r'name="student" value="(\d+)"', html)]


def version_in(html: str) -> str:
    match = re.search(r'name="version" value="(\d+)"', html)
    assert match, "no version in the grid form"
    return match.group(1)


def input_value(html: str, student_id: int) -> str:
    match = re.search(rf'name="score_{student_id}" value="([^"]*)"', html)
    assert match, f"no mark input for pupil {student_id}"
    return match.group(1)


def checked_status(html: str, student_id: int) -> str:
    match = re.search(rf'name="status_{student_id}" value="(\w+)" tabindex="-1" checked', html)
    assert match, f"no status checked for pupil {student_id}"
    return match.group(1)


class Class:
    """A fresh class of three pupils (a guardian for the first), its PC teacher and a first assessment."""

    def __init__(self, world: Any, school: str = A) -> None:
        self.world, self.school = world, school
        self.director = f"director.{school}@test.ma"
        self.teacher = f"teacher.{school}@test.ma"

    async def api(self, method: str, path: str, actor: str | None = None, **kwargs: Any) -> Any:
        return await self.world.api(method, path, as_=actor or self.director, tenant=self.school, **kwargs)

    async def page(self, method: str, path: str, actor: str | None = None, **kwargs: Any) -> Any:
        """A portal page, in French."""
        separator = "&" if "?" in path else "?"
        return await self.world.api(
            method, f"{path}{separator}lang=fr", as_=actor or self.teacher, tenant=self.school, **kwargs
        )

    async def build(self) -> Class:
        w = self.world
        self.class_name = f"GP-{random.randrange(10**6)}"
        response = await self.api(
            "POST", "/api/v1/school/classes", json={"name": self.class_name, "level_code": "TC", "track_code": "TCS"}
        )
        assert response.status_code == 201, response.text
        self.class_id = response.json()["id"]
        self.pupils = []
        for first in ("Amal", "Badr", "Chaimae"):
            response = await self.api(
                "POST",
                "/api/v1/school/students",
                json={
                    "national_code": national_code(),
                    "first_name": first,
                    "last_name": "Portail",
                    "class_id": self.class_id,
                },
            )
            assert response.status_code == 201, response.text
            self.pupils.append(response.json()["id"])
        self.guardian = f"pg{random.randrange(10**9)}@test.ma"
        guardian_id = await link_guardian(w, self.school, self.pupils[0], self.guardian, "Parent Portail")
        await w.services.identity.set_password(guardian_id, "a-good-password-1")
        w.passwords[self.guardian] = "a-good-password-1"
        self.teacher_id = w.objects[self.school]["teacher_id"]
        self.term_id = await first_term(w, self.school)
        for subject in ("PC", "SVT"):
            response = await self.api(
                "POST",
                "/api/v1/school/assignments",
                json={"teacher_id": self.teacher_id, "class_id": self.class_id, "subject_code": subject},
            )
            assert response.status_code == 201, response.text
        self.assessment_id = await self.schedule("PC", "2026-10-05", "Devoir 1")
        self.sheet_id = await w.sql("SELECT sheet_id FROM grade_assessment WHERE id = {}", self.assessment_id)
        return self

    async def schedule(self, subject: str, on: str, title: str, **extra: Any) -> int:
        response = await self.api(
            "POST",
            "/api/v1/grades/assessments",
            actor=self.teacher,
            json={
                "class_id": self.class_id,
                "subject_code": subject,
                "term_id": self.term_id,
                "scheduled_on": on,
                "title": title,
                **extra,
            },
        )
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    async def marks(self, assessment_id: int | None = None) -> dict[str, Any]:
        response = await self.api("GET", f"/api/v1/grades/assessments/{assessment_id or self.assessment_id}/marks")
        assert response.status_code == 200, response.text
        return response.json()

    async def post_grid(self, values: dict[int, tuple[str, str]], assessment_id: int | None = None, **extra: Any):
        """Post the grid form as the teacher: ``{pupil: (typed text, chosen status)}``."""
        assessment_id = assessment_id or self.assessment_id
        form = await self.page("GET", f"/grades/assessments/{assessment_id}")
        assert form.status_code == 200, form.text
        data: dict[str, Any] = {"version": extra.pop("version", version_in(form.text)), "student": list(values)}
        for pupil, (typed, status) in values.items():
            data[f"score_{pupil}"] = typed
            data[f"status_{pupil}"] = status
        return await self.page("POST", f"/grades/assessments/{assessment_id}", data=data, **extra)


async def first_term(world: Any, school: str) -> int:
    """The school's first term now: its region's own when the region has set its calendar, else the national one."""
    region = (await world.services.tenants.by_slug(school)).region_id
    own = await world.sql("SELECT id FROM term WHERE tenant_id = {} AND number = 1", region)
    return int(own or world.objects[school]["term_id"])


def upcoming_day() -> str:
    """A day after today inside term 1 (where the seeded assessments live)."""
    return min(date.today() + timedelta(days=10), date(2027, 1, 20)).isoformat()


# -- the grid ----------------------------------------------------------------------------------------


async def test_teacher_enters_the_seeded_class_marks(world):
    objects = world.objects[A]
    assessment_id = objects["assessment_id"]
    teacher = f"teacher.{A}@test.ma"
    page = await world.api("GET", f"/grades/assessments/{assessment_id}?lang=fr", as_=teacher, tenant=A)
    assert page.status_code == 200, page.text
    html = page.text
    assert 'inputmode="decimal"' in html and 'name="version"' in html
    assert 'name="csrf_token"' in html and "TEST-1" in html
    pupils = students_in(html)
    assert objects["student_id"] in pupils
    assert f"S{1:09d}" in html  # the seeded pupil's national code beside the name
    marks = {p: (f"1{index},5", "present") for index, p in enumerate(pupils)}
    data: dict[str, Any] = {"version": version_in(html), "student": pupils}
    for pupil, (typed, status) in marks.items():
        data[f"score_{pupil}"] = typed
        data[f"status_{pupil}"] = status
    saved = await world.api("POST", f"/grades/assessments/{assessment_id}", as_=teacher, tenant=A, data=data)
    assert saved.status_code == 303, saved.text
    confirmation = await world.api("GET", saved.headers["location"] + "&lang=fr", as_=teacher)
    assert confirmation.status_code == 200
    assert "Les notes ont été enregistrées." in confirmation.text
    assert input_value(confirmation.text, objects["student_id"]) == f"1{pupils.index(objects['student_id'])},5"

    grid = await world.api("GET", f"/api/v1/grades/assessments/{assessment_id}/marks", as_=teacher, tenant=A)
    stored = {m["student_id"]: m for m in grid.json()["marks"]}
    for index, pupil in enumerate(pupils):
        assert stored[pupil]["score"] == float(f"1{index}.5") and stored[pupil]["status"] == "present"
    assert grid.json()["version"] == int(version_in(html)) + 1


async def test_marks_with_keyboard_shortcuts_and_statuses_are_saved(world):
    c = await Class(world).build()
    p1, p2, p3 = c.pupils
    response = await c.post_grid({p1: ("12.25", "present"), p2: ("a", "present"), p3: ("", "excused")})
    assert response.status_code == 303, response.text
    stored = {m["student_id"]: m for m in (await c.marks())["marks"]}
    assert stored[p1]["score"] == 12.25 and stored[p1]["status"] == "present"
    assert stored[p2]["score"] is None and stored[p2]["status"] == "absent"
    assert stored[p3]["score"] is None and stored[p3]["status"] == "excused"
    page = await c.page("GET", f"/grades/assessments/{c.assessment_id}")
    assert input_value(page.text, p1) == "12,25"  # French decimal comma on a French page
    assert checked_status(page.text, p2) == "absent" and checked_status(page.text, p3) == "excused"
    assert "Saisies : 3/3" in page.text

    # A blank field with "present" clears a mark; the statistics follow.
    response = await c.post_grid({p1: ("", "present"), p2: ("20", "present")})
    assert response.status_code == 303, response.text
    stored = {m["student_id"]: m for m in (await c.marks())["marks"]}
    assert stored[p1]["score"] is None and stored[p2]["score"] == 20 and stored[p3]["status"] == "excused"


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("21", "La note doit être comprise entre 0 et 20."),
        ("abc", "Tapez un nombre"),
        ("-1", "La note doit être comprise entre 0 et 20."),
        ("12,345", "Deux décimales au plus."),
    ],
)
async def test_an_invalid_mark_is_shown_beside_the_pupil_and_nothing_is_saved(world, typed, message):
    c = await Class(world).build()
    p1, p2, p3 = c.pupils
    before = await c.marks()
    response = await c.post_grid({p1: ("15", "present"), p2: (typed, "present"), p3: ("9,5", "present")})
    assert response.status_code == 400, response.text
    html = response.text
    assert "Rien n&#39;a été enregistré" in html or "Rien n'a été enregistré" in html
    # The error sits in the pupil's row, and every value is kept as typed.
    row = re.search(rf'<li class="pupil has-error" data-student="{p2}".*?</li>', html, re.S)
    assert row, "the pupil's row is not marked as wrong"
    assert message in row.group(0) and f'id="error-{p2}"' in row.group(0)
    assert 'aria-invalid="true"' in row.group(0)
    assert input_value(html, p2) == typed and input_value(html, p1) == "15" and input_value(html, p3) == "9,5"
    assert f'id="error-{p1}"' not in html and f'id="error-{p3}"' not in html
    after = await c.marks()
    assert after == before  # same version, no mark written for anyone
    assert all(m["score"] is None for m in after["marks"])


async def test_saving_over_a_newer_version_shows_the_current_marks_and_overwrites_nothing(world):
    c = await Class(world).build()
    p1, p2, p3 = c.pupils
    form = await c.page("GET", f"/grades/assessments/{c.assessment_id}")
    old_version = version_in(form.text)

    # Someone else (the director, through the API) saves meanwhile.
    grid = await c.api("GET", f"/api/v1/grades/assessments/{c.assessment_id}/marks")
    other = await c.api(
        "PUT",
        f"/api/v1/grades/assessments/{c.assessment_id}/marks",
        headers={"if-match": grid.headers["etag"]},
        json={"marks": [{"student_id": p1, "score": 8}, {"student_id": p2, "status": "absent"}]},
    )
    assert other.status_code == 200, other.text

    response = await c.post_grid(
        {p1: ("17", "present"), p2: ("11", "present"), p3: ("", "present")}, version=old_version
    )
    assert response.status_code == 409, response.text
    html = response.text
    assert "Quelqu&#39;un d&#39;autre a enregistré" in html or "Quelqu'un d'autre a enregistré" in html
    # The page shows the marks saved now (not the typed ones), with what the teacher had typed beside them.
    assert input_value(html, p1) == "8" and checked_status(html, p2) == "absent"
    assert "Vous aviez saisi : 17" in html and "Vous aviez saisi : 11" in html
    assert version_in(html) == str(int(old_version) + 1)  # saving again is a deliberate act on the new version
    stored = {m["student_id"]: m for m in (await c.marks())["marks"]}
    assert stored[p1]["score"] == 8 and stored[p2]["status"] == "absent" and stored[p3]["status"] == "present"

    # A form without any version cannot overwrite either.
    response = await c.post_grid({p1: ("17", "present")}, version="")
    assert response.status_code == 409
    assert {m["student_id"]: m["score"] for m in (await c.marks())["marks"]}[p1] == 8


async def test_a_teacher_who_does_not_teach_the_subject_cannot_open_the_grid(world):
    c = await Class(world).build()
    stranger = await world.add_person(f"other-teacher.{A}@test.ma", "teacher", A)
    grid = await c.page("GET", f"/grades/assessments/{c.assessment_id}", actor=stranger)
    assert grid.status_code in (403, 404)
    sheet = await c.page("GET", f"/grades/sheets/{c.sheet_id}", actor=stranger)
    assert sheet.status_code in (403, 404)
    posted = await c.page(
        "POST",
        f"/grades/assessments/{c.assessment_id}",
        actor=stranger,
        data={"version": "0", "student": [c.pupils[0]], f"score_{c.pupils[0]}": "20"},
    )
    assert posted.status_code in (403, 404)
    assert all(m["score"] is None for m in (await c.marks())["marks"])
    # Nor may a parent, nor the teacher of the same school under the neighbour's prefix.
    guardian = await c.page("GET", f"/grades/assessments/{c.assessment_id}", actor=c.guardian)
    assert guardian.status_code == 403
    neighbour = await world.api("GET", f"/grades/assessments/{c.assessment_id}", as_=c.teacher, tenant=A2)
    assert neighbour.status_code in (403, 404)


async def test_the_grid_reads_right_to_left_in_arabic(world):
    c = await Class(world).build()
    page = await world.api("GET", f"/grades/assessments/{c.assessment_id}?lang=ar", as_=c.teacher, tenant=A)
    assert page.status_code == 200
    assert '<html lang="ar" dir="rtl">' in page.text
    assert "غائب" in page.text and "حفظ النقط" in page.text


# -- sheets, scheduling and the workflow ------------------------------------------------------------


async def test_teacher_home_sheet_and_scheduling(world):
    c = await Class(world).build()
    home = await c.page("GET", "/grades/")
    assert home.status_code == 200, home.text
    assert c.class_name in home.text and f"/t/{A}/grades/sheets/{c.sheet_id}" in home.text
    # SVT has no assessment yet: the home page offers to schedule the first one for this class.
    assert f'action="/t/{A}/grades/classes/{c.class_id}/assessments"' in home.text
    assert "Programmer le premier contrôle" in home.text

    sheet = await c.page("GET", f"/grades/sheets/{c.sheet_id}")
    assert sheet.status_code == 200
    assert "Devoir 1" in sheet.text and f"/t/{A}/grades/assessments/{c.assessment_id}" in sheet.text
    assert "Saisies : 0/3" in sheet.text

    scheduled = await c.page(
        "POST",
        f"/grades/classes/{c.class_id}/assessments",
        data={
            "subject_code": "SVT",
            "term_id": str(c.term_id),
            "scheduled_on": "2026-11-02",
            "title": "Contrôle SVT",
            "kind": "cc",
            "max_score": "10",
            "weight": "2",
        },
    )
    assert scheduled.status_code == 303, scheduled.text
    new_sheet = await world.sql("SELECT id FROM grade_sheet WHERE class_id = {} AND subject_code = 'SVT'", c.class_id)
    assert scheduled.headers["location"].startswith(f"/t/{A}/grades/sheets/{new_sheet}?scheduled=")
    assessment = await world.sql(
        "SELECT max_score FROM grade_assessment WHERE sheet_id = {} AND title = 'Contrôle SVT'", new_sheet
    )
    assert Decimal(str(assessment)) == 10

    # Wrong fields come back with the errors and the typed values.
    wrong = await c.page(
        "POST",
        f"/grades/classes/{c.class_id}/assessments",
        data={
            "subject_code": "PC",
            "term_id": str(c.term_id),
            "scheduled_on": "2031-01-01",
            "title": "Trop tard",
            "max_score": "abc",
        },
    )
    assert wrong.status_code == 400
    assert "Un nombre supérieur à 0" in wrong.text and 'value="Trop tard"' in wrong.text
    out_of_term = await c.page(
        "POST",
        f"/grades/classes/{c.class_id}/assessments",
        data={"subject_code": "PC", "term_id": str(c.term_id), "scheduled_on": "2031-01-01", "max_score": "20"},
    )
    assert out_of_term.status_code == 400 and "the date must fall within the term" in out_of_term.text


async def test_the_workflow_through_the_pages(world):
    c = await Class(world).build()
    assert (await c.post_grid({p: ("10", "present") for p in c.pupils})).status_code == 303
    # The director cannot validate a draft; the teacher submits.
    early = await c.page("POST", f"/grades/sheets/{c.sheet_id}/validate", actor=c.director, data={})
    assert early.status_code == 409 and "Brouillon" in early.text
    submitted = await c.page("POST", f"/grades/sheets/{c.sheet_id}/submit", data={})
    assert submitted.status_code == 303
    assert submitted.headers["location"] == f"/t/{A}/grades/sheets/{c.sheet_id}?done=submit"
    # Submitted marks are locked for the teacher.
    locked = await c.page("GET", f"/grades/assessments/{c.assessment_id}")
    assert "demandez au directeur de les rouvrir" in locked.text and 'id="save-marks"' not in locked.text
    refused = await c.post_grid({c.pupils[0]: ("12", "present")})
    assert refused.status_code == 423
    assert (await c.marks())["marks"][0]["score"] == 10

    home = await c.page("GET", "/grades/", actor=c.director)
    assert home.status_code == 200
    assert f'action="/t/{A}/grades/sheets/{c.sheet_id}/validate"' in home.text
    assert f"/t/{A}/grades/missing" in home.text
    assert (await c.page("POST", f"/grades/sheets/{c.sheet_id}/validate", actor=c.teacher, data={})).status_code == 403
    next_url = f"/t/{A}/grades/"
    validated = await c.page("POST", f"/grades/sheets/{c.sheet_id}/validate", actor=c.director, data={"next": next_url})
    assert validated.status_code == 303 and validated.headers["location"] == f"{next_url}?done=validate"
    published = await c.page(
        "POST", f"/grades/sheets/{c.sheet_id}/publish", actor=c.director, data={"next": "https://evil.example/"}
    )
    assert published.status_code == 303
    assert published.headers["location"] == f"/t/{A}/grades/sheets/{c.sheet_id}?done=publish"
    sheet = await c.page("GET", f"/grades/sheets/{c.sheet_id}?done=publish", actor=c.director)
    assert "Les notes ont été publiées" in sheet.text and "state-published" in sheet.text
    state = await world.sql("SELECT state FROM grade_sheet WHERE id = {}", c.sheet_id)
    assert state == "published"


async def test_missing_marks_dashboard(world):
    c = await Class(world).build()
    await c.post_grid({c.pupils[0]: ("14", "present")})
    page = await c.page("GET", "/grades/missing", actor=c.director)
    assert page.status_code == 200, page.text
    pattern = rf'<tr class="\w+" data-class="{c.class_id}" data-subject="PC".*?</tr>'
    row = re.search(pattern, page.text, re.S)
    while row is None and (following := re.search(r'href="/t/[^/]+([^"]+)" rel="next"', page.text)):
        page = await c.page("GET", following.group(1).replace("&amp;", "&"), actor=c.director)  # the list is paged
        row = re.search(pattern, page.text, re.S)
    assert row, "no dashboard row for the class's PC"
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(0), re.S)
    assert c.class_name in cells[1] and "1 / 3" in cells[3] and cells[4].strip() == "2"
    # The national terms have deadlines; a region that set its own calendar may have none yet.
    assert "Date limite de saisie" in page.text or "Aucune date limite de saisie" in page.text
    assert (await c.page("GET", "/grades/missing", actor=c.teacher)).status_code == 403


# -- what families see ------------------------------------------------------------------------------


async def test_the_guardian_sees_only_published_marks(world):
    c = await Class(world).build()
    p1 = c.pupils[0]
    second = await c.schedule("PC", "2026-10-20", "Devoir 2")
    third = await c.schedule("PC", upcoming_day(), "Devoir 3", max_score=10, weight=2)
    svt = await c.schedule("SVT", "2026-10-12", "Contrôle SVT")
    assert (await c.post_grid({p1: ("15,5", "present")})).status_code == 303
    assert (await c.post_grid({p1: ("", "absent")}, assessment_id=second)).status_code == 303
    assert (await c.post_grid({p1: ("e", "present")}, assessment_id=third)).status_code == 303
    assert (await c.post_grid({p1: ("7,25", "present")}, assessment_id=svt)).status_code == 303

    url = f"/grades/pupils/{p1}"
    before = await c.page("GET", url, actor=c.guardian)
    assert before.status_code == 200, before.text
    assert "15,5" not in before.text and "Aucune note n&#39;a encore été publiée" in before.text.replace("'", "&#39;")
    assert "Devoir 3" in before.text  # the assessment to come is announced

    for action, actor in (("submit", c.teacher), ("validate", c.director), ("publish", c.director)):
        moved = await c.api("POST", f"/api/v1/grades/sheets/{c.sheet_id}/{action}", actor=actor)
        assert moved.status_code == 200, moved.text

    after = await c.page("GET", url, actor=c.guardian)
    assert after.status_code == 200
    html = after.text
    pc = re.search(r'<article class="card subject" data-subject="PC">.*?</article>', html, re.S)
    assert pc, "no PC block"
    block = pc.group(0)
    assert "Physique-chimie" in block and "15,5" in block and "Absent" in block and "Excusé" in block
    # (15.5 + 0) / 2: the absence counts 0, the excused assessment is left out.
    assert "<strong>7,75</strong>" in block
    assert "7,25" not in html and 'data-subject="SVT"' not in html  # SVT is not published

    # The pupil's classmates are not the guardian's to see.
    assert (await c.page("GET", f"/grades/pupils/{c.pupils[1]}", actor=c.guardian)).status_code == 404
    home = await c.page("GET", "/grades/", actor=c.guardian)
    assert f"/t/{A}/grades/pupils/{p1}" in home.text and f"/grades/pupils/{c.pupils[1]}" not in home.text


async def test_the_seeded_guardian_reads_the_childs_page(world):
    student = world.objects[A]["student_id"]
    response = await world.api("GET", f"/grades/pupils/{student}?lang=ar", as_=f"guardian.{A}@test.ma", tenant=A)
    assert response.status_code == 200, response.text
    assert 'dir="rtl"' in response.text and "اختبار تلميذ" in response.text


# -- the module switch ------------------------------------------------------------------------------


async def test_grades_pages_vanish_where_the_module_is_off(world):
    teacher, director = f"teacher.{A}@test.ma", f"director.{A}@test.ma"
    assessment = world.objects[A]["assessment_id"]
    neighbour = world.objects[A2]["assessment_id"]
    assert (await world.api("GET", "/grades/", as_=teacher, tenant=A)).status_code == 200
    off = await world.api(
        "PUT", f"/api/v1/tenants/{A}/modules/grades", as_=director, json={"enabled": False, "reason": "pilot paused"}
    )
    assert off.status_code == 200, off.text
    try:
        for path in ("/grades/", f"/grades/assessments/{assessment}", "/grades/missing"):
            actor = director if path == "/grades/missing" else teacher
            assert (await world.api("GET", path, as_=actor, tenant=A)).status_code == 404, path
        posted = await world.api(
            "POST", f"/grades/assessments/{assessment}", as_=teacher, tenant=A, data={"version": "0"}
        )
        assert posted.status_code == 404
        other = f"teacher.{A2}@test.ma"
        assert (await world.api("GET", "/grades/", as_=other, tenant=A2)).status_code == 200
        assert (await world.api("GET", f"/grades/assessments/{neighbour}", as_=other, tenant=A2)).status_code == 200
    finally:
        restored = await world.api(
            "PUT", f"/api/v1/tenants/{A}/modules/grades", as_=director, json={"enabled": None, "reason": "back on"}
        )
        assert restored.status_code == 200, restored.text
    assert (await world.api("GET", "/grades/", as_=teacher, tenant=A)).status_code == 200


# -- pure helpers and translations ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "status", "expected"),
    [
        ("12,5", "present", ("present", Decimal("12.50"))),
        (" 12.5 ", "absent", ("present", Decimal("12.50"))),  # a typed number wins over the chosen status
        ("١٢٫٥", "present", ("present", Decimal("12.50"))),
        ("0", "present", ("present", Decimal("0.00"))),
        ("20", "present", ("present", Decimal("20.00"))),
        ("A", "present", ("absent", None)),
        ("exc", "present", ("excused", None)),
        ("غ", "present", ("absent", None)),
        ("", "excused", ("excused", None)),
        ("", "present", ("present", None)),
    ],
)
def test_parse_mark(typed, status, expected):
    entry, error = portal.parse_mark(typed, status, Decimal(20))
    assert error is None and entry is not None
    assert (entry.status, entry.score) == expected


@pytest.mark.parametrize("typed", ["20,01", "abc", "1e3", "12,345", "-0,5", "1,2,3", "nan"])
def test_parse_mark_refuses(typed):
    entry, error = portal.parse_mark(typed, "present", Decimal(20))
    assert entry is None and error


def test_number_formats():
    assert portal.fmt_number(Decimal("12.50"), "fr") == "12,5"
    assert portal.fmt_number(20.0, "ar") == "20"
    assert portal.fmt_number(None, "fr") == ""
    assert portal.fmt_average(14.666666666, "fr") == "14,67"
    assert portal.fmt_average(12.345, "en") == "12.35"


TEMPLATE_CALL = re.compile(r"""_\(\s*(["'])(.+?)\1""")
PY_CALL = re.compile(r"""gettext_\(\s*(?:\n\s*)?(["'])(.+?)\1""")


def grades_strings() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "plugins" / "grades" / "templates").rglob("*.html"):
        found |= {m.group(2) for m in TEMPLATE_CALL.finditer(path.read_text())}
    for name in ("portal.py", "portal_grid.py", "portal_workbook.py"):
        source = (ROOT / "plugins" / "grades" / name).read_text()
        found |= {m.group(2) for m in PY_CALL.finditer(source)}
    found |= set(portal.STATE_LABELS.values()) | set(portal.KIND_LABELS.values())
    found |= {label for pair in portal.ACTIONS.values() for label in pair} | set(portal.MESSAGES.values())
    return found


@pytest.mark.parametrize("locale", ["ar", "fr"])
def test_every_grades_page_string_is_translated(locale):
    messages: dict[str, str] = {}
    catalogues = [ROOT / "core" / "locale" / locale / "LC_MESSAGES" / "messages.po"]
    catalogues += sorted((ROOT / "plugins" / "grades" / "locale" / locale / "LC_MESSAGES").glob("*.po"))
    for path in catalogues:
        with path.open("rb") as handle:
            messages.update({m.id: m.string for m in read_po(handle) if m.id and m.string})
    wanted = grades_strings()
    assert len(wanted) > 40
    missing = sorted(s for s in wanted if not messages.get(s))
    assert not missing, f"missing {locale} translations:\n" + "\n".join(missing)


async def test_names_and_titles_are_escaped_in_the_rows_built_in_python(world):
    """The grid's rows are assembled in Python for speed: a hostile name or title must come out as text."""
    c = await Class(world).build()
    hostile = '<script>alert("x")</script>'
    response = await c.api(
        "POST",
        "/api/v1/school/students",
        json={
            "national_code": national_code(),
            "first_name": hostile,
            "last_name": "O'Brien & Co",
            "class_id": c.class_id,
        },
    )
    assert response.status_code == 201, response.text
    assessment = await c.schedule("PC", "2026-10-06", '<img src=x onerror="alert(1)">')
    grid = await c.page("GET", f"/grades/assessments/{assessment}")
    assert grid.status_code == 200, grid.text
    assert hostile not in grid.text and "<img src=x" not in grid.text
    assert "&lt;script&gt;" in grid.text and "O&#39;Brien &amp; Co" in grid.text
    sheet = await c.page("GET", f"/grades/sheets/{c.sheet_id}")
    assert sheet.status_code == 200, sheet.text
    assert "<img src=x" not in sheet.text and "&lt;img src=x" in sheet.text
