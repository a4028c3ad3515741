"""The mark grid in a real browser on a phone: a teacher enters a class's marks with keyboard and thumb.

Runs once (not per database backend), like ``tests/test_browser.py``: a real ``madrasa`` server
on SQLite started as a subprocess (``madrasa demo --no-serve`` then ``madrasa serve``), and
Debian's Chromium driven headless by Playwright at 390×844 with touch. The data is created
through the server's HTTP API — a class of three pupils, the demo teacher assigned to teach PC
there, and an assessment the teacher schedules — so the test does not depend on what the demo
contains. What the page saved is read back through the JSON API. Without ``/usr/bin/chromium``
the test skips locally and fails with ``CI=true``.
"""

from __future__ import annotations

import secrets
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import httpx

from tests.test_browser import CHROMIUM_ARGS, SCHOOL, account, chromium, demo_server  # noqa: F401 (fixtures)

PUPILS = [("Amina", "Alaoui"), ("Bilal", "Bennani"), ("Chaima", "Chraibi")]


def term_id(data_dir: Path) -> int:
    """The national first term of the demo's year (no API lists term ids), read from the server's SQLite file."""
    with sqlite3.connect(f"file:{data_dir / 'madrasa.sqlite3'}?mode=ro", uri=True) as db:
        row = db.execute("SELECT id FROM term WHERE tenant_id IS NULL ORDER BY number LIMIT 1").fetchone()
    assert row, "no term in the demo database"
    return int(row[0])


def seed_class(base: str, accounts: list[dict[str, str]], term: int) -> dict[str, Any]:
    """As the demo director: a class with three pupils and the demo teacher on PC; the teacher schedules a test."""
    director = account(accounts, "school_director")
    teacher = account(accounts, "teacher")
    with httpx.Client(base_url=base, timeout=30) as http:

        def token(who: dict[str, str]) -> dict[str, str]:
            response = http.post(
                "/api/v1/auth/token", json={"email": who["email"], "password": who["password"], "tenant": SCHOOL}
            )
            assert response.status_code == 200, response.text
            return {"authorization": f"Bearer {response.json()['access_token']}"}

        as_director, as_teacher = token(director), token(teacher)

        def post(path: str, body: dict[str, Any], headers: dict[str, str]) -> int:
            response = http.post(f"/t/{SCHOOL}{path}", json=body, headers=headers)
            assert response.status_code in (200, 201), f"{path}: {response.status_code} {response.text}"
            return int(response.json()["id"])

        me = http.get("/api/v1/me", headers=as_teacher)
        assert me.status_code == 200, me.text
        class_name = f"GRID-{secrets.randbelow(10**4):04d}"
        class_id = post(
            "/api/v1/school/classes", {"name": class_name, "level_code": "TC", "track_code": "TCS"}, as_director
        )
        pupils = []
        for first, last in PUPILS:
            pupils.append(
                post(
                    "/api/v1/school/students",
                    {
                        "national_code": f"G{secrets.randbelow(10**9):09d}",
                        "first_name": first,
                        "last_name": last,
                        "class_id": class_id,
                    },
                    as_director,
                )
            )
        post(
            "/api/v1/school/assignments",
            {"teacher_id": me.json()["id"], "class_id": class_id, "subject_code": "PC"},
            as_director,
        )
        assessment_id = post(
            "/api/v1/grades/assessments",
            {
                "class_id": class_id,
                "subject_code": "PC",
                "term_id": term,
                "scheduled_on": "2026-10-06",
                "title": "Devoir surveillé 1",
            },
            as_teacher,
        )
    return {
        "teacher": teacher,
        "as_teacher": as_teacher,
        "class_name": class_name,
        "pupils": pupils,
        "assessment_id": assessment_id,
    }


def stored_marks(base: str, headers: dict[str, str], assessment_id: int) -> dict[int, dict[str, Any]]:
    response = httpx.get(
        f"{base}/t/{SCHOOL}/api/v1/grades/assessments/{assessment_id}/marks", headers=headers, timeout=30
    )
    assert response.status_code == 200, response.text
    return {m["student_id"]: m for m in response.json()["marks"]}


