"""A child's marks page once a term is closed: the averages beside the class's, the rank, and the report cards
(Arabic and French) downloaded with the portal session — for a family with children in two regions."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from core.scope import Scope
from plugins.grades import publication
from plugins.grades.bulletins.cards import card_key
from tests.conftest import PASSWORD, link_guardian

HOME = "lycee-ibn-batouta"  # region casablanca-settat
OTHER = "lycee-moulay-youssef"  # region rabat-sale-kenitra
PDF_BYTES = b"%PDF-1.4\n% bulletin of a test\n"


async def past_term(world: Any) -> int:
    """A national first semester of a past year, closed by these tests only (the current year stays open)."""
    db = world.services.db
    async with db.scoped(Scope.everything()):
        year = await db.fetchval("SELECT id FROM school_year WHERE label = '2019-2020'")
        if year is None:
            year = await db.fetchval(
                "INSERT INTO school_year (label, starts_on, ends_on) VALUES ('2019-2020', {}, {}) RETURNING id",
                date(2019, 9, 1),
                date(2020, 6, 30),
            )
        term = await db.fetchval("SELECT id FROM term WHERE school_year_id = {} AND number = 1", year)
        if term is None:
            term = await db.fetchval(
                "INSERT INTO term (school_year_id, tenant_id, number, starts_on, ends_on) "
                "VALUES ({}, NULL, 1, {}, {}) RETURNING id",
                year,
                date(2019, 9, 1),
                date(2020, 1, 31),
            )
    return int(term)


async def pupil(world: Any, school: str, first_name: str, guardian: str) -> dict[str, Any]:
    """A pupil of a fresh class of the school, linked to ``guardian``."""
    director = f"director.{school}@test.ma"
    klass = await world.api(
        "POST",
        "/api/v1/school/classes",
        as_=director,
        tenant=school,
        json={"name": f"FAM-{secrets.token_hex(3)}", "level_code": "TC", "track_code": "TCS"},
    )
    assert klass.status_code == 201, klass.text
    class_id = int(klass.json()["id"])
    created = await world.api(
        "POST",
        "/api/v1/school/students",
        as_=director,
        tenant=school,
        json={
            "national_code": f"F{secrets.randbelow(10**9):09d}",
            "first_name": first_name,
            "last_name": "Famille",
            "class_id": class_id,
        },
    )
    assert created.status_code == 201, created.text
    student_id = int(created.json()["id"])
    await link_guardian(world, school, student_id, guardian, "Parent Famille")
    return {"id": student_id, "class_id": class_id, "school": school}


async def close_with_results(world: Any, child: dict[str, Any], term_id: int, rank: int) -> dict[str, int]:
    """The child's results of a closed term (as the close computes them) and two stored report cards, at the
    storage keys of the school's current publication version (as a first download or the class job stores them)."""
    db = world.services.db
    school = await world.services.tenants.by_slug(child["school"])
    cols = [school.region_id, school.province_id, school.id]
    now = datetime.now(UTC)
    ids: dict[str, int] = {}
    async with db.scoped(Scope.everything()):
        if not await db.fetchval(
            "SELECT id FROM grade_term_close WHERE school_id = {} AND term_id = {}", school.id, term_id
        ):
            await db.execute(
                "INSERT INTO grade_term_close (region_id, province_id, school_id, term_id, closed_at) "
                "VALUES ({}, {}, {}, {}, {})",
                *cols,
                term_id,
                now,
            )
        await db.execute(
            "INSERT INTO grade_general_result (region_id, province_id, school_id, term_id, class_id, student_id, "
            "average, rank, ranked) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, 28)",
            *cols,
            term_id,
            child["class_id"],
            child["id"],
            Decimal("14.25"),
            rank,
        )
        await db.execute(
            "INSERT INTO grade_subject_result (region_id, province_id, school_id, term_id, class_id, student_id, "
            "subject_code, average, coefficient) VALUES ({}, {}, {}, {}, {}, {}, 'MATH', {}, 4)",
            *cols,
            term_id,
            child["class_id"],
            child["id"],
            Decimal("15.5"),
        )
        for subject, mean in (("", Decimal("11.875")), ("MATH", Decimal("10.5"))):
            await db.execute(
                "INSERT INTO grade_class_stats (region_id, province_id, school_id, term_id, class_id, subject_code, "
                "count, mean, distribution) VALUES ({}, {}, {}, {}, {}, {}, 28, {}, '[]')",
                *cols,
                term_id,
                child["class_id"],
                subject,
                mean,
            )
        version = await publication.school_version(db, Scope.everything(), school.id)
        code = await db.fetchval("SELECT national_code FROM student WHERE id = {}", child["id"])
        number = await db.fetchval("SELECT number FROM term WHERE id = {}", term_id)
        for locale in ("ar", "fr"):
            key = card_key(school.id, version, child["id"], f"{code}-S{number}-{locale}.pdf")
            await world.services.storage.put(key, PDF_BYTES + locale.encode(), "application/pdf", tenant_id=school.id)
            ids[locale] = await db.fetchval(
                "INSERT INTO grade_bulletin (region_id, province_id, school_id, term_id, student_id, class_id, "
                "storage_key, locale, created_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}) RETURNING id",
                *cols,
                term_id,
                child["id"],
                child["class_id"],
                key,
                locale,
                now,
            )
    return ids


