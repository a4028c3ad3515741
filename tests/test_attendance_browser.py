"""Justifying an absence in a real browser on a phone: the parent sends a certificate, the director accepts it.

Runs once (not per database backend), like ``tests/test_grades_browser.py``: a real server on SQLite
(``madrasa demo --no-serve``, so the module's demo data loads too, then the app under uvicorn as
``madrasa serve`` runs it, with the school's clock pinned to :data:`DAY`) and Debian's Chromium driven
headless by Playwright at 390×844 with touch. The data is created through the server's HTTP API: a class
with one pupil whose guardian is the demo parent (enrolled since the start of the year), a lesson of the
demo teacher on that day, and the teacher's register marking the pupil absent. What the pages did is read
back through the API.
"""

from __future__ import annotations

import json
import secrets
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.test_browser import CHROMIUM_ARGS, SCHOOL, account, chromium, run  # noqa: F401 (fixtures)

#: The day the server's clock shows: a Monday of the first term of the reference year, not a holiday.
DAY = date(2026, 11, 16)

#: ``madrasa serve`` with ``services.clock`` pinned to the day given as first argument.
SERVE = """
import sys
from datetime import date
import uvicorn
from core.app import build_services, create_app
from core.clock import FixedClock
from core.config import load_settings
settings = load_settings()
services = build_services(settings)
services.clock = FixedClock(date.fromisoformat(sys.argv[1]))
uvicorn.run(create_app(settings, services=services), host="127.0.0.1", port=int(sys.argv[2]), log_config=None)
"""


