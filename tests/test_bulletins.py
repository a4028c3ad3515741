"""Bulletins: rendering in Arabic and French, the background job, storage and who may download them."""

from __future__ import annotations

import io
import secrets
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from core.scope import Scope
from plugins.grades import publication
from plugins.grades.bulletins import (
    BulletinData,
    FontsMissing,
    Mark,
    SubjectLine,
    appreciation,
    fmt_average,
    gather_bulletins,
    render_bulletin,
)
from plugins.grades.bulletins import fonts as bulletin_fonts
from tests.conftest import PASSWORD, World, link_guardian
from tests.job_helpers import app_queue, call

SCHOOL = "lycee-ibn-batouta"
DIRECTOR = f"director.{SCHOOL}@test.ma"
TEACHER = f"teacher.{SCHOOL}@test.ma"
OTHER_SCHOOL = "lycee-moulay-youssef"


def pdf_text(data: bytes) -> str:
    """All text of a PDF, as a reader extracts it (through the fonts' ToUnicode maps)."""
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


def sample(**changes: Any) -> BulletinData:
    """A hand-made bulletin: three subjects, marks with an absence, rank 3 of 38."""
    subjects = (
        SubjectLine(
            code="ARA",
            name_ar="اللغة العربية",
            name_fr="Langue arabe",
            coefficient=Decimal(3),
            marks=(Mark(Decimal("13.5")), Mark(Decimal(15)), None),
            average=Decimal("14.25"),
            class_average=Decimal("11.8"),
        ),
        SubjectLine(
            code="MATH",
            name_ar="الرياضيات",
            name_fr="Mathématiques",
            coefficient=Decimal(4),
            marks=(Mark(Decimal("16.75")), Mark(None, "absent"), Mark(Decimal(12))),
            average=Decimal("15.375"),
        ),
        SubjectLine(
            code="SVT",
            name_ar="علوم الحياة والأرض",
            name_fr="Sciences de la vie et de la terre",
            coefficient=Decimal("1.5"),
            marks=(Mark(None, "excused"),),
            average=None,
        ),
    )
    values: dict[str, Any] = {
        "student_id": 1,
        "class_id": 1,
        "term_id": 1,
        "region_id": 2,
        "province_id": 3,
        "school_id": 7,
        "national_code": "S123456789",
        "first_name": "Salma",
        "last_name": "Bennani",
        "first_name_ar": "سلمى",
        "last_name_ar": "بناني",
        "class_name": "TC-2",
        "level_ar": "الجذع المشترك",
        "level_fr": "Tronc commun",
        "school_name_ar": "ثانوية ابن بطوطة",
        "school_name_fr": "Lycée Ibn Batouta",
        "region_name_ar": "جهة الدار البيضاء سطات",
        "region_name_fr": "Casablanca-Settat",
        "school_year": "2026-2027",
        "term_number": 1,
        "subjects": subjects,
        "average": Decimal("14.254"),
        "rank": 3,
        "ranked": 38,
        "class_average": Decimal("11.5"),
        "primary_color": "#1d4ed8",
        "issued_on": date(2027, 1, 30),
    }
    values.update(changes)
    return BulletinData(**values)


# ----------------------------------------------------------------------------- rendering (pure)


@pytest.mark.parametrize("locale", ["ar", "fr"])
def test_rendered_bulletin_text_has_the_arabic_name_and_the_averages(locale: str) -> None:
    data = render_bulletin(sample(), locale)  # type: ignore[arg-type]
    assert data.startswith(b"%PDF-")
    assert len(PdfReader(io.BytesIO(data)).pages) == 1
    text = pdf_text(data)
    assert "سلمى بناني" in text  # shaped glyphs map back to Unicode, in logical order
    assert "BENNANI Salma" in text
    for value in ("14.25", "15.38", "11.80", "16.75", "13.50", "S123456789", "2026-2027", "TC-2"):
        assert value in text, value
    if locale == "ar":
        for words in ("بيان النقط", "المعدل العام", "الرياضيات", "حسن جدا", "الدورة الأولى", "الرتبة"):
            assert words in text, words
    else:
        for words in ("Bulletin de notes", "Moyenne générale", "Mathématiques", "Très bien", "Rang", "Abs"):
            assert words in text, words
        assert "3 / 38" in text