async def test_a_family_in_two_regions_reads_results_and_downloads_both_report_cards(world):
    guardian = f"parent.bulletins.{world.backend}.{secrets.token_hex(2)}@test.ma"
    first = await pupil(world, HOME, "Yasmine", guardian)
    second = await pupil(world, OTHER, "Karim", guardian)
    person = await world.services.db.fetchval("SELECT id FROM person WHERE email = {}", guardian)
    await world.services.identity.set_password(person, PASSWORD)
    world.passwords[guardian] = PASSWORD
    term_id = await past_term(world)
    cards = {
        first["id"]: await close_with_results(world, first, term_id, rank=3),
        second["id"]: await close_with_results(world, second, term_id, rank=5),
    }

    # The marks page is reached from the grades home, under each child's own school.
    home = await world.api("GET", "/grades/?lang=fr", as_=guardian, tenant=HOME)
    assert home.status_code == 200, home.text
    for child in (first, second):
        assert f'href="/t/{child["school"]}/grades/pupils/{child["id"]}"' in home.text

    for child, rank in ((first, 3), (second, 5)):
        page = await world.api("GET", f"/grades/pupils/{child['id']}?lang=fr", as_=guardian, tenant=child["school"])
        assert page.status_code == 200, page.text
        html = page.text
        assert "Résultats et bulletins" in html and "Moyenne de la classe" in html
        assert "14,25" in html and "11,88" in html  # own general average beside the class's
        assert "15,50" in html and "10,50" in html  # MATH: own beside the class's
        assert f"{rank} sur 28" in html
        for locale, bulletin_id in cards[child["id"]].items():
            # The page links to the card of the term and language; the stored card is served as is.
            url = f"/grades/pupils/{child['id']}/bulletins/{term_id}/{locale}"
            assert f'href="/t/{child["school"]}{url}"' in html and f'data-locale="{locale}"' in html
            pdf = await world.api("GET", url, as_=guardian, tenant=child["school"])
            assert pdf.status_code == 200, pdf.text
            assert pdf.headers["content-type"] == "application/pdf"
            assert pdf.headers["content-disposition"].startswith("attachment;")
            assert pdf.content == PDF_BYTES + locale.encode()
            # The recorded card is also readable by its id (the staff's lists link there).
            by_id = await world.api("GET", f"/grades/bulletins/{bulletin_id}", as_=guardian, tenant=child["school"])
            assert by_id.status_code == 200 and by_id.content == PDF_BYTES + locale.encode()

    # The pupil with a login of their own reads their results and downloads their own report card.
    pupil_login = await world.add_person(
        f"pupil.bulletins.{world.backend}.{secrets.token_hex(2)}@test.ma", "student", HOME
    )
    async with world.services.db.scoped(Scope.everything()):
        login_id = await world.services.db.fetchval("SELECT id FROM person WHERE email = {}", pupil_login)
        await world.services.db.execute("UPDATE student SET person_id = {} WHERE id = {}", login_id, first["id"])
    own = await world.api("GET", f"/grades/pupils/{first['id']}?lang=fr", as_=pupil_login, tenant=HOME)
    assert own.status_code == 200 and "3 sur 28" in own.text
    own_card = f"/grades/pupils/{first['id']}/bulletins/{term_id}/ar"
    assert f'href="/t/{HOME}{own_card}"' in own.text
    mine = await world.api("GET", own_card, as_=pupil_login, tenant=HOME)
    assert mine.status_code == 200 and mine.content == PDF_BYTES + b"ar"

    arabic = await world.api("GET", f"/grades/pupils/{first['id']}?lang=ar", as_=guardian, tenant=HOME)
    assert 'dir="rtl"' in arabic.text and "معدل القسم" in arabic.text and "3 من 28" in arabic.text

    # Another family, a teacher and another school's staff get no report card of these children.
    card = cards[first["id"]]["fr"]
    for who, tenant in (
        (f"guardian.{HOME}@test.ma", HOME),
        (f"teacher.{OTHER}@test.ma", OTHER),
        (f"director.{OTHER}@test.ma", OTHER),
    ):
        refused = await world.api("GET", f"/grades/bulletins/{card}", as_=who, tenant=tenant)
        assert refused.status_code == 404, (who, refused.status_code)
        by_term = await world.api("GET", f"/grades/pupils/{first['id']}/bulletins/{term_id}/fr", as_=who, tenant=tenant)
        assert by_term.status_code in (403, 404), (who, by_term.status_code)
    # The other child's card, asked under the wrong school's prefix: not found there.
    wrong = await world.api("GET", f"/grades/bulletins/{cards[second['id']]['fr']}", as_=guardian, tenant=HOME)
    assert wrong.status_code == 404
    anonymous = await world.client.get(f"/t/{HOME}/grades/bulletins/{card}")
    assert anonymous.status_code in (302, 303, 401)


async def test_results_section_is_absent_before_any_close(world):
    guardian = f"parent.noclose.{world.backend}.{secrets.token_hex(2)}@test.ma"
    child = await pupil(world, HOME, "Nora", guardian)
    person = await world.services.db.fetchval("SELECT id FROM person WHERE email = {}", guardian)
    await world.services.identity.set_password(person, PASSWORD)
    world.passwords[guardian] = PASSWORD
    page = await world.api("GET", f"/grades/pupils/{child['id']}?lang=fr", as_=guardian, tenant=HOME)
    assert page.status_code == 200, page.text
    assert "Résultats et bulletins" not in page.text and "/grades/bulletins/" not in page.text
