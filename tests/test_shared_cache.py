"""The shared cache (``core/shared_cache.py``): in-process and real Redis, keys under a prefix, bad input refused."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator

import pytest

from core.config import ConfigError, load_settings
from core.shared_cache import MemorySharedCache, NoSharedCache, RedisSharedCache, SharedCache, make_shared_cache

REDIS_URL = os.environ.get("MADRASA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[SharedCache]:
    if request.param == "memory":
        yield MemorySharedCache()
        return
    prefix = f"madrasa-test:{secrets.token_hex(6)}:"
    redis_cache = RedisSharedCache(REDIS_URL, prefix)
    try:
        yield redis_cache
    finally:
        from redis.asyncio import Redis

        client = Redis.from_url(REDIS_URL)
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
        await redis_cache.close()


async def test_set_get_delete_round_trip(cache: SharedCache) -> None:
    assert await cache.get("grades:a") is None
    await cache.set("grades:a", b"\x00payload", 60)
    assert await cache.get("grades:a") == b"\x00payload"
    await cache.set("grades:a", b"second", 60)
    assert await cache.get("grades:a") == b"second"
    await cache.delete("grades:a")
    assert await cache.get("grades:a") is None
    await cache.delete("grades:a")  # absent: no error


@pytest.mark.parametrize("key, ttl", [("", 10), ("k", 0), ("k", -1)])
async def test_bad_input_is_refused(cache: SharedCache, key: str, ttl: float) -> None:
    with pytest.raises(ValueError):
        await cache.set(key, b"x", ttl)


async def test_redis_entries_live_under_the_prefix_and_expire() -> None:
    from redis.asyncio import Redis

    prefix = f"madrasa-test:{secrets.token_hex(6)}:"
    first, second = RedisSharedCache(REDIS_URL, prefix), RedisSharedCache(REDIS_URL, prefix + "other:")
    client = Redis.from_url(REDIS_URL)
    try:
        await first.set("k", b"v", 30)
        assert await second.get("k") is None  # another prefix: another deployment's keys
        assert await client.get(prefix + "k") == b"v"
        assert 0 < await client.pttl(prefix + "k") <= 30_000  # Redis expires it
        other_process = RedisSharedCache(REDIS_URL, prefix)  # a second web process sees the same entry
        assert await other_process.get("k") == b"v"
        await other_process.close()
    finally:
        await client.delete(prefix + "k")
        await client.aclose()
        await first.close()
        await second.close()


async def test_none_keeps_nothing() -> None:
    cache = NoSharedCache()
    await cache.set("k", b"v", 60)
    assert await cache.get("k") is None
    with pytest.raises(ValueError):
        await cache.set("k", b"v", 0)


async def test_an_unreachable_redis_is_a_miss_not_an_error() -> None:
    cache = RedisSharedCache("redis://127.0.0.1:1/0", "madrasa-test:")
    try:
        await cache.set("k", b"v", 10)  # dropped (logged)
        assert await cache.get("k") is None
        await cache.delete("k")
    finally:
        await cache.close()


def test_the_backend_follows_the_setting(tmp_path) -> None:
    assert isinstance(make_shared_cache(""), MemorySharedCache)
    assert isinstance(make_shared_cache("none"), NoSharedCache)
    redis_cache = make_shared_cache(REDIS_URL, "p:")
    assert isinstance(redis_cache, RedisSharedCache) and redis_cache.prefix == "p:"
    with pytest.raises(ValueError, match="redis://"):
        make_shared_cache("memcached://127.0.0.1")
    with pytest.raises(ConfigError, match="MADRASA_CACHE_URL"):
        load_settings({"MADRASA_DATA_DIR": str(tmp_path), "MADRASA_CACHE_URL": "memcached://127.0.0.1"})
    settings = load_settings({"MADRASA_DATA_DIR": str(tmp_path), "MADRASA_CACHE_URL": REDIS_URL})
    assert settings.cache_url == REDIS_URL and settings.cache_prefix == "madrasa:cache:"
