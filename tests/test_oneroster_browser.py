"""The OneRoster page in a real browser: a region administrator checks a bundle with the keyboard only.

A demo server on SQLite (``madrasa demo --no-serve`` then ``madrasa serve``) and Debian's Chromium
driven headless by Playwright, as in tests/test_browser.py.
"""

from __future__ import annotations

from pathlib import Path

from tests.test_browser import CHROMIUM_ARGS, chromium, demo_server  # noqa: F401  (fixtures)
from tests.test_oneroster import minimal_files, zip_files

REGION = "casablanca-settat"


async def test_a_region_admin_checks_a_bundle_with_the_keyboard(chromium, demo_server, tmp_path: Path) -> None:  # noqa: F811
    from playwright.async_api import async_playwright, expect

    base, accounts = demo_server
    admin = next(a for a in accounts if a["role"] == "region_admin" and a["tenant"] == REGION)
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(zip_files(minimal_files()))
    shot = tmp_path / "oneroster-report.png"
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        try:
            page = await (await browser.new_context(viewport={"width": 390, "height": 844})).new_page()
            page.set_default_timeout(15_000)
            try:
                await page.goto(f"{base}/t/{REGION}/login")
                await page.locator("#email").fill(admin["email"])
                await page.locator("#password").fill(admin["password"])
                await page.locator("#password").press("Enter")
                await expect(page.locator("form.logout")).to_be_visible()
                await page.goto(f"{base}/t/{REGION}/admin/oneroster/?lang=fr")
                await expect(page.get_by_role("heading", level=1)).to_contain_text("Échange OneRoster")
                download = page.get_by_role("link", name="Télécharger le paquet")
                await expect(download).to_have_attribute("href", f"/t/{REGION}/admin/oneroster/export")
                # The labelled file field, then the keyboard: Tab to the check-only box (ticked), Tab, Enter.
                field = page.get_by_label("Paquet (.zip)")
                await field.set_input_files(str(bundle))
                await field.focus()
                await page.keyboard.press("Tab")
                checkbox = page.get_by_label("Vérifier seulement : rapport sans rien écrire")
                await expect(checkbox).to_be_focused()
                await expect(checkbox).to_be_checked()
                await page.keyboard.press("Tab")
                await expect(page.get_by_role("button", name="Envoyer")).to_be_focused()
                await page.keyboard.press("Enter")
                await expect(page.get_by_role("heading", level=1)).to_contain_text("Rapport d'import")
                await expect(page.get_by_role("status")).to_contain_text("Le paquet est correct")
                await expect(page.get_by_role("row", name="Élèves 2 0 0")).to_be_visible()
                # The same form in Arabic, right to left, still labelled.
                await page.goto(f"{base}/t/{REGION}/admin/oneroster/?lang=ar")
                await expect(page.locator("html")).to_have_attribute("dir", "rtl")
                await expect(page.get_by_label("الحزمة (.zip)")).to_be_visible()
                await page.screenshot(path=str(tmp_path / "oneroster-ar.png"), full_page=True)
                await page.goto(f"{base}/t/{REGION}/admin/oneroster/?lang=fr")
            except Exception as exc:
                await page.screenshot(path=str(shot), full_page=True)
                raise AssertionError(f"{exc}\nscreenshot: {shot}, page: {page.url}") from exc
            await page.screenshot(path=str(shot), full_page=True)
        finally:
            await browser.close()
    print(f"screenshot: {shot}")
