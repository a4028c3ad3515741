"""Pagination of long portal lists: one helper for every page (missing marks, at-risk lists, reports…).

``paginate(rows, page, base_url, params)`` cuts a list into pages of :data:`PAGE_SIZE` and gives the
template what the shared ``_pager.html`` macro shows: "Page x of y" (translated), previous / next
and a window of page links that keep the page's other query parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

T = TypeVar("T")
PAGE_SIZE = 50
WINDOW = 2  # page links shown on each side of the current one


@dataclass(frozen=True)
class PageLink:
    """One link of the pager (``number`` None for a gap, shown as …)."""

    number: int | None
    href: str
    current: bool = False


@dataclass(frozen=True)
class Paged(Generic[T]):
    """One page of a list and how to reach the others."""

    items: list[T]
    number: int
    pages: int
    total: int
    size: int
    first_index: int  # 1-based position of the first item shown (0 when empty)
    links: list[PageLink] = field(default_factory=list)
    previous: str | None = None
    next: str | None = None

    @property
    def last_index(self) -> int:
        """1-based position of the last item shown."""
        return self.first_index + len(self.items) - 1 if self.items else 0


def page_number(raw: Any) -> int:
    """A page number from a query value: 1 for anything missing, invalid or below 1."""
    try:
        number = int(raw)
    except (TypeError, ValueError):
        return 1
    return max(1, number)


def _href(base_url: str, params: Mapping[str, Any], number: int, name: str) -> str:
    query = {k: v for k, v in params.items() if v not in (None, "") and k != name}
    if number > 1:
        query[name] = number
    encoded = urlencode(query)
    return f"{base_url}?{encoded}" if encoded else base_url


def paginate(
    rows: Sequence[T],
    page: Any,
    base_url: str,
    params: Mapping[str, Any] | None = None,
    *,
    size: int = PAGE_SIZE,
    name: str = "page",
) -> Paged[T]:
    """Page ``page`` (clamped to the last one) of ``rows``; links go to ``base_url`` with ``params`` kept."""
    params = params or {}
    total = len(rows)
    pages = max(1, -(-total // size))
    number = min(page_number(page), pages)
    start = (number - 1) * size
    items = list(rows[start : start + size])
    links: list[PageLink] = []
    if pages > 1:
        shown = sorted({1, pages, *range(max(1, number - WINDOW), min(pages, number + WINDOW) + 1)})
        previous_shown = 0
        for n in shown:
            if n - previous_shown > 1:
                links.append(PageLink(None, ""))
            links.append(PageLink(n, _href(base_url, params, n, name), n == number))
            previous_shown = n
    return Paged(
        items=items,
        number=number,
        pages=pages,
        total=total,
        size=size,
        first_index=start + 1 if items else 0,
        links=links,
        previous=_href(base_url, params, number - 1, name) if number > 1 else None,
        next=_href(base_url, params, number + 1, name) if number < pages else None,
    )
