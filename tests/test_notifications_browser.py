"""The bell in a real browser: a demo parent sees the unread count, marks all read and sees it drop, and sees it
rise when a notification arrives (the bell refreshes when the window regains focus).

A real ``madrasa`` server on SQLite with the example plugin allowed (its kind ``example.note``), as in
``tests/test_browser.py``; notifications are sent by another process through ``notify()`` on the same database,
as a module's job would, then delivered by a run of the delivery job there."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_browser import CHROMIUM_ARGS, SCHOOL, account, chromium, serve_demo  # noqa: F401 (fixture)

SEND = textwrap.dedent(
    """
    import asyncio, sys
    from core.app import build_services
    from core.config import load_settings
    from core.notifications.delivery import deliver
    from core.notifications.service import notify
    from core.scope import Scope

    async def main(email, count):
        services = build_services(load_settings())
        await services.db.start()
        try:
            person = await services.db.fetchval("SELECT id FROM person WHERE email = {}", email)
            tenant = await services.tenants.by_slug(sys.argv[3])
            for n in range(int(count)):
                async with services.db.transaction():  # inside a transaction: sent by the next run
                    await notify(services, kind="example.note", recipients=[person], tenant=tenant,
                                 text="Your notifications of the day ({count})", params={"count": n + 1},
                                 link="/children")
            await deliver(services, Scope.everything())
        finally:
            await services.db.stop()

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """The demo server of ``tests/test_browser.py`` with the example plugin allowed."""
    with serve_demo(tmp_path, {"MADRASA_ALLOWED_PLUGINS": "example"}) as served:
        yield served


def send(data_dir: Path, email: str, count: int) -> None:
    """Notify a person ``count`` times from another process, as a module's job would."""
    env = {"PATH": "/usr/bin:/bin", "MADRASA_DATA_DIR": str(data_dir), "MADRASA_LOG_LEVEL": "WARNING"}
    env["MADRASA_ALLOWED_PLUGINS"] = "example"
    done = subprocess.run(
        [sys.executable, "-c", SEND, email, str(count), SCHOOL],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.returncode == 0, done.stderr


async def test_the_bell_count_follows_the_inbox(chromium, demo_server, tmp_path):  # noqa: F811
    from playwright.async_api import async_playwright, expect

    base, accounts = demo_server
    parent = account(accounts, "parent")
    send(tmp_path, parent["email"], 2)
    shot = tmp_path / "bell.png"
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
            page = await context.new_page()
            page.set_default_timeout(15_000)
            try:
                await page.goto(f"{base}/t/{SCHOOL}/login")
                await page.locator("#email").fill(parent["email"])
                await page.locator("#password").fill(parent["password"])
                await page.locator("main form button[type=submit]").click()
                count = page.locator("#bell .bell-count")
                await expect(count).to_have_text("2")

                # The list through the menu; mark all read: the bell drops to 0 without reloading the page.
                await page.locator(f'nav.menu a[href="/t/{SCHOOL}/notifications"]').click()
                await expect(page.locator("li.unread")).to_have_count(2)
                await expect(page.locator("li.unread").first).to_contain_text("Vos notifications du jour (2)")
                await page.get_by_role("button", name="Tout marquer comme lu").click()
                await expect(page.locator("li.unread")).to_have_count(0)
                await expect(count).to_have_text("0")

                # A new notification: the bell rises when the window regains focus.
                send(tmp_path, parent["email"], 1)
                await page.evaluate("window.dispatchEvent(new Event('focus'))")
                await expect(count).to_have_text("1")

                # Opening it follows its link and marks it read.
                await page.reload()
                await page.locator("li.unread a").click()
                await page.wait_for_url(f"**/t/{SCHOOL}/children")
                await expect(count).to_have_text("0")
            except Exception as exc:
                await page.screenshot(path=str(shot), full_page=True)
                raise AssertionError(f"{exc}\nscreenshot: {shot}, page: {page.url}") from exc
        finally:
            await browser.close()
