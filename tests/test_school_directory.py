"""The director's pupil search and staff page, and the shared pager of long lists."""

from __future__ import annotations

import random
import re

import pytest

from core.paging import paginate
from core.school.directory import matches, search_key
from tests.test_director_portal import fresh_school

A, B = "lycee-ibn-batouta", "lycee-moulay-youssef"

# -- the normaliser, against an oracle --------------------------------------------------------------

SAME = [
    ("Éloïse", "eloise"),
    ("MÉLANIE  Ben-Ali", "melanie ben ali"),
    ("Çağla", "cagla"),
    ("أحمد", "احمد"),
    ("إيمان", "ايمان"),
    ("آمنة", "امنه"),
    ("فاطمة", "فاطمه"),
    ("مصطفى", "مصطفي"),
    ("مُحَمَّد", "محمد"),
    ("عبد الـلـه", "عبد الله"),
    ("ٱلحسن", "الحسن"),
    ("مؤمن", "مومن"),
    ("هانئ", "هاني"),
    ("يحيى", "يحيي"),
    ("كريمة ", "كريمه"),
]


@pytest.mark.parametrize(("written", "folded"), SAME)
def test_search_key_folds_accents_harakat_and_letter_forms(written, folded):
    assert search_key(written) == folded
    assert search_key(written) == search_key(folded)


NAMES = {
    1: "Benjelloun Hélène بنجلون هيلين",
    2: "El Idrissi Mohammed الإدريسي مُحمّد",
    3: "Tazi Fatima Zahra التازي فاطمة الزهراء",
    4: "Alaoui Mustapha العلوي مصطفى",
    5: "Chraibi Aïcha الشرايبي عائشة",
}
ORACLE = [
    ("helene", {1}),
    ("HÉLÈNE benjelloun", {1}),
    ("محمد", {2}),
    ("الادريسي", {2}),
    ("فاطمه الزهراء", {3}),
    ("مصطفي", {4}),
    ("aicha", {5}),
    ("عائشه", {5}),
    ("al", {4}),
    ("ZAHRA tazi", {3}),
    ("nobody", set()),
]


@pytest.mark.parametrize(("query", "expected"), ORACLE)
def test_search_matches_the_oracle(query, expected):
    key = search_key(query)
    assert {i for i, text in NAMES.items() if matches(key, search_key(text))} == expected


def test_an_empty_query_matches_nothing():
    assert not matches(search_key("  - "), search_key(NAMES[1]))


# -- the pager --------------------------------------------------------------------------------------


def test_paginate_cuts_pages_and_keeps_the_query():
    rows = list(range(1, 121))
    first = paginate(rows, None, "/t/s/school/pupils", {"q": "ali"})
    assert (first.number, first.pages, first.total, first.items[0], first.items[-1]) == (1, 3, 120, 1, 50)
    assert first.previous is None and first.next == "/t/s/school/pupils?q=ali&page=2"
    last = paginate(rows, "3", "/x", {"q": "ali"})
    assert last.items == list(range(101, 121)) and (last.first_index, last.last_index) == (101, 120)
    assert last.previous == "/x?q=ali&page=2" and last.next is None
    assert paginate(rows, "99", "/x").number == 3  # clamped to the last page
    assert paginate(rows, "abc", "/x").number == 1 and paginate(rows, "-4", "/x").number == 1
    many = paginate(list(range(1000)), 10, "/x", size=50)
    assert [link.number for link in many.links] == [1, None, 8, 9, 10, 11, 12, None, 20]
    assert [link.current for link in many.links if link.number == 10] == [True]
    assert paginate([], 1, "/x").links == [] and paginate([], 1, "/x").first_index == 0


# -- the pages --------------------------------------------------------------------------------------

ARABIC = "بتثجحخدذرزسشصضطظعغفقكلمنهوي"


