"""The director's portal pages: closing a term and the report cards (job, progress, downloads with the session).

Each test works in a school of its own, created here in a province of its own, so closing a term
locks nothing the rest of the suite writes to.
"""

from __future__ import annotations

import io
import random
import re
import zipfile
from typing import Any

import pytest

from plugins.grades import portal_results
from tests.job_helpers import app_queue

REGION_ADMIN = "region.casa@madrasa.demo"
OTHER = "lycee-moulay-youssef"


def code() -> str:
    return "D" + "".join(random.choice("0123456789") for _ in range(9))


async def own_province(world: Any) -> str:
    """A province of casablanca-settat for these tests' schools (so the demo provinces keep theirs)."""
    slug = f"directors-{world.backend}"
    if slug not in world.ids:
        response = await world.api(
            "POST",
            "/api/v1/tenants/",
            as_=REGION_ADMIN,
            json={"parent": "casablanca-settat", "kind": "province", "slug": slug, "name_fr": "Province des tests"},
        )
        assert response.status_code == 201, response.text
        world.ids[slug] = response.json()["id"]
    return slug


async def fresh_school(world: Any, prefix: str) -> str:
    """A new school of :func:`own_province` with a director and a teacher (``director.<slug>@test.ma``…)."""
    slug = f"{prefix}-{world.backend}-{random.randrange(10**6)}"
    response = await world.api(
        "POST",
        "/api/v1/tenants/",
        as_=REGION_ADMIN,
        json={
            "parent": await own_province(world),
            "kind": "school",
            "slug": slug,
            "name_fr": f"École {slug}",
            "code": slug,
        },
    )
    assert response.status_code == 201, response.text
    world.ids[slug] = response.json()["id"]
    await world.add_person(f"director.{slug}@test.ma", "school_director", slug)
    await world.add_person(f"teacher.{slug}@test.ma", "teacher", slug)
    return slug


class School:
    """A fresh school with one class of two pupils whose maths marks for term 1 are published."""

    def __init__(self, world: Any, slug: str) -> None:
        self.world, self.slug = world, slug
        self.director, self.teacher = f"director.{slug}@test.ma", f"teacher.{slug}@test.ma"

    async def call(self, method: str, path: str, actor: str | None = None, **kw: Any) -> Any:
        return await self.world.api(method, path, as_=actor or self.director, tenant=self.slug, **kw)

    async def page(self, method: str, path: str, actor: str | None = None, **kw: Any) -> Any:
        separator = "&" if "?" in path else "?"
        return await self.call(method, f"{path}{separator}lang=fr", actor, **kw)

    async def build(self) -> School:
        w = self.world
        self.term = await w.sql("SELECT id FROM term WHERE tenant_id IS NULL AND number = 1")
        made = await self.call(
            "POST", "/api/v1/school/classes", json={"name": "TC-D1", "level_code": "TC", "track_code": "TCS"}
        )
        assert made.status_code == 201, made.text
        self.class_id = made.json()["id"]
        self.pupils = []
        for first, last in (("Amal", "Zeroual"), ("Badr", "Yacoubi")):
            made = await self.call(
                "POST",
                "/api/v1/school/students",
                json={"national_code": code(), "first_name": first, "last_name": last, "class_id": self.class_id},
            )
            assert made.status_code == 201, made.text
            self.pupils.append(made.json()["id"])
        teacher_id = await w.sql("SELECT id FROM person WHERE email = {}", self.teacher)
        made = await self.call(
            "POST",
            "/api/v1/school/assignments",
            json={"teacher_id": teacher_id, "class_id": self.class_id, "subject_code": "MATH"},
        )
        assert made.status_code == 201, made.text
        made = await self.call(
            "POST",
            "/api/v1/grades/assessments",
            self.teacher,
            json={
                "class_id": self.class_id,
                "subject_code": "MATH",
                "term_id": self.term,
                "scheduled_on": "2026-10-05",
            },
        )
        assert made.status_code == 201, made.text
        assessment = made.json()["id"]
        grid = await self.call("GET", f"/api/v1/grades/assessments/{assessment}/marks", self.teacher)
        saved = await self.call(
            "PUT",
            f"/api/v1/grades/assessments/{assessment}/marks",
            self.teacher,
            json={"marks": [{"student_id": p, "score": s} for p, s in zip(self.pupils, (15, 9), strict=True)]},
            headers={"if-match": grid.headers["etag"]},
        )
        assert saved.status_code == 200, saved.text
        sheet = await w.sql("SELECT sheet_id FROM grade_assessment WHERE id = {}", assessment)
        assert (await self.call("POST", f"/api/v1/grades/sheets/{sheet}/submit", self.teacher)).status_code == 200
        for action in ("validate", "publish"):
            assert (await self.call("POST", f"/api/v1/grades/sheets/{sheet}/{action}")).status_code == 200
        return self


