"""Every link a demo account can follow in the portal leads somewhere: no 4xx, no 5xx.

For each demo role a crawler logs in, starts at the platform's landing page (which lists the person's
portals) and follows every same-site link of every page it reaches, breadth first, to a bounded depth and
number of pages. Only GET is used: forms are not submitted. Links that answer an error are reported with
the page that showed them.
"""

from __future__ import annotations

import re
from collections import deque
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from core.demo import ACCOUNTS
from core.middleware import SESSION_COOKIE
from tests.conftest import World, new_client

MAX_DEPTH = 3
TITLE = re.compile(r"<title>(.*?)</title>", re.S)
#: Roles whose console also opens at ``/admin/``, outside any tenant.
ADMIN_ROLES = {"platform_admin", "region_admin", "province_admin", "programme_manager"}
MAX_PAGES = 250
#: Links not followed: leaving the session, the API's own documentation, and static files.
SKIP_PREFIXES = ("/logout", "/schema", "/static/")
SKIP_SUFFIXES = ("/logout",)


class Links(HTMLParser):
    """The ``href`` of every ``<a>`` of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def same_site(base: str, href: str) -> str | None:
    """The path and query of a link on this site worth following, or ``None``."""
    if href.startswith(("mailto:", "tel:", "javascript:", "#")):
        return None
    url = urlsplit(urljoin(base, href))
    if url.netloc and url.netloc != "testserver":
        return None
    path = url.path
    bare = path.split("/", 3)[3] if path.startswith("/t/") and path.count("/") >= 3 else path.lstrip("/")
    if ("/" + bare).startswith(SKIP_PREFIXES) or path.endswith(SKIP_SUFFIXES):
        return None
    return path + (f"?{url.query}" if url.query else "")


async def crawl(world: World, email: str) -> tuple[dict[str, tuple[int, str]], int]:
    """Follow links from the landing page as ``email``; returns ``{url: (status, linked from)}`` of errors."""
    cookie, _ = await world.web_session(email)
    headers = {"cookie": f"{SESSION_COOKIE}={cookie}", "accept": "text/html"}
    starts = ["/", "/admin/"] if any(a[0] == email and a[1] in ADMIN_ROLES for a in ACCOUNTS) else ["/"]
    seen: set[str] = set(starts)
    queue: deque[tuple[str, int, str]] = deque((start, 0, "-") for start in starts)
    failures: dict[str, tuple[int, str]] = {}
    # A client of its own: following the language links sets a cookie that must not reach other tests.
    async with new_client(world.app) as client:
        return await _walk(client, headers, seen, queue, failures)


async def _walk(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    seen: set[str],
    queue: deque[tuple[str, int, str]],
    failures: dict[str, tuple[int, str]],
) -> tuple[dict[str, tuple[int, str]], int]:
    pages = 0
    while queue and pages < MAX_PAGES:
        url, depth, source = queue.popleft()
        response = await client.get(url, headers=headers)
        pages += 1
        if response.status_code in (301, 302, 303, 307, 308):
            target = same_site("http://testserver" + url, response.headers.get("location", ""))
            if target and target not in seen:
                seen.add(target)
                queue.append((target, depth, url))
            continue
        if response.status_code >= 400:
            failures[url] = (response.status_code, source)
            continue
        if not response.headers.get("content-type", "").startswith("text/html"):
            continue
        title = TITLE.search(response.text)
        if title is None or "<" in title.group(1):  # a page's markup pasted into its title block
            failures[url] = (response.status_code, "malformed <title>")
        if depth >= MAX_DEPTH:
            continue
        parser = Links()
        parser.feed(response.text)
        for href in parser.hrefs:
            target = same_site("http://testserver" + url, href)
            if target and target not in seen:
                seen.add(target)
                queue.append((target, depth + 1, url))
    return failures, pages


@pytest.mark.parametrize("email", [a[0] for a in ACCOUNTS])
async def test_every_link_a_demo_role_can_follow_leads_somewhere(world: World, email: str) -> None:
    failures, pages = await crawl(world, email)
    assert pages > 3, f"{email} reached only {pages} pages"
    print(f"{email}: {pages} pages")
    assert not failures, "\n".join(f"{status} {url} (linked from {src})" for url, (status, src) in failures.items())