@pytest.fixture
def pinned_server(tmp_path: Path) -> Iterator[tuple[str, list[dict[str, str]], Path]]:
    """``(base URL, demo accounts, SQLite file)`` of a demo server whose clock shows :data:`DAY`."""
    env = {"MADRASA_DATA_DIR": str(tmp_path), "MADRASA_LOG_LEVEL": "WARNING"}
    demo = run(["demo", "--no-serve"], env)
    assert demo.returncode == 0, demo.stderr
    accounts = json.loads((tmp_path / "demo-accounts.json").read_text())
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVE, DAY.isoformat(), str(port)],
        env={"PATH": "/usr/bin:/bin", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(150):
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None:
                raise AssertionError(f"server exited: {server.stderr.read() if server.stderr else ''}")
            time.sleep(0.1)
        else:
            raise AssertionError("server did not become ready")
        yield base, accounts, tmp_path / "madrasa.sqlite3"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


PDF = b"%PDF-1.4\n% medical certificate\n"


def seed(base: str, accounts: list[dict[str, str]], database: Path) -> dict[str, Any]:
    """As the director: a class, a pupil with the demo parent (enrolled since the start of the year), a lesson
    of the demo teacher on the server's day; the teacher marks the pupil absent."""
    director, teacher, parent = (account(accounts, r) for r in ("school_director", "teacher", "parent"))
    today = DAY
    with httpx.Client(base_url=base, timeout=30) as http:

        def token(who: dict[str, str]) -> dict[str, str]:
            response = http.post(
                "/api/v1/auth/token", json={"email": who["email"], "password": who["password"], "tenant": SCHOOL}
            )
            assert response.status_code == 200, response.text
            return {"authorization": f"Bearer {response.json()['access_token']}"}

        as_director, as_teacher, as_parent = token(director), token(teacher), token(parent)

        def post(path: str, body: dict[str, Any]) -> int:
            response = http.post(f"/t/{SCHOOL}{path}", json=body, headers=as_director)
            assert response.status_code in (200, 201), f"{path}: {response.status_code} {response.text}"
            return int(response.json()["id"])

        teacher_id = http.get("/api/v1/me", headers=as_teacher).json()["id"]
        class_id = post(
            "/api/v1/school/classes",
            {"name": f"ABS-{secrets.randbelow(10**4):04d}", "level_code": "TC", "track_code": "TCS"},
        )
        pupil = post(
            "/api/v1/school/students",
            {
                "national_code": f"J{secrets.randbelow(10**9):09d}",
                "first_name": "Nour",
                "last_name": "Justifie",
                "class_id": class_id,
            },
        )
        # The demo parent is already a parent at the school (within its reach): linked at once, 201 with an id.
        post(f"/api/v1/school/students/{pupil}/guardians", {"email": parent["email"], "full_name": "Parent"})
        # Enrolment starts on the real date; the register's day is earlier in the year.
        with sqlite3.connect(database) as connection:
            connection.execute(
                "UPDATE enrolment SET starts_on = (SELECT starts_on FROM school_year "
                "WHERE school_year.id = enrolment.school_year_id) WHERE student_id = ?",
                (pupil,),
            )
        post("/api/v1/school/assignments", {"teacher_id": teacher_id, "class_id": class_id, "subject_code": "MATH"})
        slot = post(
            "/api/v1/school/timetable",
            {
                "class_id": class_id,
                "subject_code": "MATH",
                "teacher_id": teacher_id,
                "weekday": today.isoweekday(),
                "starts_at": "20:00",
                "ends_at": "21:00",
            },
        )
        response = http.put(
            f"/t/{SCHOOL}/api/v1/attendance/sessions/{slot}/{today.isoformat()}",
            json={"entries": [{"student_id": pupil, "status": "absent"}]},
            headers=as_teacher,
        )
        assert response.status_code == 200, response.text
    return {"pupil": pupil, "parent": parent, "director": director, "as_parent": as_parent}


def absences(base: str, headers: dict[str, str], pupil: int) -> list[dict[str, Any]]:
    response = httpx.get(f"{base}/t/{SCHOOL}/api/v1/attendance/pupils/{pupil}/absences", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["absences"]


async def login(page: Any, base: str, who: dict[str, str]) -> None:
    from playwright.async_api import expect

    await page.goto(f"{base}/t/{SCHOOL}/login?lang=fr")
    await page.locator("#email").fill(who["email"])
    await page.locator("#password").fill(who["password"])
    await page.locator("main form button[type=submit]").click()
    await expect(page.locator("form.logout")).to_be_visible()
    await page.goto(f"{base}/lang/fr?next=/t/{SCHOOL}/")


async def test_parent_justifies_with_a_certificate_and_the_director_accepts(chromium, pinned_server, tmp_path):  # noqa: F811
    from playwright.async_api import async_playwright, expect

    base, accounts, database = pinned_server
    seeded = seed(base, accounts, database)
    pupil = seeded["pupil"]
    [mark] = absences(base, seeded["as_parent"], pupil)
    assert mark["justification"] is None
    shot = tmp_path / "attendance-phone.png"

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        try:
            phone = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "locale": "fr-FR"}
            parent_context = await browser.new_context(**phone)
            page = await parent_context.new_page()
            page.set_default_timeout(15_000)
            try:
                await login(page, base, seeded["parent"])
                await page.locator(f'nav.menu a[href="/t/{SCHOOL}/attendance/"]').tap()
                await expect(page.get_by_role("heading", level=1)).to_have_text("Absences")
                await page.locator(f'li.child[data-student="{pupil}"] a').tap()
                await page.wait_for_url(f"**/attendance/pupils/{pupil}")

                # Keyboard: tick the absence with the space bar; then the labelled fields.
                box = page.get_by_label(
                    f"Justifier l'absence du {mark['on_date'][8:10]}/{mark['on_date'][5:7]}/{mark['on_date'][:4]}",
                    exact=False,
                )
                await box.focus()
                await page.keyboard.press("Space")
                await expect(box).to_be_checked()
                await page.get_by_label("Motif").select_option("illness")
                await page.get_by_label("Remarque (facultatif)").fill("Grippe, certificat joint")
                await page.get_by_label("Document (facultatif)", exact=False).set_input_files(
                    {"name": "certificat.pdf", "mimeType": "application/pdf", "buffer": PDF}
                )
                await page.locator("#send-justification").tap()
                await expect(page.locator("#pupil-notice")).to_have_text(
                    "Votre justificatif a été envoyé à l'établissement."
                )
                await expect(page.locator(f'tr[data-mark="{mark["id"]}"]')).to_have_attribute("data-state", "pending")
                width = await page.evaluate("document.documentElement.scrollWidth")
                assert width <= 390, f"the page is {width}px wide on a 390px phone"
            except Exception as exc:
                await page.screenshot(path=str(shot), full_page=True)
                raise AssertionError(f"{exc}\nscreenshot: {shot}, page: {page.url}") from exc

            director_context = await browser.new_context(**phone)
            page = await director_context.new_page()
            page.set_default_timeout(15_000)
            try:
                await login(page, base, seeded["director"])
                await page.goto(f"{base}/t/{SCHOOL}/attendance/review")
                card = page.locator("li.card").filter(has_text="Grippe, certificat joint")
                await expect(card).to_have_count(1)
                async with page.expect_popup() as popup:
                    await card.get_by_role("link", name="Voir le document").tap()
                document = await popup.value
                await document.close()
                await card.get_by_role("button", name="Accepter").tap()
                await expect(page.locator("#review-notice")).to_have_text("Le justificatif a été accepté.")
                await expect(page.locator("li.card").filter(has_text="Grippe, certificat joint")).to_have_count(0)
            except Exception as exc:
                await page.screenshot(path=str(shot), full_page=True)
                raise AssertionError(f"{exc}\nscreenshot: {shot}, page: {page.url}") from exc
            await page.screenshot(path=str(shot), full_page=True)
        finally:
            await browser.close()
    shutil.copyfile(shot, Path("/tmp/madrasa-attendance-phone.png"))

    [after] = absences(base, seeded["as_parent"], pupil)
    assert after["justification"] == "accepted" and after["justified"] in (True, 1)