async def test_director_closes_a_term_and_downloads_the_report_cards(world):
    s = await School(world, await fresh_school(world, "close")).build()

    home = await s.page("GET", "/grades/")
    assert home.status_code == 200 and 'id="term-close-link"' in home.text
    assert (await s.page("GET", "/grades/close", s.teacher)).status_code == 403
    before = await s.page("GET", f"/grades/close?term_id={s.term}")
    assert before.status_code == 200 and 'data-closed="no"' in before.text and 'id="close-term"' in before.text
    assert "data-generate=" not in before.text  # no report cards before the close

    # A teacher may not close; the director closes once, a second time is refused in the page.
    confirm = {"confirm": "yes"}
    assert (await s.page("POST", f"/grades/terms/{s.term}/close", s.teacher, data=confirm)).status_code == 403
    unconfirmed = await s.page("POST", f"/grades/terms/{s.term}/close", data={})
    assert unconfirmed.status_code == 400 and 'id="close-confirm-error"' in unconfirmed.text
    assert "Cochez la case pour confirmer" in unconfirmed.text
    assert await world.sql("SELECT COUNT(*) FROM grade_term_close WHERE school_id = {}", world.ids[s.slug]) == 0
    closed = await s.page("POST", f"/grades/terms/{s.term}/close", data=confirm)
    assert closed.status_code == 303, closed.text
    assert (
        await world.sql(
            "SELECT COUNT(*) FROM grade_term_close WHERE school_id = {} AND term_id = {}", world.ids[s.slug], s.term
        )
        == 1
    )
    again = await s.page("POST", f"/grades/terms/{s.term}/close", data=confirm)
    assert again.status_code == 409 and "Ce trimestre est déjà clôturé." in again.text
    after = await s.page("GET", f"/grades/close?term_id={s.term}&done=closed")
    assert 'data-closed="yes"' in after.text and 'role="status"' in after.text
    row = re.search(rf'<tr data-class="{s.class_id}">(.*?)</tr>', after.text, re.S)
    assert row and re.findall(r'class="num"[^>]*>(\d+)<', row.group(1)) == ["2", "0"]

    async with app_queue(world) as queue:
        refused = await s.page("POST", "/grades/bulletins", s.teacher, data={"term_id": s.term, "class_id": s.class_id})
        assert refused.status_code == 403
        for term in ("x", "999999"):  # not a number, not a term of this school
            bad = await s.page("POST", "/grades/bulletins", data={"term_id": term, "class_id": s.class_id})
            assert bad.status_code == 400 and "Choisissez un trimestre et une classe." in bad.text
        other_class = world.objects[OTHER]["class_id"]
        foreign = await s.page("POST", "/grades/bulletins", data={"term_id": s.term, "class_id": other_class})
        assert foreign.status_code == 404
        started = await s.page("POST", "/grades/bulletins", data={"term_id": s.term, "class_id": s.class_id})
        assert started.status_code == 303, started.text
        job_url = started.headers["location"]
        job_id = job_url.rsplit("/", 1)[-1]
        assert job_url == f"/t/{s.slug}/grades/jobs/{job_id}"
        info = await queue.wait(job_id, seconds=120)
        assert info.status == "done", info.error
    job_page = await s.page("GET", f"/grades/jobs/{job_id}")
    assert job_page.status_code == 200 and "hx-get" in job_page.text
    progress = await s.page("GET", f"/grades/jobs/{job_id}/progress")
    assert progress.status_code == 286 and 'data-status="done"' in progress.text  # 286: HTMX stops polling
    assert "Les bulletins sont prêts (élèves : 2)." in progress.text and 'id="download-zip"' in progress.text
    # Another school's director does not see the job.
    assert (
        await world.api("GET", f"/grades/jobs/{job_id}", as_=f"director.{OTHER}@test.ma", tenant=OTHER)
    ).status_code == 404

    listing = await s.page("GET", f"/grades/classes/{s.class_id}/bulletins?term_id={s.term}")
    assert listing.status_code == 200
    ids = [int(v) for v in re.findall(r'data-bulletin="(\d+)"', listing.text)]
    assert len(ids) == 4 and listing.text.index("Yacoubi") < listing.text.index("Zeroual")
    one = await s.page("GET", f"/grades/bulletins/{ids[0]}")
    assert one.status_code == 200 and one.headers["content-type"] == "application/pdf"
    assert one.content.startswith(b"%PDF") and "attachment" in one.headers["content-disposition"]
    archive = await s.page("GET", f"/grades/classes/{s.class_id}/bulletins.zip?term_id={s.term}")
    assert archive.status_code == 200 and archive.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
    assert len(names) == 4 and all(n.endswith(".pdf") for n in names)

    # Roles and tenants: the teacher gets 403, another school's director 404 for this school's files.
    assert (
        await s.page("GET", f"/grades/classes/{s.class_id}/bulletins.zip?term_id={s.term}", s.teacher)
    ).status_code == 403
    outsider = f"director.{OTHER}@test.ma"
    for path in (f"/grades/bulletins/{ids[0]}", f"/grades/classes/{s.class_id}/bulletins?term_id={s.term}"):
        assert (await world.api("GET", path, as_=outsider, tenant=OTHER)).status_code == 404, path


@pytest.mark.parametrize("locale", ["ar", "fr"])
def test_the_pages_messages_are_translated(locale):
    from tests.test_i18n import catalogue

    messages = catalogue(locale)
    missing = [m for m in portal_results.MESSAGES if not messages.get(m)]
    assert len(portal_results.MESSAGES) == 4 and not missing, missing
