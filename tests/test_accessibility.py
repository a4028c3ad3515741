"""axe-core over every portal page a demo role reaches, in French and in Arabic, in Chromium.

Each demo role logs in through the form; its pages are found by following links from the landing page
(the same walk as ``tests/test_menu_crawl.py``, over HTTP with the browser's session), one page per
address shape (ids and queries aside). axe-core (``tests/vendor/axe-core``, vendored with its licence) then
checks each page in both languages against the rules of the tags below; a serious or critical violation
fails the test, with the page, the rule and the first offending elements.
"""

from __future__ import annotations

import re
from collections import deque
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.test_browser import CHROMIUM_ARGS, chromium, demo_server  # noqa: F401 (fixtures)
from tests.test_menu_crawl import Links, same_site

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
#: The rules axe runs: WCAG 2.0 and 2.1, levels A and AA, plus axe's best practices for landmarks and headings.
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
#: Impacts that fail the test.
FAILING = {"serious", "critical"}
LANGUAGES = ("fr", "ar")
ROLES = (
    "platform_admin",
    "region_admin",
    "programme_manager",
    "school_director",
    "teacher",
    "parent",
    "student",
)
MAX_PAGES = 60


def shape(path: str) -> str:
    """An address with its ids, the slugs of console nodes and its query left out: one check per kind of page."""
    bare = re.sub(r"/\d+", "/{id}", urlsplit(path).path)
    return re.sub(r"/(tenants|programmes)/[^/]+", r"/\1/{slug}", bare)


def html_pages(base: str, cookie: str) -> list[str]:
    """The HTML pages reachable from the landing page with this session, one per address shape."""
    found: dict[str, str] = {}
    seen = {"/", "/admin/"}
    queue = deque(["/", "/admin/"])
    with httpx.Client(base_url=base, cookies={"madrasa_session": cookie}, timeout=30) as http:
        while queue and len(found) < MAX_PAGES:
            url = queue.popleft()
            response = http.get(url, headers={"accept": "text/html"})
            if response.is_redirect:
                target = same_site("http://testserver" + url, response.headers.get("location", ""))
                if target and target not in seen:
                    seen.add(target)
                    queue.append(target)
                continue
            if response.status_code != 200 or not response.headers.get("content-type", "").startswith("text/html"):
                continue
            found.setdefault(shape(url), url)
            parser = Links()
            parser.feed(response.text)
            for href in parser.hrefs:
                target = same_site("http://testserver" + url, href)
                if target and target not in seen and "/lang/" not in target and shape(target) not in found:
                    seen.add(target)
                    queue.append(target)
    return sorted(found.values())


async def test_no_serious_accessibility_violation_on_any_page(chromium, demo_server):  # noqa: F811
    from playwright.async_api import async_playwright

    base, accounts = demo_server
    source = AXE.read_text()
    problems: list[str] = []
    checked = 0
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        try:
            for role in ROLES:
                who = next(a for a in accounts if a["role"] == role)
                context = await browser.new_context(bypass_csp=True)  # axe is injected as a script
                page = await context.new_page()
                page.set_default_timeout(20_000)
                await page.goto(f"{base}/t/{who['tenant']}/login" if role != "programme_manager" else f"{base}/login")
                await page.locator("#email").fill(who["email"])
                await page.locator("#password").fill(who["password"])
                await page.locator("main form button[type=submit]").click()
                await page.wait_for_load_state()
                cookie = next(c["value"] for c in await context.cookies() if c["name"] == "madrasa_session")
                for url in html_pages(base, cookie):
                    for lang in LANGUAGES:
                        await context.add_cookies([{"name": "madrasa_lang", "value": lang, "url": base}])
                        await page.goto(base + url)
                        await page.add_script_tag(content=source)
                        result: dict[str, Any] = await page.evaluate(
                            "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}})", TAGS
                        )
                        checked += 1
                        for v in result["violations"]:
                            if v["impact"] in FAILING:
                                targets = [", ".join(n["target"]) for n in v["nodes"][:3]]
                                problems.append(f"{role} {lang} {url}: {v['id']} ({v['impact']}) {targets}")
                await context.close()
        finally:
            await browser.close()
    assert checked > 40, checked
    print(f"axe: {checked} page checks")
    assert not problems, "\n".join(problems)