def test_arabic_layout_runs_right_to_left() -> None:
    """In Arabic the subject column is at the right edge and the averages at the left; French mirrors it."""

    def x_of(data: bytes, needle: str) -> float:
        found: list[float] = []

        def visitor(text: str, cm: Any, tm: Any, font: Any, size: Any) -> None:
            if needle in text:
                found.append(tm[4])

        PdfReader(io.BytesIO(data)).pages[0].extract_text(visitor_text=visitor)
        assert found, needle
        return found[0]

    ar = render_bulletin(sample(), "ar")
    fr = render_bulletin(sample(), "fr")
    assert x_of(ar, "14.25") < 300 < x_of(ar, "الرياضيات")  # points; the page is 595 wide
    assert x_of(fr, "Mathématiques") < 300 < x_of(fr, "14.25")


def test_long_tables_still_fit_one_page_and_missing_values_print_dashes() -> None:
    many = tuple(
        SubjectLine(code=f"S{i}", name_ar=f"مادة {i}", name_fr=f"Matière {i}", coefficient=Decimal(1))
        for i in range(18)
    )
    data = render_bulletin(sample(subjects=many, average=None, rank=None, ranked=0, class_average=None), "fr")
    assert len(PdfReader(io.BytesIO(data)).pages) == 1
    text = pdf_text(data)
    assert "Matière 17" in text and "—" in text


def test_formatting_rules() -> None:
    assert fmt_average(Decimal("14.245")) == "14.25"
    assert fmt_average(14.2) == "14.20"
    assert fmt_average(None) == "—"
    assert appreciation(Decimal("14.25"), "fr") == "Très bien"
    assert appreciation(Decimal("9.99"), "ar") == "غير كاف"
    assert appreciation(Decimal(16), "fr") == "Excellent"
    with pytest.raises(ValueError):
        render_bulletin(sample(), "en")  # type: ignore[arg-type]


def test_fpdf2_public_font_api_is_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should fpdf2's internals move, fonts load through add_font() and bulletins still render."""
    import fpdf.fonts

    def moved(*args: Any, **kwargs: Any) -> None:
        raise AttributeError("moved")

    book = bulletin_fonts.FontBook()
    with monkeypatch.context() as patch:
        patch.setattr(fpdf.fonts, "TTFFont", moved)
        book.fonts()
    assert not book._fast
    monkeypatch.setattr(bulletin_fonts, "FONTS", book)
    text = pdf_text(render_bulletin(sample(), "ar"))
    assert "سلمى بناني" in text and "14.25" in text


def test_missing_font_names_the_debian_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(bulletin_fonts, "FONT_DIRS", (tmp_path,))
    with pytest.raises(FontsMissing, match="fonts-noto-core"):
        bulletin_fonts.check_fonts(font_dir=None)


# ----------------------------------------------------------------------------- the job and the API


async def post_id(world: World, path: str, body: dict[str, Any], as_: str = DIRECTOR) -> int:
    """POST through the school API; the new object's id."""
    response = await world.api("POST", path, as_=as_, tenant=SCHOOL, json=body)
    assert response.status_code in (200, 201), response.text
    return int(response.json()["id"])


