"""The console's per-school module switch in a real browser: a region administrator switches attendance off
for one school, with a reason, on a phone; the neighbouring school keeps it.

Runs once (not per database backend), like ``tests/test_admin_console_browser.py``: a demo server on
SQLite and Debian's Chromium driven headless by Playwright at 390×844.
"""

from __future__ import annotations

import httpx

from tests.test_admin_console_browser import login
from tests.test_browser import CHROMIUM_ARGS, SCHOOL, chromium, demo_server  # noqa: F401 (fixtures)

NEIGHBOUR = "college-al-khawarizmi"  # same region, another province
PROVINCE = "casablanca-anfa"  # SCHOOL's province
REASON = "Registers kept on paper this term"


def attendance_state(base: str, who: dict[str, str], school: str) -> tuple[bool, str]:
    """``(enabled, source)`` of attendance at a school, read through the API."""
    with httpx.Client(base_url=base, timeout=30) as http:
        token = http.post("/api/v1/auth/token", json={"email": who["email"], "password": who["password"]})
        assert token.status_code == 200, token.text
        headers = {"authorization": f"Bearer {token.json()['access_token']}"}
        response = http.get(f"/api/v1/tenants/{school}/modules", headers=headers)
    assert response.status_code == 200, response.text
    found = next(m for m in response.json() if m["module"] == "attendance")
    return found["enabled"], found["source"]


async def test_region_admin_switches_attendance_off_for_one_school(chromium, demo_server, tmp_path):  # noqa: F811
    from playwright.async_api import async_playwright, expect

    base, accounts = demo_server
    admin = next(a for a in accounts if a["email"] == "region.casa@madrasa.demo")
    assert attendance_state(base, admin, SCHOOL) == (True, "default")

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        context = await browser.new_context(
            locale="en-GB", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
        )
        page = await context.new_page()
        page.set_default_timeout(15_000)
        try:
            await login(page, base, SCHOOL, admin)
            await page.locator("nav.menu").get_by_role("link", name="Administration").click()
            await expect(page.get_by_role("heading", level=1)).to_have_text("Administration console")
            await page.goto(f"{base}/admin/tenants/{PROVINCE}")
            cell = page.locator(f'table[data-matrix] tr[data-school="{SCHOOL}"] td[data-module="attendance"]')
            await expect(cell).to_have_attribute("data-state", "on")

            form = page.locator("#node-switch-form")
            # each radio sits beside its own label, and none is chosen for the admin
            radios = form.locator("input[type=radio]")
            assert await radios.count() == 3
            for i in range(3):
                radio = radios.nth(i)
                assert not await radio.is_checked()
                box = await radio.bounding_box()
                text = await radio.locator("xpath=..").bounding_box()
                assert box and text and box["width"] < 40, box
                assert abs((box["y"] + box["height"] / 2) - (text["y"] + text["height"] / 2)) < 12, (box, text)
            await expect(page.locator(".scroll-hint").first).to_be_visible()  # the wide matrix says it scrolls
            await form.get_by_label("School", exact=True).select_option(SCHOOL)
            await form.get_by_label("Module", exact=True).select_option(label="Attendance")
            await form.get_by_label("Off", exact=True).check()
            await form.get_by_role("button", name="Save the switch").click()  # no reason yet
            await expect(page.locator("#node-switch-reason-error")).to_be_visible()
            reason = page.locator("#node-switch-reason")
            await expect(reason).to_have_attribute("aria-invalid", "true")

            await form.get_by_label("School", exact=True).select_option(SCHOOL)
            await form.get_by_label("Module", exact=True).select_option(label="Attendance")
            await form.get_by_label("Off", exact=True).check()
            await reason.fill(REASON)
            await form.get_by_role("button", name="Save the switch").click()
            await expect(page.get_by_role("status")).to_contain_text("The module switch was saved.")
            await expect(cell).to_have_attribute("data-state", "off")
            await expect(cell).to_have_attribute("data-source", "school")
            await expect(cell).to_contain_text(REASON)
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"the page scrolls sideways at 390 px ({width})"
            await page.screenshot(path=str(tmp_path / "node-switch.png"), full_page=True)
        finally:
            await context.close()
            await browser.close()

    assert attendance_state(base, admin, SCHOOL) == (False, "school")
    assert attendance_state(base, admin, NEIGHBOUR) == (True, "default")
