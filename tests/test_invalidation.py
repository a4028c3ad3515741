"""The invalidation bus in one process: after-commit delivery, the transports' rules, bad input, outages.

Two processes on one database are in ``tests/test_cross_process.py``; here two buses of one process share
a PostgreSQL database, which is enough to see what ``NOTIFY`` carries and when.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.cache import MISSING
from core.config import ConfigError, load_settings
from core.db import Database
from core.invalidation import GRANTS, InvalidatedCache, InvalidationBus, backend_for, on_invalidate
from core.invalidation_transport import redis_channel
from tests.conftest import PgServer, free_port, make_settings


async def _until(condition: object, what: str, seconds: float = 10) -> None:
    """Wait for ``condition()`` (a set-up step, not a timed assertion)."""
    for _ in range(int(seconds / 0.02)):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(make_settings("sqlite", tmp_path, None))
    await db.start()
    try:
        yield db
    finally:
        await db.stop()


async def test_a_message_is_delivered_here_at_once_and_again_after_commit_never_after_a_rollback(
    sqlite_db: Database,
) -> None:
    bus = InvalidationBus(sqlite_db, sqlite_db.settings)
    assert bus.backend == "local"
    heard: list[object] = []
    bus.subscribe(GRANTS, heard.append)
    async with sqlite_db.transaction():
        bus.publish(GRANTS, 7)
        assert heard == [7]  # this process forgets at once
    assert heard == [7, 7]  # and again once committed (a reader may have reloaded the old row meanwhile)
    with pytest.raises(RuntimeError):
        async with sqlite_db.transaction():
            bus.publish(GRANTS, 8)
            raise RuntimeError("rolled back")
    assert heard == [7, 7, 8]
    bus.publish(GRANTS)  # outside a transaction: at once, then "after commit" is now
    assert heard == [7, 7, 8, None, None]


async def test_bad_topics_keys_and_messages_are_refused_clearly(
    sqlite_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    bus = InvalidationBus(sqlite_db, sqlite_db.settings)
    with pytest.raises(ValueError, match="invalid invalidation topic"):
        bus.publish("no spaces please")
    with pytest.raises(ValueError, match="invalid invalidation topic"):
        bus.subscribe("", print)
    with pytest.raises(TypeError, match="text, an integer or None, not tuple"):
        bus.publish(GRANTS, (1, 2))  # type: ignore[arg-type]
    heard: list[object] = []
    bus.subscribe(GRANTS, heard.append)
    with caplog.at_level(logging.WARNING, logger="madrasa.invalidation"):
        for payload in ("not json", '["grants", [1]]', '{"topic": "grants"}', b"\xff"):
            bus.receive(payload)
    assert heard == []
    assert sum("unreadable invalidation message" in r.getMessage() for r in caplog.records) == 4
    bus.receive('["grants", 5]')
    assert heard == [5]


async def test_a_failing_handler_does_not_stop_the_others(sqlite_db: Database) -> None:
    bus = InvalidationBus(sqlite_db, sqlite_db.settings)
    heard: list[object] = []

    def broken(_key: object) -> None:
        raise RuntimeError("broken handler")

    bus.subscribe("example.topic", broken)
    bus.subscribe("example.topic", heard.append)
    bus.publish("example.topic", "k")
    assert heard == ["k", "k"]


async def test_a_shared_cache_forgets_a_key_or_everything_when_its_topic_is_published(sqlite_db: Database) -> None:
    cache: InvalidatedCache[str, int] = InvalidatedCache("example.shared", 60)
    cache.put("a", 1)
    cache.put("b", 2)
    bus = InvalidationBus(sqlite_db, sqlite_db.settings)
    bus.publish("example.shared", "a")
    assert cache.peek("a") is MISSING and cache.peek("b") == 2
    bus.receive('["example.shared", null]')
    assert len(cache) == 0
    seen: list[object] = []
    on_invalidate("example.other", seen.append)
    bus.receive('["example.other", 3]')
    assert seen == [3]
    bus.flush_all()  # a listener that reconnects empties every topic
    assert seen == [3, None]


def test_the_transport_follows_the_deployment(tmp_path: Path) -> None:
    sqlite = load_settings({}, data_dir=tmp_path)
    assert backend_for(sqlite) == "local"
    pg = load_settings({}, data_dir=tmp_path, database_url="postgresql://u:p@db/madrasa", secret_key="s" * 40)
    assert backend_for(pg) == "postgres"
    saq = load_settings(
        {}, data_dir=tmp_path, database_url="postgresql://u:p@db/madrasa", secret_key="s" * 40, job_backend="saq"
    )
    assert backend_for(saq) == "redis"
    chosen = load_settings({"MADRASA_INVALIDATION_BACKEND": "local"}, data_dir=tmp_path, job_backend="saq")
    assert backend_for(chosen) == "local"
    assert redis_channel("postgresql://u:p@db:5433/madrasa") == "madrasa:invalidate:db:5433/madrasa"


def test_an_impossible_transport_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="MADRASA_INVALIDATION_BACKEND: postgres needs a PostgreSQL"):
        load_settings({"MADRASA_INVALIDATION_BACKEND": "postgres"}, data_dir=tmp_path)
    with pytest.raises(ConfigError, match="MADRASA_INVALIDATION_BACKEND"):
        load_settings({"MADRASA_INVALIDATION_BACKEND": "carrier-pigeon"}, data_dir=tmp_path)
    with pytest.raises(ConfigError, match="MADRASA_REDIS_URL"):
        load_settings({"MADRASA_INVALIDATION_BACKEND": "redis", "MADRASA_REDIS_URL": "http://x"}, data_dir=tmp_path)


async def test_notify_carries_committed_messages_only(pg_server: PgServer, tmp_path: Path) -> None:
    settings = make_settings("postgres", tmp_path, pg_server)
    writer_db, reader_db = Database(settings), Database(settings)
    writer, reader = InvalidationBus(writer_db, settings), InvalidationBus(reader_db, settings)
    heard: list[object] = []
    reader.subscribe(GRANTS, heard.append)
    for db, bus in ((writer_db, writer), (reader_db, reader)):
        await db.start()
        await bus.start()
    try:
        await asyncio.wait_for(reader.listener.connected.wait(), 10)
        await asyncio.wait_for(writer.listener.connected.wait(), 10)
        heard.clear()  # the connection's own flush
        with pytest.raises(RuntimeError):
            async with writer_db.transaction():
                writer.publish(GRANTS, 1)
                raise RuntimeError("rolled back")
        async with writer_db.transaction():
            writer.publish(GRANTS, 2)
        await _until(lambda: heard, "the committed message")
        # Messages arrive in the order they were sent: the rolled-back one was never sent.
        assert heard == [2]
    finally:
        for db, bus in ((writer_db, writer), (reader_db, reader)):
            await bus.stop()
            await db.stop()


async def test_an_unreachable_database_is_logged_once_and_never_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"postgresql://nobody:nothing@127.0.0.1:{free_port()}/nowhere"
    settings = load_settings({}, data_dir=tmp_path, database_url=url, secret_key="s" * 40)
    db = Database(settings)
    bus = InvalidationBus(db, settings)
    heard: list[object] = []
    bus.subscribe(GRANTS, heard.append)
    with caplog.at_level(logging.INFO, logger="madrasa.invalidation"):
        await bus.start()
        try:
            await _until(lambda: bus.listener.failures >= 2, "two failed connections")
            bus.publish(GRANTS, 3)  # this process still forgets at once; sending fails and is logged once
            await _until(lambda: len(heard) >= 2, "the local delivery of an unsent message")
            bus.publish(GRANTS, 4)
            await _until(lambda: len(heard) >= 4, "the second unsent message")
        finally:
            await bus.stop()
    assert heard == [3, 3, 4, 4]
    lost = [r for r in caplog.records if "listener lost" in r.getMessage()]
    unsent = [r for r in caplog.records if "cannot send cache invalidations" in r.getMessage()]
    assert len(lost) == 1 and len(unsent) == 1
    assert not bus.listener.connected.is_set()