async def seed_class(world: World) -> dict[str, Any]:
    """A class of three pupils (two with guardians, one with a login) and their term results."""
    suffix = secrets.token_hex(3)
    class_id = await post_id(
        world, "/api/v1/school/classes", {"name": f"BUL-{suffix}", "level_code": "TC", "track_code": "TCS"}
    )
    names = [
        ("Amine", "Alaoui", "أمين", "العلوي"),
        ("Salma", "Bennani", "سلمى", "بناني"),
        ("Omar", "Chraibi", "عمر", "الشرايبي"),
    ]
    pupils = []
    for first, last, first_ar, last_ar in names:
        code = f"B{secrets.randbelow(10**9):09d}"
        pupil_id = await post_id(
            world,
            "/api/v1/school/students",
            {
                "national_code": code,
                "first_name": first,
                "last_name": last,
                "first_name_ar": first_ar,
                "last_name_ar": last_ar,
                "class_id": class_id,
            },
        )
        pupils.append({"id": pupil_id, "code": code, "name_ar": f"{first_ar} {last_ar}"})
    guardians = []
    for i in range(2):
        email = f"bulletin-parent-{suffix}-{i}@test.ma"
        person = await link_guardian(world, SCHOOL, pupils[i]["id"], email, f"Parent {i}")
        await world.services.identity.set_password(person, PASSWORD)
        world.passwords[email] = PASSWORD
        guardians.append(email)
    pupil_login = await world.add_person(f"bulletin-pupil-{suffix}@test.ma", "student", SCHOOL)
    pupil_person = await world.sql("SELECT id FROM person WHERE email = {}", pupil_login)

    db = world.services.db
    school = await world.services.tenants.by_id(world.ids[SCHOOL])
    assert school is not None
    cols = [school.region_id, school.province_id, school.id]
    term_id = await world.sql("SELECT id FROM term WHERE tenant_id IS NULL AND number = 1")
    teacher = await world.sql("SELECT id FROM person WHERE email = {}", TEACHER)
    now = datetime.now(UTC)
    general = [(Decimal("14.25"), 1), (Decimal("12.5"), 2), (Decimal("9.75"), 3)]
    subjects = [("MATH", Decimal(4), ["15.5", "12.25", "8"]), ("ARA", Decimal(3), ["13", "12.75", "11.5"])]
    async with db.scoped(Scope.everything()):
        await db.execute("UPDATE student SET person_id = {} WHERE id = {}", pupil_person, pupils[2]["id"])
        for position, (pupil, (average, rank)) in enumerate(zip(pupils, general, strict=True)):
            await db.execute(
                "INSERT INTO grade_general_result (region_id, province_id, school_id, term_id, class_id, student_id, "
                "average, rank, ranked) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, 3)",
                *cols,
                term_id,
                class_id,
                pupil["id"],
                average,
                rank,
            )
            for code, coefficient, averages in subjects:
                await db.execute(
                    "INSERT INTO grade_subject_result (region_id, province_id, school_id, term_id, class_id, "
                    "student_id, subject_code, average, coefficient) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {})",
                    *cols,
                    term_id,
                    class_id,
                    pupil["id"],
                    code,
                    Decimal(averages[position]),
                    coefficient,
                )
        await db.execute(
            "INSERT INTO grade_class_stats (region_id, province_id, school_id, term_id, class_id, subject_code, count, "
            "mean, distribution) VALUES ({}, {}, {}, {}, {}, '', 3, {}, '[]')",
            *cols,
            term_id,
            class_id,
            Decimal("12.167"),
        )
        # One published maths sheet with a CC1 mark for the first pupil.
        sheet = await db.fetchval(
            "INSERT INTO grade_sheet (region_id, province_id, school_id, class_id, subject_code, term_id, teacher_id, "
            "state) VALUES ({}, {}, {}, {}, 'MATH', {}, {}, 'published') RETURNING id",
            *cols,
            class_id,
            term_id,
            teacher,
        )
        assessment = await db.fetchval(
            "INSERT INTO grade_assessment (region_id, province_id, school_id, sheet_id, class_id, subject_code, "
            "term_id, kind, position, title, scheduled_on, max_score, weight, version, created_at) VALUES "
            "({}, {}, {}, {}, {}, 'MATH', {}, 'cc', 1, 'CC1', {}, 20, 1, 0, {}) RETURNING id",
            *cols,
            sheet,
            class_id,
            term_id,
            date(2026, 10, 15),
            now,
        )
        for pupil, (score, status) in zip(pupils, [(Decimal("17.5"), "present"), (None, "absent")], strict=False):
            await db.execute(
                "INSERT INTO grade_mark (region_id, province_id, school_id, assessment_id, student_id, score, status, "
                "updated_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {})",
                *cols,
                assessment,
                pupil["id"],
                score,
                status,
                now,
            )
    return {
        "class_id": class_id,
        "term_id": term_id,
        "pupils": pupils,
        "guardians": guardians,
        "pupil_login": pupil_login,
        "school_id": school.id,
    }


