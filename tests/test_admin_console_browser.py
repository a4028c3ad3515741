"""The programme manager's matrix in a real browser: switching homework on for a programme reaches its schools only.

Runs once (not per database backend), like ``tests/test_browser.py``: a real ``madrasa`` server on
SQLite (``madrasa demo --no-serve`` then ``madrasa serve``) and Debian's Chromium driven headless by
Playwright. Homework is off by default, so it is off everywhere; set-up adds, through the HTTP API,
a teacher to a school outside the programme. Then the demo programme manager logs in, opens the
console with the keyboard, and switches homework on for the programme with a reason; a teacher of a
member school now sees Homework in the menu, a teacher of a non-member school does not.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.test_browser import CHROMIUM_ARGS, SCHOOL, account, chromium, demo_server  # noqa: F401 (fixtures)

PROGRAMME = "nouveau-lycee"
OUTSIDE = "college-al-khawarizmi"  # same region as SCHOOL, not in the programme
OUTSIDE_TEACHER = {"email": "teacher.outside@browser.test", "password": "outside-teacher-pass-42"}


def homework_state(http: httpx.Client, headers: dict[str, str], school: str) -> tuple[bool, str]:
    """``(enabled, source)`` of the homework module at a school, read through the API."""
    response = http.get(f"/api/v1/tenants/{school}/modules", headers=headers)
    assert response.status_code == 200, response.text
    found = next(m for m in response.json() if m["module"] == "homework")
    return found["enabled"], found["source"]


def prepare(base: str, accounts: list[dict[str, str]]) -> dict[str, str]:
    """Homework off everywhere (its default), and a teacher in a non-member school."""
    admin = account(accounts, "platform_admin")
    with httpx.Client(base_url=base, timeout=30) as http:
        token = http.post("/api/v1/auth/token", json={"email": admin["email"], "password": admin["password"]})
        assert token.status_code == 200, token.text
        headers = {"authorization": f"Bearer {token.json()['access_token']}"}
        for school in (SCHOOL, OUTSIDE):
            assert homework_state(http, headers, school) == (False, "default")
        created = http.post(
            "/api/v1/people",
            headers=headers,
            json={
                "email": OUTSIDE_TEACHER["email"],
                "full_name": "Outside Teacher",
                "role": "teacher",
                "tenant": OUTSIDE,
                "password": OUTSIDE_TEACHER["password"],
            },
        )
        assert created.status_code == 201, created.text
    return headers


async def login(page: Any, base: str, school: str, who: dict[str, str]) -> None:
    """Log in on a school's portal in English."""
    from playwright.async_api import expect

    await page.goto(f"{base}/lang/en?next=/t/{school}/login")
    await page.locator("#email").fill(who["email"])
    await page.locator("#password").fill(who["password"])
    await page.locator("main form button[type=submit]").click()
    await expect(page.locator("form.logout")).to_be_visible()


