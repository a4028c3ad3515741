"""The director's CSV import in a real browser on a phone: a bad file's report, then the fixed file imported.

Runs once (not per database backend), like ``tests/test_grades_browser.py``: a real ``madrasa`` demo
server on SQLite and Debian's Chromium driven headless by Playwright at 390×844. The class is created
through the HTTP API; the pupils through the page. Without ``/usr/bin/chromium`` the test skips locally
and fails with ``CI=true``.
"""

from __future__ import annotations

import secrets

import httpx

from tests.test_browser import CHROMIUM_ARGS, SCHOOL, account, chromium, demo_server  # noqa: F401 (fixtures)


def seed_class(base: str, director: dict[str, str]) -> str:
    """As the demo director: a class of this year; returns its name."""
    with httpx.Client(base_url=base, timeout=30) as http:
        response = http.post(
            "/api/v1/auth/token", json={"email": director["email"], "password": director["password"], "tenant": SCHOOL}
        )
        assert response.status_code == 200, response.text
        headers = {"authorization": f"Bearer {response.json()['access_token']}"}
        name = f"IMP-{secrets.randbelow(10**4):04d}"
        made = http.post(
            f"/t/{SCHOOL}/api/v1/school/classes",
            json={"name": name, "level_code": "TC", "track_code": "TCS"},
            headers=headers,
        )
        assert made.status_code == 201, made.text
    return name


def csv(*lines: str) -> dict[str, object]:
    text = "\r\n".join(["code_massar;nom;prenom;classe", *lines]) + "\r\n"
    return {"name": "eleves.csv", "mimeType": "text/csv", "buffer": text.encode()}


async def test_director_imports_pupils_through_the_page_on_a_phone(chromium, demo_server, tmp_path):  # noqa: F811
    from playwright.async_api import async_playwright, expect

    base, accounts = demo_server
    director = account(accounts, "school_director")
    class_name = seed_class(base, director)
    codes = [f"B{secrets.randbelow(10**9):09d}" for _ in range(2)]
    shot = tmp_path / "school-import-phone.png"

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
                await page.locator("#email").fill(director["email"])
                await page.locator("#password").fill(director["password"])
                await page.locator("main form button[type=submit]").click()
                await expect(page.locator("form.logout")).to_be_visible()
                await page.goto(f"{base}/lang/fr?next=/t/{SCHOOL}/")

                # Menu → Pupils → Import pupils.
                await page.locator(f'nav.menu a[href="/t/{SCHOOL}/school/pupils"]').tap()
                await page.locator("#import-link").tap()
                await expect(page.get_by_role("heading", level=1)).to_have_text("Importer des élèves")

                # A file with a bad class: the report names the cell, nothing is imported.
                await page.locator("#import-file").set_input_files(
                    csv(f"{codes[0]};Alaoui;Sara;{class_name}", f"{codes[1]};Bennani;Omar;NOPE-1")
                )
                await page.locator("#import-run").tap()
                report = page.locator("#import-report")
                await expect(report).to_have_attribute("data-ok", "no")
                await expect(page.locator('#import-errors tr[data-row="3"][data-column="class"]')).to_contain_text(
                    "aucune classe nommée"
                )
                wide = await page.evaluate("document.documentElement.scrollWidth")

                # Fixed: checked first, then imported.
                fixed = csv(f"{codes[0]};Alaoui;Sara;{class_name}", f"{codes[1]};Bennani;Omar;{class_name}")
                await page.locator("#import-file").set_input_files(fixed)
                await page.locator("#import-check").tap()
                await expect(page.locator("#import-report")).to_have_attribute("data-dry-run", "yes")
                await expect(page.locator("#import-report")).to_have_attribute("data-ok", "yes")
                await page.locator("#import-file").set_input_files(fixed)
                await page.locator("#import-run").tap()
                await expect(page.locator('#import-counts dd[data-count="created"]')).to_have_text("2")

                # The pupils are found by the search, and a pupil's page is one tap away.
                await page.goto(f"{base}/t/{SCHOOL}/school/pupils?q={codes[1]}")
                await page.locator("#pupil-results a").first.tap()
                await expect(page.locator("#pupil-class")).to_contain_text(class_name)
                widths = {"pupil": await page.evaluate("document.documentElement.scrollWidth")}

                # The staff page with its forms, the rooms and the supervisors fit the phone.
                for name in ("staff", "rooms", "supervisors"):
                    await page.goto(f"{base}/t/{SCHOOL}/school/{name}")
                    await expect(page.locator("main form.card").last).to_be_visible()
                    widths[name] = await page.evaluate("document.documentElement.scrollWidth")

                # The classes page and the class's week with its lesson form fit the phone too.
                await page.goto(f"{base}/t/{SCHOOL}/school/classes")
                widths["classes"] = await page.evaluate("document.documentElement.scrollWidth")
                await page.locator("#class-list a").filter(has_text=class_name).tap()
                await expect(page.locator("#slot-form")).to_be_visible()
            except Exception as exc:
                await page.screenshot(path=str(shot), full_page=True)
                raise AssertionError(f"{exc}\nscreenshot: {shot}, page: {page.url}") from exc
            await page.screenshot(path=str(shot), full_page=True)
            width = await page.evaluate("document.documentElement.scrollWidth")
        finally:
            await browser.close()
    assert wide <= 390, f"the import report is {wide}px wide on a 390px phone"
    widths["class week"] = width
    assert all(w <= 390 for w in widths.values()), f"wider than a 390px phone: {widths}; screenshot: {shot}"
