"""A region admin onboards schools from a file in a real browser: upload, preview, commit, the schools exist.

Runs once (not per database backend), like ``tests/test_grades_browser.py``: a real ``madrasa``
server on SQLite started as a subprocess, and Debian's Chromium driven headless by Playwright.
The admin works with the keyboard (the kind of file is chosen, the commit button pressed with
Enter); what the commit wrote is read back through the JSON API.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.test_browser import CHROMIUM_ARGS, account, chromium, demo_server  # noqa: F401 (fixtures)

REGION = "casablanca-settat"
SCHOOLS = Path(__file__).parent / "fixtures" / "onboarding" / "schools.csv"
NEW_SLUGS = ["lycee-al-farabi-14190k", "college-ibn-khaldoun-51190l", "ecole-an-nour-14191m"]


def tenant(base: str, admin: dict[str, str], slug: str) -> httpx.Response:
    """A tenant node read through the JSON API as the region admin."""
    with httpx.Client(base_url=base, timeout=30) as http:
        login = {"email": admin["email"], "password": admin["password"]}
        token = http.post("/api/v1/auth/token", json=login).json()["access_token"]
        return http.get(f"/api/v1/tenants/{slug}", headers={"authorization": f"Bearer {token}"})


async def test_region_admin_onboards_schools_from_a_file(chromium, demo_server, tmp_path):  # noqa: F811
    from playwright.async_api import async_playwright, expect

    base, accounts = demo_server
    admin = account(accounts, "region_admin")
    assert admin["tenant"] == REGION
    shot = tmp_path / "onboarding.png"
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 1024, "height": 900}, locale="fr-FR")
            page = await context.new_page()
            page.set_default_timeout(15_000)
            try:
                await page.goto(f"{base}/t/{REGION}/login?lang=fr")
                await page.locator("#email").fill(admin["email"])
                await page.locator("#password").fill(admin["password"])
                await page.locator("main form button[type=submit]").click()
                await expect(page.locator("form.logout")).to_be_visible()
                await page.goto(f"{base}/lang/fr?next=/t/{REGION}/admin/onboarding/")
                await expect(page.get_by_role("heading", level=1)).to_contain_text("Intégration")

                # The form is labelled: reach the controls by their labels, choose with the keyboard.
                kind = page.get_by_label("Le fichier contient")
                await kind.focus()
                await kind.select_option("schools")
                await page.get_by_label("Fichier", exact=True).set_input_files(str(SCHOOLS))
                await page.get_by_role("button", name="Aperçu").click()

                # The preview: every row valid and new, nothing written yet.
                await expect(page.get_by_role("heading", level=1)).to_contain_text("Aperçu de l'import")
                await expect(page.locator("#batch-errors")).to_have_text("0")
                rows = page.locator("#batch-sample tbody tr")
                await expect(rows).to_have_count(3)
                await expect(rows.nth(0)).to_contain_text("Lycée Al Farabi")
                await expect(rows.nth(0)).to_contain_text("nouveau")
                before = tenant(base, admin, NEW_SLUGS[0])
                assert before.status_code == 404  # the preview wrote nothing

                commit = page.locator("#commit-batch")
                await commit.focus()
                await page.keyboard.press("Enter")
                await expect(page.locator("#batch-done")).to_have_text("L'import a été enregistré.")
                await expect(page.locator("#batch-status")).to_have_text("enregistré")
            except Exception as exc:
                await page.screenshot(path=str(shot), full_page=True)
                raise AssertionError(f"{exc}\nscreenshot: {shot}, page: {page.url}") from exc
        finally:
            await browser.close()

    for slug in NEW_SLUGS:
        response = tenant(base, admin, slug)
        assert response.status_code == 200, f"{slug}: {response.text}"
        assert response.json()["kind"] == "school"
    farabi = tenant(base, admin, NEW_SLUGS[0]).json()
    anfa = tenant(base, admin, "casablanca-anfa").json()
    assert farabi["parent_id"] == anfa["id"] and farabi["name_ar"] == "ثانوية الفارابي"
