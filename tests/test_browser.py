"""The portal in a real browser: a demo parent logs in, reads Arabic right-to-left, sees the child's week.

Runs once (not per database backend): a real ``madrasa`` server on SQLite, started as a
subprocess like an operator would (``madrasa demo --no-serve`` then ``madrasa serve``), and
Debian's Chromium driven headless by Playwright on a phone-sized viewport. The data the test
needs is created through the server's HTTP API as the demo director, so the test does not depend
on what the demo happens to contain. Without ``/usr/bin/chromium`` the test skips locally and
fails with ``CI=true``.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port, missing_service

MADRASA = str(Path(sys.executable).parent / "madrasa")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCHOOL = "lycee-ibn-batouta"
CHILD_AR = ("ياسمين", "المتصفح")  # the pupil's first and last name in Arabic


def run(args: list[str], env: dict[str, str], timeout: int = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MADRASA, *args], capture_output=True, text=True, timeout=timeout, env={"PATH": "/usr/bin:/bin", **env}
    )


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium; skipped locally when missing, a failure with ``CI=true``."""
    if not CHROMIUM.exists():
        missing_service(f"Chromium not installed at {CHROMIUM} (apt-get install chromium)")
    return CHROMIUM


@contextmanager
def serve_demo(tmp_path: Path, extra_env: dict[str, str] | None = None) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """``(base URL, demo accounts)`` of a demo server on SQLite (``extra_env``: more settings), stopped afterwards."""
    env = {"MADRASA_DATA_DIR": str(tmp_path), "MADRASA_LOG_LEVEL": "WARNING", **(extra_env or {})}
    demo = run(["demo", "--no-serve"], env)
    assert demo.returncode == 0, demo.stderr
    accounts = json.loads((tmp_path / "demo-accounts.json").read_text())
    port = free_port()
    server = subprocess.Popen(
        [MADRASA, "serve", "--port", str(port)],
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
        yield base, accounts
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """``(base URL, demo accounts)`` of a demo server on SQLite, stopped afterwards."""
    with serve_demo(tmp_path) as served:
        yield served


def account(accounts: list[dict[str, str]], role: str) -> dict[str, str]:
    return next(a for a in accounts if a["role"] == role and (a["tenant"] == SCHOOL or role != "school_director"))


def seed_child(base: str, accounts: list[dict[str, str]]) -> dict[str, Any]:
    """As the demo director: a class, a pupil in it with the demo parent as guardian, a Monday MATH lesson."""
    director = account(accounts, "school_director")
    parent = account(accounts, "parent")
    teacher = account(accounts, "teacher")
    with httpx.Client(base_url=base, timeout=30) as http:

        def token(who: dict[str, str]) -> dict[str, str]:
            response = http.post(
                "/api/v1/auth/token", json={"email": who["email"], "password": who["password"], "tenant": SCHOOL}
            )
            assert response.status_code == 200, response.text
            return {"authorization": f"Bearer {response.json()['access_token']}"}

        as_director = token(director)

        def post(path: str, body: dict[str, Any]) -> int:
            response = http.post(f"/t/{SCHOOL}{path}", json=body, headers=as_director)
            assert response.status_code in (200, 201), f"{path}: {response.status_code} {response.text}"
            return int(response.json()["id"])

        me = http.get("/api/v1/me", headers=token(teacher))
        assert me.status_code == 200, me.text
        teacher_id = me.json()["id"]
        class_id = post("/api/v1/school/classes", {"name": "BROWSER-1", "level_code": "TC", "track_code": "TCS"})
        student_id = post(
            "/api/v1/school/students",
            {
                "national_code": f"B{secrets.randbelow(10**9):09d}",
                "first_name": "Yasmine",
                "last_name": "Browser",
                "first_name_ar": CHILD_AR[0],
                "last_name_ar": CHILD_AR[1],
                "class_id": class_id,
            },
        )
        # The demo parent is already a parent at the school (within its reach): linked at once, 201 with an id.
        post(f"/api/v1/school/students/{student_id}/guardians", {"email": parent["email"], "full_name": "Parent"})
        post("/api/v1/school/assignments", {"teacher_id": teacher_id, "class_id": class_id, "subject_code": "MATH"})
        post(
            "/api/v1/school/timetable",
            {
                "class_id": class_id,
                "subject_code": "MATH",
                "teacher_id": teacher_id,
                "weekday": 1,
                "starts_at": "08:00",
                "ends_at": "10:00",
            },
        )
    return {"parent": parent, "student_id": student_id}


async def test_parent_reads_the_childs_timetable_in_arabic(chromium, demo_server, tmp_path):
    from playwright.async_api import async_playwright, expect

    base, accounts = demo_server
    seeded = seed_child(base, accounts)
    parent = seeded["parent"]
    child_url = f"/t/{SCHOOL}/children/{seeded['student_id']}"
    shot = tmp_path / "parent-ar.png"

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
            page = await context.new_page()
            page.set_default_timeout(15_000)
            try:
                # Log in on the school's branded login page.
                await page.goto(f"{base}/t/{SCHOOL}/login")
                await page.locator("#email").fill(parent["email"])
                await page.locator("#password").fill(parent["password"])
                await page.locator("main form button[type=submit]").click()
                await expect(page.locator("form.logout")).to_be_visible()

                # Switch to Arabic with the language link in the header.
                await page.locator("nav.langs").get_by_role("link", name="العربية").click()
                await expect(page.locator("html")).to_have_attribute("dir", "rtl")
                await expect(page.locator("html")).to_have_attribute("lang", "ar")

                # To the children page through the menu, as a parent would.
                await page.locator(f'nav.menu a[href="/t/{SCHOOL}/children"]').click()
                await expect(page.get_by_role("heading", level=1)).to_have_text("أبنائي")

                # The child's page, by clicking the child's name.
                await page.get_by_role("link", name=f"{CHILD_AR[0]} {CHILD_AR[1]}").first.click()
                await page.wait_for_url(f"**{child_url}")
                await expect(page.locator("html")).to_have_attribute("dir", "rtl")
                lesson = page.locator("li.lesson").filter(has_text="الرياضيات").first
                await expect(lesson).to_be_visible()
                await expect(lesson.locator("time").first).to_have_text("08:00")
                await expect(page.get_by_role("heading", name="الاثنين")).to_be_visible()
            except Exception as exc:
                await page.screenshot(path=str(shot), full_page=True)
                raise AssertionError(f"{exc}\nscreenshot: {shot}, page: {page.url}") from exc
            await page.screenshot(path=str(shot), full_page=True)
            direction = await page.evaluate("getComputedStyle(document.body).direction")
            width = await page.evaluate("document.documentElement.scrollWidth")
            text = await page.locator("main").inner_text()
        finally:
            await browser.close()
    assert direction == "rtl", f"body direction {direction!r}; screenshot: {shot}"
    assert width <= 390, f"the page is {width}px wide on a 390px phone; screenshot: {shot}"
    assert "الرياضيات" in text and "08:00" in text, f"no Arabic MATH lesson at 08:00; screenshot: {shot}"