async def test_teacher_enters_the_marks_of_a_class_on_a_phone(chromium, demo_server, tmp_path):  # noqa: F811
    from playwright.async_api import async_playwright, expect

    base, accounts = demo_server
    data_dir = Path(tmp_path)  # demo_server keeps its data in the test's tmp_path
    seeded = seed_class(base, accounts, term_id(data_dir))
    teacher = seeded["teacher"]
    amina, bilal, chaima = seeded["pupils"]
    grid_url = f"/t/{SCHOOL}/grades/assessments/{seeded['assessment_id']}"
    shot = tmp_path / "grades-grid-phone.png"

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(
                viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="fr-FR"
            )
            page = await context.new_page()
            page.set_default_timeout(15_000)
            try:
                await page.goto(f"{base}/t/{SCHOOL}/login?lang=fr")
                await page.locator("#email").fill(teacher["email"])
                await page.locator("#password").fill(teacher["password"])
                await page.locator("main form button[type=submit]").click()
                await expect(page.locator("form.logout")).to_be_visible()
                await page.goto(f"{base}/lang/fr?next=/t/{SCHOOL}/")

                # Menu → Grades → the class's PC sheet → the assessment.
                await page.locator(f'nav.menu a[href="/t/{SCHOOL}/grades/"]').tap()
                await expect(page.get_by_role("heading", level=1)).to_have_text("Notes")
                card = page.locator("li.sheet-card").filter(has_text=seeded["class_name"])
                await card.get_by_role("link", name="Ouvrir les notes").tap()
                await page.get_by_role("link", name="Devoir surveillé 1").first.tap()
                await page.wait_for_url(f"**{grid_url}")

                # Keyboard: type, Enter to the next pupil, type, Tab to the next one.
                first = page.locator(f"#score-{amina}")
                await expect(first).to_have_attribute("inputmode", "decimal")
                await first.fill("15,5")
                await first.press("Enter")
                await expect(page.locator(f"#score-{bilal}")).to_be_focused()
                await page.keyboard.type("12")
                await page.keyboard.press("Tab")
                await expect(page.locator(f"#score-{chaima}")).to_be_focused()

                # Thumb: one tap marks the third pupil absent.
                row = page.locator(f'li.pupil[data-student="{chaima}"]')
                await row.locator("label.choice-absent").tap()
                await expect(row.locator('input[type=radio][value="absent"]')).to_be_checked()
                await expect(row).to_have_attribute("data-status", "absent")

                # Touch targets are thumb-sized.
                box = await row.locator("label.choice-absent span").bounding_box()
                assert box and box["height"] >= 44 and box["width"] >= 44, box
                mark_box = await first.bounding_box()
                assert mark_box and mark_box["height"] >= 44, mark_box

                await page.locator("#save-marks").tap()
                await expect(page.locator("#grid-notice")).to_have_text("Les notes ont été enregistrées.")
                await expect(page.locator(f"#score-{amina}")).to_have_value("15,5")
                await expect(page.locator(f'li.pupil[data-student="{chaima}"]')).to_have_attribute(
                    "data-status", "absent"
                )
            except Exception as exc:
                await page.screenshot(path=str(shot), full_page=True)
                raise AssertionError(f"{exc}\nscreenshot: {shot}, page: {page.url}") from exc
            await page.screenshot(path=str(shot), full_page=True)
            width = await page.evaluate("document.documentElement.scrollWidth")
        finally:
            await browser.close()
    keep = Path("/tmp/madrasa-grades-grid-phone.png")
    shutil.copyfile(shot, keep)

    assert width <= 390, f"the grid is {width}px wide on a 390px phone; screenshot: {shot}"
    stored = stored_marks(base, seeded["as_teacher"], seeded["assessment_id"])
    assert stored[amina]["score"] == 15.5 and stored[amina]["status"] == "present"
    assert stored[bilal]["score"] == 12 and stored[bilal]["status"] == "present"
    assert stored[chaima]["score"] is None and stored[chaima]["status"] == "absent"
