"""A cache of bytes shared by the processes of a deployment: Redis when configured, else this process's memory.

``MADRASA_CACHE_URL`` chooses the backend: empty (the default) keeps entries in the process
(:class:`MemorySharedCache`, over :class:`core.cache.TTLCache`); ``redis://…`` (or ``rediss://``,
``unix://``) shares them between every web process through Redis (:class:`RedisSharedCache`),
each key under ``MADRASA_CACHE_PREFIX``; ``none`` keeps nothing (:class:`NoSharedCache`: every
read misses; for measuring what the cache saves).

The cache is never the source of truth: a caller builds its keys from a version it reads from the
database (so a new version is a new key and the old entries are simply never read again) and
gives every entry a time to live. A Redis that does not answer reads as a miss and a store that
fails is dropped (logged): the caller then reads the database, as it would without a cache.
"""

from __future__ import annotations

import logging
from typing import Any

from core.cache import MISSING, TTLCache

__all__ = ["MemorySharedCache", "NoSharedCache", "RedisSharedCache", "SharedCache", "make_shared_cache"]

log = logging.getLogger("madrasa.cache")

#: Seconds a Redis command may take before the cache gives up (a miss, or a dropped store).
REDIS_TIMEOUT = 0.5


class SharedCache:
    """Bytes under string keys, each with a time to live; what :attr:`Services.shared_cache` holds."""

    #: ``memory``, ``redis`` or ``none``.
    backend = "abstract"

    async def get(self, key: str) -> bytes | None:
        """The bytes stored under ``key``, or ``None`` (absent, expired or unreachable)."""
        raise NotImplementedError

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (``ttl`` > 0)."""
        raise NotImplementedError

    async def delete(self, key: str) -> None:
        """Forget ``key`` (no error when absent)."""
        raise NotImplementedError

    async def close(self) -> None:
        """Release connections (the app's shutdown calls it)."""


def _check(key: str, ttl: float | None = None) -> None:
    if not isinstance(key, str) or not key:
        raise ValueError("a shared cache key is a non-empty string")
    if ttl is not None and not ttl > 0:
        raise ValueError(f"a shared cache entry needs a positive time to live, got {ttl!r}")


class NoSharedCache(SharedCache):
    """Keeps nothing: every read misses (``MADRASA_CACHE_URL=none``)."""

    backend = "none"

    async def get(self, key: str) -> bytes | None:
        _check(key)
        return None

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        _check(key, ttl)

    async def delete(self, key: str) -> None:
        _check(key)


class MemorySharedCache(SharedCache):
    """Entries in this process only (the embedded default; each web process has its own)."""

    backend = "memory"

    def __init__(self, max_entries: int = 20_000) -> None:
        self._data: TTLCache[str, bytes] = TTLCache(60, max_entries)

    async def get(self, key: str) -> bytes | None:
        _check(key)
        value = self._data.peek(key)
        return None if value is MISSING else value

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        _check(key, ttl)
        self._data.put(key, bytes(value), ttl)

    async def delete(self, key: str) -> None:
        _check(key)
        self._data.pop(key)


class RedisSharedCache(SharedCache):
    """Entries in Redis, under ``prefix`` (``redis.asyncio``; one connection pool per process)."""

    backend = "redis"

    def __init__(self, url: str, prefix: str = "madrasa:cache:") -> None:
        from redis.asyncio import Redis

        self.prefix = prefix
        self._redis: Any = Redis.from_url(url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT)

    async def get(self, key: str) -> bytes | None:
        _check(key)
        try:
            value = await self._redis.get(self.prefix + key)
        except Exception as exc:  # redis.exceptions.RedisError, OSError, timeouts: a miss
            log.warning("shared cache read failed", extra={"error": repr(exc)})
            return None
        return None if value is None else bytes(value)

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        _check(key, ttl)
        try:
            await self._redis.set(self.prefix + key, bytes(value), px=max(1, int(ttl * 1000)))
        except Exception as exc:
            log.warning("shared cache store failed", extra={"error": repr(exc)})

    async def delete(self, key: str) -> None:
        _check(key)
        try:
            await self._redis.delete(self.prefix + key)
        except Exception as exc:
            log.warning("shared cache delete failed", extra={"error": repr(exc)})

    async def close(self) -> None:
        await self._redis.aclose()


def make_shared_cache(url: str, prefix: str = "madrasa:cache:") -> SharedCache:
    """The backend ``MADRASA_CACHE_URL`` names: in-process when empty, none, or Redis; ``ValueError`` otherwise."""
    if not url:
        return MemorySharedCache()
    if url == "none":
        return NoSharedCache()
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisSharedCache(url, prefix)
    raise ValueError(f"expected empty (in-process), none or redis://…, got {url!r}")