async def test_director_searches_pupils_in_latin_arabic_and_by_code(world):
    school = await fresh_school(world, "search")
    director = f"director.{school}@test.ma"
    klass = await world.api(
        "POST",
        "/api/v1/school/classes",
        as_=director,
        tenant=school,
        json={"name": "TC-S1", "level_code": "TC", "track_code": "TCS"},
    )
    assert klass.status_code == 201, klass.text
    token = "".join(random.choice("bcdfgjkvwxz") for _ in range(7))
    token_ar = "".join(random.choice(ARABIC) for _ in range(6))
    made = []
    for first, first_ar in (("Hélène", "هيلين"), ("Mohammed", "مُحَمَّد")):
        code = "Q" + "".join(random.choice("0123456789") for _ in range(9))
        response = await world.api(
            "POST",
            "/api/v1/school/students",
            as_=director,
            tenant=school,
            json={
                "national_code": code,
                "first_name": first,
                "last_name": f"Él{token}",
                "first_name_ar": first_ar,
                "last_name_ar": f"أ{token_ar}ة",
                "class_id": klass.json()["id"],
            },
        )
        assert response.status_code == 201, response.text
        made.append((response.json()["id"], code))

    async def search(q, who=director, tenant=school):
        return await world.api("GET", "/school/pupils", as_=who, tenant=tenant, params={"q": q, "lang": "fr"})

    home = await world.api("GET", "/?lang=fr", as_=director, tenant=school)
    assert f'href="/t/{school}/school/pupils"' in home.text and f'href="/t/{school}/school/staff"' in home.text

    def found(response):
        assert response.status_code == 200, response.text
        return {int(v) for v in re.findall(r'<tr data-pupil="(\d+)"', response.text)}

    ids = {pid for pid, _ in made}
    assert found(await search(f"EL{token}")) == ids  # accent and case
    assert found(await search(f"helene el{token}")) == {made[0][0]}
    assert found(await search(f"ا{token_ar}ه")) == ids  # hamza on alef, ta marbuta
    assert found(await search(f"محمد ا{token_ar}ه")) == {made[1][0]}  # harakat
    assert found(await search(made[1][1].lower())) == {made[1][0]}  # Massar code
    page = await search(f"el{token}")
    assert "Élèves trouvés : 2" in page.text and "TC-S1" in page.text
    empty = await world.api("GET", "/school/pupils?lang=fr", as_=director, tenant=school)
    assert empty.status_code == 200 and "<tr data-pupil" not in empty.text

    # A teacher may not search; another school's director does not find these pupils.
    assert (await search(f"el{token}", who=f"teacher.{school}@test.ma")).status_code == 403
    assert found(await search(f"el{token}", who=f"director.{A}@test.ma", tenant=A)) == set()


async def test_the_search_pages_long_results(world):
    school = await fresh_school(world, "pages")
    director = f"director.{school}@test.ma"
    token = "".join(random.choice("bcdfgjkvwxz") for _ in range(8))
    for i in range(52):
        code = "W" + "".join(random.choice("0123456789") for _ in range(9))
        response = await world.api(
            "POST",
            "/api/v1/school/students",
            as_=director,
            tenant=school,
            json={"national_code": code, "first_name": f"P{i:02d}", "last_name": token},
        )
        assert response.status_code == 201, response.text
    first = await world.api("GET", "/school/pupils", as_=director, tenant=school, params={"q": token, "lang": "fr"})
    assert first.text.count("<tr data-pupil") == 50 and "Page 1 sur 2" in first.text
    assert f'href="/t/{school}/school/pupils?q={token}&amp;page=2"' in first.text
    second = await world.api("GET", "/school/pupils", as_=director, tenant=school, params={"q": token, "page": 2})
    assert second.text.count("<tr data-pupil") == 2


async def test_the_staff_page_shows_who_teaches_what_where(world):
    director = f"director.{A}@test.ma"
    page = await world.api("GET", "/school/staff?lang=fr", as_=director, tenant=A)
    assert page.status_code == 200, page.text
    teacher_id = world.objects[A]["teacher_id"]
    row = re.search(rf'<li class="card staff-card" data-teacher="{teacher_id}">(.*?)</li>', page.text, re.S)
    assert row, "the seeded teacher is listed"
    cell = row.group(1)
    assert "Mathématiques" in cell and "TEST-1" in cell and "Salle 1" in cell and "2:00" in cell
    assert (await world.api("GET", "/school/staff", as_=f"teacher.{A}@test.ma", tenant=A)).status_code == 403
    other = await world.api("GET", "/school/staff", as_=f"director.{B}@test.ma", tenant=B)
    assert other.status_code == 200 and f'data-teacher="{teacher_id}"' not in other.text
    arabic = await world.api("GET", "/school/staff?lang=ar", as_=director, tenant=A)
    assert 'dir="rtl"' in arabic.text and "الساعات في الأسبوع" in arabic.text