async def test_gather_reads_a_class_in_a_few_queries(world: World) -> None:
    seeded = await seed_class(world)
    scope = Scope(frozenset({seeded["school_id"]}))
    db = world.services.db
    async with db.scoped(scope, write=False):
        items = await gather_bulletins(db, scope, seeded["class_id"], seeded["term_id"])
        other = Scope(frozenset({world.ids[OTHER_SCHOOL]}))
    assert [i.student_id for i in items] == [p["id"] for p in seeded["pupils"]]  # ordered by name
    first = items[0]
    assert (first.name_ar, first.average, first.rank, first.ranked) == ("أمين العلوي", Decimal("14.25"), 1, 3)
    assert [s.code for s in first.subjects] == ["ARA", "MATH"]  # national subject order
    maths = first.subjects[1]
    assert maths.coefficient == Decimal(4) and maths.average == Decimal("15.5")
    assert maths.marks[0] == Mark(Decimal("17.5"), "present") and maths.marks[1:] == (None, None)
    assert items[1].subjects[1].marks[0] == Mark(None, "absent")
    assert first.class_average == Decimal("12.167")
    assert first.school_name_fr and first.school_name_ar and first.school_year
    async with db.scoped(other, write=False):  # another school's scope sees nothing
        assert await gather_bulletins(db, other, seeded["class_id"], seeded["term_id"]) == []


async def test_bulletin_job_stores_two_files_per_pupil_and_families_get_only_theirs(world: World) -> None:
    seeded = await seed_class(world)
    body = {"class_id": seeded["class_id"], "term_id": seeded["term_id"]}
    async with app_queue(world) as queue:
        # Only the director may ask; a class of another school is not found.
        for who in (TEACHER, seeded["guardians"][0]):
            response = await call(world, "POST", "/api/v1/grades/bulletins", as_=who, tenant=SCHOOL, json=body)
            assert response.status_code == 403, response.text
        response = await call(
            world,
            "POST",
            "/api/v1/grades/bulletins",
            as_=DIRECTOR,
            tenant=SCHOOL,
            json={"class_id": world.objects[OTHER_SCHOOL]["class_id"], "term_id": seeded["term_id"]},
        )
        assert response.status_code == 404

        response = await call(world, "POST", "/api/v1/grades/bulletins", as_=DIRECTOR, tenant=SCHOOL, json=body)
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]
        assert response.json()["url"].endswith(f"/api/v1/jobs/{job_id}")
        info = await queue.wait(job_id, seconds=120)
        assert info.status == "done", info.error
        status = (await call(world, "GET", f"/api/v1/jobs/{job_id}", as_=DIRECTOR, tenant=SCHOOL)).json()
        assert (status["status"], status["done"], status["total"], status["percentage"]) == ("done", 3, 3, 100)
        assert status["result"] == {"pupils": 3, "files": 6, "classes": 1, "locales": ["ar", "fr"]}

    rows = await bulletin_rows(world, seeded["class_id"])
    assert len(rows) == 6
    assert {(r["student_id"], r["locale"]) for r in rows} == {
        (p["id"], loc) for p in seeded["pupils"] for loc in ("ar", "fr")
    }
    storage = world.services.storage
    for row in rows:
        assert row["storage_key"].startswith(f"t/{seeded['school_id']}/bulletins/")
        assert row["storage_key"].endswith(f"-S1-{row['locale']}.pdf")
        assert await storage.exists(row["storage_key"], tenant_id=seeded["school_id"])

    first, second, third = seeded["pupils"]
    ar_first = next(r["id"] for r in rows if r["student_id"] == first["id"] and r["locale"] == "ar")
    path = f"/api/v1/grades/bulletins/{ar_first}"

    response = await call(world, "GET", path, as_=DIRECTOR, tenant=SCHOOL)
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    text = pdf_text(response.content)
    assert first["name_ar"] in text
    assert "14.25" in text and "15.50" in text and "17.50" in text and "1 / 3" in text

    guardian, other_guardian = seeded["guardians"]
    response = await call(world, "GET", path, as_=guardian, tenant=SCHOOL)
    assert response.status_code == 200 and first["name_ar"] in pdf_text(response.content)
    assert (await call(world, "GET", path, as_=other_guardian, tenant=SCHOOL)).status_code == 404
    assert (await call(world, "GET", path, as_=seeded["pupil_login"], tenant=SCHOOL)).status_code == 404
    foreign = f"guardian.{OTHER_SCHOOL}@test.ma"
    assert (await call(world, "GET", path, as_=foreign, tenant=OTHER_SCHOOL)).status_code == 404
    assert (
        await call(world, "GET", path, as_=f"director.{OTHER_SCHOOL}@test.ma", tenant=OTHER_SCHOOL)
    ).status_code == 404

    # The pupil reads their own; families list exactly their own children's bulletins.
    own = next(r["id"] for r in rows if r["student_id"] == third["id"] and r["locale"] == "fr")
    response = await call(world, "GET", f"/api/v1/grades/bulletins/{own}", as_=seeded["pupil_login"], tenant=SCHOOL)
    assert response.status_code == 200 and "CHRAIBI Omar" in pdf_text(response.content)
    listed = await call(world, "GET", "/api/v1/grades/bulletins", as_=other_guardian, tenant=SCHOOL)
    assert listed.status_code == 200
    assert {(b["student_id"], b["locale"]) for b in listed.json()} == {(second["id"], "ar"), (second["id"], "fr")}
    staff = await call(
        world, "GET", f"/api/v1/grades/bulletins?class_id={seeded['class_id']}", as_=DIRECTOR, tenant=SCHOOL
    )
    assert len(staff.json()) == 6


