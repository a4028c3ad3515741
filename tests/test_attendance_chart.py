"""The attendance statistics as an SVG chart beside the table, numbers in the page's language, the at-risk pager."""

from __future__ import annotations

import re

import pytest

from core.i18n import locale_var
from plugins.attendance.chart import WIDTH, absence_chart
from tests.test_attendance import A, Setup
from tests.test_attendance_portal import form_url

GROUPS = [
    {"id": 1, "name": "TC-1", "expected_hours": 100, "justified_hours": 5, "unjustified_hours": 5, "absence_rate": 0.1},
    {
        "id": 2,
        "name": '<b>"x"</b>',
        "expected_hours": 100,
        "justified_hours": 0,
        "unjustified_hours": 20,
        "absence_rate": 0.2,
    },
    {"id": 3, "name": "Empty", "expected_hours": 0, "justified_hours": 0, "unjustified_hours": 0, "absence_rate": 0},
]


@pytest.fixture
def french():
    token = locale_var.set("fr")
    yield
    locale_var.reset(token)


def bars(svg: str) -> list[tuple[str, float, float]]:
    return [
        (kind, float(x), float(w))
        for x, w, kind in re.findall(
            r'<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)" height="\d+" fill="[^"]+" data-part="(\w+)"', svg
        )
    ]


def test_bars_are_proportional_to_the_largest_rate(french):
    svg = str(absence_chart(GROUPS, title="T", description="D", rtl=False))
    assert svg.startswith("<svg") and 'role="img"' in svg and '<title id="att-chart-title">T</title>' in svg
    # The largest rate (20 %) spans the width; 5 % of 100 h is a quarter of it.
    assert bars(svg) == [
        ("justified", 0.0, WIDTH / 4),
        ("unjustified", WIDTH / 4, WIDTH / 4),
        ("unjustified", 0.0, WIDTH),
    ]
    assert "10,0 %" in svg.replace("\u00a0", " ").replace("\u202f", " ")
    assert "<b>" not in svg and "&lt;b&gt;" in svg  # names are escaped
    assert absence_chart([], title="T", description="D", rtl=False) == ""


def test_bars_grow_from_the_right_in_arabic(french):
    svg = str(absence_chart(GROUPS[:1], title="T", description="D", rtl=True))
    assert bars(svg) == [("justified", WIDTH - WIDTH / 2, WIDTH / 2), ("unjustified", 0.0, WIDTH / 2)]
    assert f'<text x="{WIDTH}" y="17" text-anchor="start" direction="rtl"' in svg  # names from the right edge
    assert 'direction="ltr"' in svg.split(">", 1)[0]  # the geometry is not mirrored again by the page


async def test_the_statistics_page_shows_the_chart_beside_the_table(world):
    s = await Setup(world).build()
    await world.api("POST", form_url(s), as_=s.teacher, tenant=A, data={"a": str(s.pupils[0])})
    page = await world.api("GET", "/attendance/stats?lang=fr", as_=s.director, tenant=A)
    assert page.status_code == 200
    chart = page.text.split('id="stats-chart"', 1)[1].split("</figure>", 1)[0]
    assert '<svg class="att-chart" role="img"' in chart and 'data-part="unjustified"' in chart
    assert "Taux d&#39;absence par classe" in chart and "<script" not in chart
    assert page.text.index('id="stats-chart"') < page.text.index('id="stats-table"')
    arabic = await world.api("GET", "/attendance/stats?lang=ar", as_=s.director, tenant=A)
    assert 'direction="rtl"' in arabic.text and "نسبة الغياب حسب القسم" in arabic.text
    # A page number out of range or not a number still shows the page (the first or last page).
    for value in ("abc", "999"):
        other = await world.api(
            "GET", f"/attendance/stats?page={value}", as_="region.casa@madrasa.demo", tenant="casablanca-settat"
        )
        assert other.status_code == 200 and 'id="stats-table"' in other.text
