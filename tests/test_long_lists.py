"""Long lists are paged with the shared pager: missing marks and an onboarding report's errors."""

from __future__ import annotations

import re

from core.scope import Scope
from tests.test_director_portal import fresh_school

REGION = "casablanca-settat"
REGION_ADMIN = "region.casa@madrasa.demo"


async def test_missing_marks_are_paged(world):
    slug = await fresh_school(world, "missing")
    director, teacher = f"director.{slug}@test.ma", f"teacher.{slug}@test.ma"
    teacher_id = await world.sql("SELECT id FROM person WHERE email = {}", teacher)
    async with world.services.db.scoped(Scope.everything(), write=False):
        codes = [r["code"] for r in await world.services.db.fetch("SELECT code FROM subject ORDER BY code")]
    made = 0
    for n in range(8):
        response = await world.api(
            "POST",
            "/api/v1/school/classes",
            as_=director,
            tenant=slug,
            json={"name": f"M-{n}", "level_code": "TC", "track_code": "TCS"},
        )
        assert response.status_code == 201, response.text
        class_id = response.json()["id"]
        for code in codes:
            response = await world.api(
                "POST",
                "/api/v1/school/assignments",
                as_=director,
                tenant=slug,
                json={"teacher_id": teacher_id, "class_id": class_id, "subject_code": code},
            )
            made += response.status_code == 201
        if made > 55:
            break
    assert made > 50
    first = await world.api("GET", "/grades/missing?lang=fr", as_=director, tenant=slug)
    assert first.status_code == 200, first.text
    assert first.text.count("<tr class=") == 50 and "Page 1 sur 2" in first.text
    assert f"{made} classes et matières" in first.text  # the count covers every page
    link = re.search(r'href="([^"]*page=2)"', first.text)
    assert link and "term_id=" in link.group(1)
    second = await world.api(
        "GET", link.group(1).replace("&amp;", "&").removeprefix(f"/t/{slug}"), as_=director, tenant=slug
    )
    assert second.status_code == 200 and second.text.count("<tr class=") == made - 50
    assert 'aria-current="page">2<' in second.text


async def test_an_onboarding_reports_errors_are_paged(world):
    rows = "".join("BAD!,,X,moon,nowhere\n" for _ in range(20))
    data = f"code,name_ar,name_fr,cycle,province\n{rows}".encode()
    response = await world.api(
        "POST",
        "/admin/onboarding/upload",
        as_=REGION_ADMIN,
        tenant=REGION,
        data={"kind": "schools"},
        files={"file": ("b.csv", data, "text/csv")},
    )
    assert response.status_code == 303, response.text
    path = response.headers["location"].removeprefix(f"/t/{REGION}")
    first = await world.api("GET", f"{path}?lang=fr", as_=REGION_ADMIN, tenant=REGION)
    table = first.text.split('id="batch-error-table"', 1)[1].split("</table>", 1)[0]
    errors = int(re.search(r'id="batch-errors">(\d+)<', first.text).group(1))
    assert errors > 50 and table.count("<tr>") == 51  # the header and 50 errors
    assert f"Page 1 sur {-(-errors // 50)}" in first.text
    last = await world.api("GET", f"{path}?page=99&lang=ar", as_=REGION_ADMIN, tenant=REGION)
    table = last.text.split('id="batch-error-table"', 1)[1].split("</table>", 1)[0]
    assert table.count("<tr>") == 1 + errors - 50 * (-(-errors // 50) - 1)
    assert "الصفحة" in last.text