async def test_whole_school_run_renders_the_missing_and_replaces_files_after_a_publication(world: World) -> None:
    seeded = await seed_class(world)

    async def run(queue: Any, body: dict[str, Any]) -> Any:
        response = await call(world, "POST", "/api/v1/grades/bulletins", as_=DIRECTOR, tenant=SCHOOL, json=body)
        assert response.status_code == 202, response.text
        info = await queue.wait(response.json()["job_id"], seconds=300)
        assert info.status == "done", info.error
        return info

    whole = {"term_id": seeded["term_id"]}
    async with app_queue(world) as queue:
        await run(queue, {"class_id": seeded["class_id"], "term_id": seeded["term_id"]})
        before = await bulletin_rows(world, seeded["class_id"])
        # Same publication version: the class's cards are there already; nothing of theirs is rendered again.
        again = await run(queue, whole)
        kept = await bulletin_rows(world, seeded["class_id"])
        # A new publication (here: the results computed again) makes the next run render new cards.
        async with world.services.db.scoped(Scope.everything()):
            await publication.bump(world.services.db, [seeded["school_id"]])
        info = await run(queue, whole)
    assert kept == before
    assert again.result["pupils"] >= 3 and again.total == again.done == again.result["pupils"]
    assert info.result["pupils"] >= 3 and info.result["classes"] >= 1
    assert info.total == info.done == info.result["pupils"]
    assert info.result["files"] >= 6
    version = await world.sql("SELECT version FROM grade_publication WHERE school_id = {}", seeded["school_id"])
    after = await bulletin_rows(world, seeded["class_id"])
    assert len(after) == 6 and {r["id"] for r in after}.isdisjoint({r["id"] for r in before})
    storage = world.services.storage
    for row in before:  # the previous files are gone once replaced
        assert not await storage.exists(row["storage_key"], tenant_id=seeded["school_id"])
    for row in after:
        assert await storage.exists(row["storage_key"], tenant_id=seeded["school_id"])
        assert row["storage_key"].startswith(f"t/{seeded['school_id']}/bulletins/v{version}/{row['student_id']}/")
    assert all(f"/bulletins/v{version - 1}/" in row["storage_key"] for row in before)


async def bulletin_rows(world: World, class_id: int) -> list[dict[str, Any]]:
    """The grade_bulletin rows of a class (platform scope)."""
    db = world.services.db
    async with db.scoped(Scope.everything(), write=False):
        return await db.fetch(
            "SELECT id, student_id, locale, storage_key FROM grade_bulletin WHERE class_id = {} ORDER BY id", class_id
        )
