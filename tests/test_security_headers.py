"""Security headers (``core/headers.py``) on every portal page, the API and the OpenAPI viewer; the mark grid
still works in Chromium under the policy.

The portal's GET routes are enumerated from the application (as ``tests/test_isolation.py`` does) and
requested by a logged-in director of one school, path parameters filled from ``world.objects``. Every
response — a page, a refusal page, a file — must carry the headers; every HTML body must hold no inline
``<script>`` (the OpenAPI viewer's carry the response's nonce) and no ``on…=`` event-handler attribute.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from core.headers import HSTS
from tests.conftest import new_client
from tests.test_browser import CHROMIUM_ARGS, SCHOOL, account, chromium, demo_server  # noqa: F401 (fixtures)
from tests.test_grades_browser import seed_class, term_id

HOME = "lycee-ibn-batouta"
DIRECTOR = f"director.{HOME}@test.ma"

#: Path parameters no seeded object fills: the route is still requested with this value (a refusal page, whose
#: headers are checked the same way), and listed here so it is clear which pages were not seen with data.
UNFILLED = {
    "token": "not-a-token",  # /calendar/{token}, /password-reset/{token}, /onboarding/invitations/{token}
    "justification_id": 1,  # /attendance/justifications/{id}/document: no justification in the world
    "batch_id": "00000000-0000-4000-8000-000000000000",  # /admin/onboarding/batches/…: no onboarding batch
    "job_id": "00000000-0000-4000-8000-000000000001",  # /my-data/{job_id}/download: no such export
    "path": "nothing-here",  # /schema/{path}: the viewer's own 404
    "notification_id": 1,  # /notifications/{id}: not the director's (a 404), or theirs (a redirect)
}
STATIC_FILES = {
    "core": "htmx.min.js",
    "attendance": "attendance.css",
    "example": "example.css",
    "swagger": "swagger-ui.css",
}

_SCRIPT = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)
_TAG = re.compile(r"<[a-zA-Z][^>]*>")
_HANDLER_ATTR = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)
_NONCE = re.compile(r"script-src[^;]*'nonce-([^']+)'")


def portal_get_routes(world: Any) -> list[str]:
    """Every GET route outside ``/api/``."""
    paths = []
    for route in world.litestar.routes:
        if route.path.startswith("/api/"):
            continue
        for handler in getattr(route, "route_handlers", []):
            if "GET" in getattr(handler, "http_methods", ()):
                paths.append(route.path)
    return sorted(set(paths))


def fill(path: str, values: dict[str, Any]) -> str:
    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "file_path":
            prefix = path.split("/")[2]
            return STATIC_FILES.get(prefix) or pytest.fail(f"no sample static file for {path}")
        if name not in values:
            pytest.fail(f"security headers: no value for path parameter {name!r} in {path}")
        return str(values[name])

    return re.sub(r"\{(\w+)(?::[^}]+)?\}", sub, path)


def values(world: Any) -> dict[str, Any]:
    objects = world.objects[HOME]
    return {
        **UNFILLED,
        **{k: objects[k] for k in ("student_id", "class_id", "sheet_id", "assessment_id", "slot_id", "bulletin_id")},
        "on_date": "2026-10-05",  # a Monday: the seeded lesson's weekday
        "slug": HOME,
        "code": "fr",
        "programme": "nouveau-lycee",
        "term_id": objects["term_id"],
        "locale": "fr",
    }


def assert_headers(response: httpx.Response, what: str) -> None:
    headers = response.headers
    csp = headers.get("content-security-policy", "")
    assert csp, f"{what}: no Content-Security-Policy"
    assert headers.get("x-content-type-options") == "nosniff", what
    assert "frame-ancestors 'none'" in csp, what
    if what.startswith("/api/"):
        assert "default-src 'none'" in csp, what
        return
    for directive in ("object-src 'none'", "base-uri 'self'"):
        assert directive in csp, f"{what}: {directive} missing from {csp}"
    script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src, f"{what}: {script_src}"
    assert headers.get("referrer-policy") in ("strict-origin-when-cross-origin", "no-referrer"), what


def assert_no_inline_script(response: httpx.Response, what: str) -> None:
    if "text/html" not in response.headers.get("content-type", ""):
        return
    found = _NONCE.search(response.headers["content-security-policy"])
    nonce = found.group(1) if found else None
    for attrs in _SCRIPT.findall(response.text):
        if "src=" in attrs:
            continue
        assert nonce and f'nonce="{nonce}"' in attrs, f"{what}: inline <script{attrs}> without the nonce"
    for tag in _TAG.findall(response.text):
        assert not _HANDLER_ATTR.search(tag), f"{what}: event-handler attribute in {tag[:200]}"


async def test_every_portal_page_carries_the_headers(world):
    routes = portal_get_routes(world)
    assert len(routes) > 40, routes  # the enumeration found the portals
    filled = values(world)
    pages = []
    for route in routes:
        path = fill(route, filled)
        response = await world.api("GET", path, as_=DIRECTOR, tenant=HOME)
        assert response.status_code < 500, f"{route}: {response.status_code} {response.text[:300]}"
        assert_headers(response, route)
        assert_no_inline_script(response, route)
        assert response.headers["strict-transport-security"] == HSTS  # the world's client speaks https
        if response.status_code == 200 and "text/html" in response.headers.get("content-type", ""):
            pages.append(route)
    world.client.cookies.delete("madrasa_lang")  # /lang/fr set it on the shared client; leave it as found
    # the pages a director sees with data, not only refusals
    for route in ("/", "/timetable/classes/{class_id:int}", "/grades/sheets/{sheet_id:int}", "/schema/swagger"):
        assert route in pages, (route, pages)


async def test_reset_page_keeps_no_referrer(world):
    response = await world.client.get(f"/t/{HOME}/password-reset/not-a-token-at-all", headers={"accept": "text/html"})
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers.get_list("referrer-policy") == ["no-referrer"]


async def test_the_mark_grid_has_no_inline_script(world):
    objects = world.objects[HOME]
    response = await world.api(
        "GET", f"/grades/assessments/{objects['assessment_id']}", as_=f"teacher.{HOME}@test.ma", tenant=HOME
    )
    assert response.status_code == 200, response.text
    assert '<script src="/static/core/marks-grid.js"></script>' in response.text
    assert "data-absent='[" in response.text
    assert_no_inline_script(response, "grid")
    script = await world.client.get("/static/core/marks-grid.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]


async def test_swagger_scripts_carry_the_nonce(world):
    first = await world.client.get("/schema/swagger")
    second = await world.client.get("/schema/swagger")
    nonces = [_NONCE.search(r.headers["content-security-policy"]).group(1) for r in (first, second)]  # type: ignore[union-attr]
    assert nonces[0] != nonces[1]  # one per response
    assert f'<script nonce="{nonces[0]}"' in first.text
    assert_no_inline_script(first, "/schema/swagger")


async def test_api_and_unmatched_responses_carry_the_headers(world):
    api = await world.api("GET", "/api/v1/me", as_=DIRECTOR)
    assert api.status_code == 200
    assert_headers(api, "/api/v1/me")
    refused = await world.client.get("/api/v1/me")
    assert refused.status_code == 401
    assert_headers(refused, "/api/v1/me (401)")
    missing = await world.client.get("/no/such/page", headers={"accept": "text/html"})
    assert missing.status_code == 404
    assert_headers(missing, "/no/such/page")


async def test_hsts_only_over_https(world):
    plain = httpx.AsyncClient(transport=httpx.ASGITransport(app=world.app), base_url="http://testserver")
    try:
        response = await plain.get(f"/t/{HOME}/login", headers={"accept": "text/html"})
    finally:
        await plain.aclose()
    assert response.status_code == 200
    assert "strict-transport-security" not in response.headers
    assert response.headers["x-content-type-options"] == "nosniff"
    secure = new_client(world.app)
    try:
        response = await secure.get(f"/t/{HOME}/login", headers={"accept": "text/html"})
    finally:
        await secure.aclose()
    assert response.headers["strict-transport-security"] == HSTS


async def test_mark_grid_works_under_the_policy_in_chromium(chromium, demo_server, tmp_path):  # noqa: F811
    """The grid's script (now a static file) runs: Enter moves on, a typed ``A`` marks absent; no CSP violation."""
    from pathlib import Path

    from playwright.async_api import async_playwright, expect

    base, accounts = demo_server
    seeded = seed_class(base, accounts, term_id(Path(tmp_path)))
    teacher = account(accounts, "teacher")
    amina, bilal, _ = seeded["pupils"]
    messages: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            page.set_default_timeout(15_000)
            page.on("console", lambda msg: messages.append(f"{msg.type}: {msg.text}"))
            page.on("pageerror", lambda exc: messages.append(f"pageerror: {exc}"))
            await page.goto(f"{base}/t/{SCHOOL}/login?lang=fr")
            await page.locator("#email").fill(teacher["email"])
            await page.locator("#password").fill(teacher["password"])
            await page.locator("main form button[type=submit]").click()
            await expect(page.locator("form.logout")).to_be_visible()
            response = await page.goto(f"{base}/t/{SCHOOL}/grades/assessments/{seeded['assessment_id']}")
            assert (
                response is not None
                and "script-src 'self'" in (await response.all_headers())["content-security-policy"]
            )
            first = page.locator(f"#score-{amina}")
            await first.fill("14")
            await first.press("Enter")
            await expect(page.locator(f"#score-{bilal}")).to_be_focused()
            await page.keyboard.type("A")
            row = page.locator(f'li.pupil[data-student="{bilal}"]')
            await expect(row).to_have_attribute("data-status", "absent")
            await expect(row.locator('input[type=radio][value="absent"]')).to_be_checked()
        finally:
            await browser.close()
    violations = [m for m in messages if "Content Security Policy" in m or "pageerror" in m]
    assert not violations, violations


async def test_swagger_loads_nothing_from_another_site(world):
    """The API reader's page names only this site's files, and they are served (it works with no internet)."""
    page = await world.client.get("/schema/swagger")
    assert page.status_code == 200
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.text) + re.findall(r"url: ?['\"]([^'\"]+)", page.text)
    assert urls
    assert not [u for u in urls if u.startswith(("http:", "https:", "//"))], urls
    for url in (u for u in urls if u.startswith("/static/")):
        asset = await world.client.get(url)
        assert asset.status_code == 200 and len(asset.content) > 100, url


async def test_swagger_renders_the_operations_in_chromium_offline(chromium, demo_server):  # noqa: F811
    """Swagger UI draws the API's operations from local files; nothing is asked of another host."""
    from playwright.async_api import async_playwright, expect

    base, _ = demo_server
    foreign: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            page.set_default_timeout(20_000)
            page.on("request", lambda r: foreign.append(r.url) if not r.url.startswith(base) else None)
            await page.goto(f"{base}/schema/swagger")
            await expect(page.locator(".opblock").first).to_be_visible()
        finally:
            await browser.close()
    assert not foreign, foreign
