"""A director closes a term and downloads a class's report cards in a real browser, on a phone.

Runs once (not per database backend), like ``tests/test_grades_browser.py``: a demo server on
SQLite (its in-process job queue renders the report cards) and Debian's Chromium driven headless
by Playwright at 390×844. The class, its marks and their publication are set up through the HTTP
API; then the demo director closes term 1 from the grades pages, generates the class's report
cards, watches the progress bar until they are ready and downloads them with the portal session:
the class's zip and one pupil's PDF. The pupil search, the staff page and the attendance chart
are then opened from the same phone and must not scroll sideways.
"""

from __future__ import annotations

import asyncio
import io
import zipfile
from pathlib import Path

import httpx

from tests.test_browser import CHROMIUM_ARGS, SCHOOL, account, chromium, demo_server  # noqa: F401 (fixtures)
from tests.test_grades_browser import seed_class, term_id


def publish_marks(base: str, accounts: list[dict[str, str]], seeded: dict, term: int) -> None:
    """The teacher enters a mark for each pupil and submits; the director validates and publishes."""
    director = account(accounts, "school_director")
    with httpx.Client(base_url=f"{base}/t/{SCHOOL}", timeout=30) as http:
        token = http.post(
            f"{base}/api/v1/auth/token",
            json={"email": director["email"], "password": director["password"], "tenant": SCHOOL},
        )
        assert token.status_code == 200, token.text
        as_director = {"authorization": f"Bearer {token.json()['access_token']}"}
        as_teacher = seeded["as_teacher"]
        path = f"/api/v1/grades/assessments/{seeded['assessment_id']}/marks"
        grid = http.get(path, headers=as_teacher)
        assert grid.status_code == 200, grid.text
        marks = [{"student_id": p, "score": s} for p, s in zip(seeded["pupils"], (15, 11.5, 8), strict=True)]
        saved = http.put(path, json={"marks": marks}, headers={**as_teacher, "if-match": grid.headers["etag"]})
        assert saved.status_code == 200, saved.text
        classes = http.get("/api/v1/school/classes", headers=as_director)
        assert classes.status_code == 200, classes.text
        class_id = next(c["id"] for c in classes.json() if c["name"] == seeded["class_name"])
        sheets = http.get(f"/api/v1/grades/sheets?class_id={class_id}&term_id={term}", headers=as_teacher)
        assert sheets.status_code == 200, sheets.text
        sheet = sheets.json()[0]["id"]
        for action, who in (("submit", as_teacher), ("validate", as_director), ("publish", as_director)):
            response = http.post(f"/api/v1/grades/sheets/{sheet}/{action}", headers=who)
            assert response.status_code == 200, response.text


async def test_director_closes_the_term_and_downloads_the_report_cards(chromium, demo_server, tmp_path):  # noqa: F811
    from playwright.async_api import async_playwright, expect

    base, accounts = demo_server
    term = term_id(Path(tmp_path))
    seeded = seed_class(base, accounts, term)
    publish_marks(base, accounts, seeded, term)
    director = account(accounts, "school_director")

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        context = await browser.new_context(
            viewport={"width": 390, "height": 844},
            is_mobile=True,
            has_touch=True,
            locale="fr-FR",
            accept_downloads=True,
        )
        page = await context.new_page()
        page.set_default_timeout(20_000)
        try:
            await page.goto(f"{base}/t/{SCHOOL}/login?lang=fr")
            await page.locator("#email").fill(director["email"])
            await page.locator("#password").fill(director["password"])
            await page.locator("main form button[type=submit]").click()
            await expect(page.locator("form.logout")).to_be_visible()

            await page.goto(f"{base}/t/{SCHOOL}/grades/?term_id={term}")
            await page.locator("#term-close-link").click()
            await expect(page.get_by_role("heading", level=1)).to_have_text("Clôture du trimestre et bulletins")
            await page.locator("#close-confirm").check()
            await page.locator("#close-term").click()
            await expect(page.get_by_role("status")).to_contain_text("Le trimestre a été clôturé")
            await expect(page.locator("section[data-closed]")).to_have_attribute("data-closed", "yes")
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"the close page scrolls sideways at 390 px ({width})"

            row = page.locator("tr", has_text=seeded["class_name"])
            await row.get_by_role("button", name="Produire les bulletins").click()
            await expect(page.get_by_role("heading", level=1)).to_have_text("Production des bulletins")
            ready = page.locator('[data-status="done"]')
            await expect(ready).to_contain_text("(élèves : 3)", timeout=120_000)  # HTMX polled the progress

            async with page.expect_download() as download_info:
                await page.locator("#download-zip").click()
            download = await download_info.value
            data = await asyncio.to_thread(Path(await download.path()).read_bytes)
            names = zipfile.ZipFile(io.BytesIO(data)).namelist()
            assert len(names) == 6 and all(n.endswith(".pdf") for n in names)  # three pupils, two languages

            await page.get_by_role("link", name="Bulletins par élève").click()
            first = page.locator("li[data-pupil]").first
            async with page.expect_download() as download_info:
                await first.get_by_role("link", name="Français (PDF)").click()
            pdf = await asyncio.to_thread(Path(await (await download_info.value).path()).read_bytes)
            assert pdf.startswith(b"%PDF")
            await page.screenshot(path=str(tmp_path / "report-cards.png"), full_page=True)

            # The director's other pages fit a phone too: the menu's pupil search, the staff, the chart.
            await page.goto(f"{base}/t/{SCHOOL}/?lang=fr")
            await page.locator("nav.menu").get_by_role("link", name="Élèves").click()
            await page.locator("#pupil-q").fill("alaoui AMINA")
            await page.locator("#pupil-q").press("Enter")
            await expect(page.locator("#pupil-results tbody tr")).to_have_count(1)
            await expect(page.locator("#pupil-results")).to_contain_text(seeded["class_name"])
            for path, ready in (
                (None, "#pupil-results"),
                ("/school/staff", "#staff"),
                ("/attendance/stats", "#stats-chart svg"),
            ):
                if path:
                    await page.goto(f"{base}/t/{SCHOOL}{path}?lang=ar")
                await expect(page.locator(ready)).to_be_visible()
                width = await page.evaluate("document.documentElement.scrollWidth")
                assert width <= 390, f"{path or 'the search'} scrolls sideways at 390 px ({width})"
                await page.screenshot(path=str(tmp_path / f"{ready.strip('#').split()[0]}.png"), full_page=True)
        finally:
            await context.close()
            await browser.close()