async def test_programme_manager_switches_homework_on_for_the_programme(chromium, demo_server, tmp_path):  # noqa: F811
    from playwright.async_api import async_playwright, expect

    base, accounts = demo_server
    admin_headers = prepare(base, accounts)
    manager = account(accounts, "programme_manager")
    teacher = account(accounts, "teacher")

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        try:
            # Before: neither teacher has Homework in the menu.
            for school, who in ((SCHOOL, teacher), (OUTSIDE, OUTSIDE_TEACHER)):
                context = await browser.new_context(locale="en-GB")
                page = await context.new_page()
                page.set_default_timeout(15_000)
                await login(page, base, school, who)
                await expect(page.locator("nav.menu")).to_be_visible()
                await expect(page.locator("nav.menu").get_by_role("link", name="Homework")).to_have_count(0)
                await context.close()

            context = await browser.new_context(locale="en-GB", viewport={"width": 1100, "height": 900})
            page = await context.new_page()
            page.set_default_timeout(15_000)
            try:
                await login(page, base, SCHOOL, manager)
                # Home menu → Administration → the programme, all by keyboard.
                admin_link = page.locator("nav.menu").get_by_role("link", name="Administration")
                await admin_link.focus()
                await page.keyboard.press("Enter")
                await expect(page.get_by_role("heading", level=1)).to_have_text("Administration console")
                await page.locator(f'li[data-programme="{PROGRAMME}"] a').focus()
                await page.keyboard.press("Enter")
                matrix = page.locator("table[data-matrix]")
                cell = matrix.locator(f'tr[data-school="{SCHOOL}"] td[data-module="homework"]')
                await expect(cell).to_have_attribute("data-state", "off")
                await expect(cell).to_have_attribute("data-source", "default")

                # Submitting without a reason is refused with the error tied to the field.
                await page.get_by_label("Module", exact=True).select_option(label="Homework")
                await page.get_by_label("On", exact=True).check()
                await page.get_by_role("button", name="Save the switch").click()
                reason = page.get_by_label("Reason")
                await expect(reason).to_have_attribute("aria-invalid", "true")
                await expect(page.locator("#switch-reason-error")).to_be_visible()
                await expect(reason).to_have_attribute("aria-describedby", "switch-reason-error")

                await page.get_by_label("Module", exact=True).select_option(label="Homework")
                await page.get_by_label("On", exact=True).check()
                await reason.fill("Pilot: homework for the new high-school model")
                await reason.press("Tab")
                await expect(page.get_by_role("button", name="Save the switch")).to_be_focused()
                await page.keyboard.press("Enter")
                await expect(page.get_by_role("status")).to_contain_text("The module switch was saved.")
                await expect(cell).to_have_attribute("data-state", "on")
                await expect(cell).to_have_attribute("data-source", "programme")
                await page.screenshot(path=str(tmp_path / "programme-matrix.png"), full_page=True)

                await page.get_by_role("link", name="History").click()
                await expect(page.locator('tr[data-module="homework"]').first).to_contain_text(
                    "Pilot: homework for the new high-school model"
                )
            finally:
                await context.close()

            # After: the member school's teacher sees Homework, the other school's teacher does not.
            for school, who, expected in ((SCHOOL, teacher, 1), (OUTSIDE, OUTSIDE_TEACHER, 0)):
                context = await browser.new_context(locale="en-GB")
                page = await context.new_page()
                page.set_default_timeout(15_000)
                await login(page, base, school, who)
                await expect(page.locator("nav.menu")).to_be_visible()
                await expect(page.locator("nav.menu").get_by_role("link", name="Homework")).to_have_count(expected)
                await context.close()
        finally:
            await browser.close()

    with httpx.Client(base_url=base, timeout=30) as http:
        assert homework_state(http, admin_headers, SCHOOL) == (True, "programme")
        assert homework_state(http, admin_headers, OUTSIDE) == (False, "default")


async def test_region_admin_previews_and_saves_the_branding(chromium, demo_server):  # noqa: F811
    """The live preview (HTMX) shows proposed colours before saving; an unreadable one is flagged there."""
    from playwright.async_api import async_playwright, expect

    base, accounts = demo_server
    region_admin = next(a for a in accounts if a["email"] == "region.casa@madrasa.demo")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(locale="en-GB")
            page = await context.new_page()
            page.set_default_timeout(15_000)
            await login(page, base, "casablanca-settat", region_admin)
            await page.goto(f"{base}/admin/tenants/{SCHOOL}/branding?lang=en")
            preview = page.locator("#preview [data-preview]")
            primary = page.get_by_label("Main colour")

            await primary.fill("#ffff00")
            await expect(page.locator('#preview [data-preview-error="primary_color"]')).to_be_visible()
            await expect(preview).not_to_have_attribute("data-primary", "#ffff00")

            await primary.fill("#7c2d12")
            await page.get_by_label("Display name").fill("Lycée Ibn Batouta · pilote")
            await expect(preview).to_have_attribute("data-primary", "#7c2d12")
            await expect(page.locator("#preview [data-preview-name]")).to_have_text("Lycée Ibn Batouta · pilote")
            await expect(page.locator("#preview [data-preview-error]")).to_have_count(0)

            await page.get_by_role("button", name="Save the branding").click()
            await expect(page.get_by_role("status")).to_contain_text("The branding was saved.")
            await page.goto(f"{base}/t/{SCHOOL}/login?lang=en")
            await expect(page.locator("header.bar .brand span")).to_have_text("Lycée Ibn Batouta · pilote")
            colour = await page.evaluate(
                "getComputedStyle(document.documentElement).getPropertyValue('--brand').trim()"
            )
            assert colour == "#7c2d12"
        finally:
            await browser.close()
