"""The one in-process cache with a time to live: tenants, grants, module settings, sessions, token claims.

Each entry lives ``seconds`` after it is stored (or the ``ttl`` given to :meth:`TTLCache.put`);
a stale entry reads as missing. The cache is bounded: when it holds ``max_entries`` it is emptied
before the next store (a crude bound that never lets a flood of keys grow memory without limit).
Writers of the underlying data call :meth:`TTLCache.pop` or :meth:`TTLCache.clear`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

__all__ = ["MISSING", "TTLCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


#: What :meth:`TTLCache.peek` returns for an absent or stale key (``None`` is a value like any other).
MISSING: Any = _Missing()


class TTLCache(Generic[K, V]):
    """A dict whose entries expire; ``None`` can be cached (a known absence)."""

    __slots__ = ("_data", "max_entries", "seconds")

    def __init__(self, seconds: float, max_entries: int = 100_000) -> None:
        self.seconds = seconds
        self.max_entries = max_entries
        self._data: dict[K, tuple[float, V]] = {}

    def peek(self, key: K) -> V:
        """The fresh value under ``key``, else :data:`MISSING` (a stale entry is dropped)."""
        hit = self._data.get(key)
        if hit is None:
            return MISSING
        if hit[0] > time.monotonic():
            return hit[1]
        self._data.pop(key, None)
        return MISSING

    def put(self, key: K, value: V, ttl: float | None = None) -> V:
        """Store ``value`` for ``ttl`` seconds (default: the cache's); returns it."""
        if len(self._data) >= self.max_entries:
            self._data.clear()
        self._data[key] = (time.monotonic() + (self.seconds if ttl is None else ttl), value)
        return value

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """The fresh value under ``key``, else what ``load()`` returns (then stored)."""
        value = self.peek(key)
        if value is MISSING:
            value = self.put(key, await load())
        return value

    def pop(self, key: K) -> None:
        """Forget one key."""
        self._data.pop(key, None)

    def clear(self) -> None:
        """Forget everything."""
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)
