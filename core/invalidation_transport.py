"""The listeners that carry cache invalidations between processes: PostgreSQL ``LISTEN/NOTIFY`` and Redis pub/sub.

A listener holds one connection of its own (not one of the pool's). :meth:`Listener.run` connects,
subscribes, empties every cache of the process (what was published while it was away is unknown),
then waits for messages and checks the connection every few seconds. A lost connection is retried
with a doubling delay (0.5 s up to 30 s); the first failure of an outage is logged as a warning and the
recovery as information; nothing is raised to the application.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import asyncpg

from core.db import postgres_config
from core.observability import INVALIDATION_LISTENER_UP

if TYPE_CHECKING:
    from core.invalidation import InvalidationBus

log = logging.getLogger("madrasa.invalidation")

#: PostgreSQL's channel (channels belong to one database, so no name of the database is needed).
PG_CHANNEL = "madrasa_invalidate"
#: ``application_name`` of the listening connection, followed by the process id (operators find it in
#: ``pg_stat_activity``).
PG_APPLICATION = "madrasa-invalidation"
#: How often an idle connection is checked.
KEEPALIVE_SECONDS = 5.0
FIRST_RETRY_SECONDS = 0.5
LAST_RETRY_SECONDS = 30.0


def redis_channel(database_url: str) -> str:
    """The Redis channel of a deployment: named after its database, so deployments sharing a Redis stay apart."""
    parts = urlsplit(database_url)
    if database_url.startswith("sqlite"):
        return f"madrasa:invalidate:{parts.path}"
    return f"madrasa:invalidate:{parts.hostname or ''}:{parts.port or 5432}/{parts.path.lstrip('/')}"


class Listener:
    """Connect, listen, reconnect: what both transports share."""

    def __init__(self, bus: InvalidationBus) -> None:
        self.bus = bus
        #: Set while connected and subscribed (tests wait on it).
        self.connected = asyncio.Event()
        self.outage = False
        #: Connections lost or refused since the process started.
        self.failures = 0

    async def run(self) -> None:
        """Listen until cancelled, reconnecting after every loss."""
        delay = FIRST_RETRY_SECONDS
        while True:
            try:
                await self._connect()
                self.connected.set()
                INVALIDATION_LISTENER_UP.set(1)
                self.bus.flush_all()
                if self.outage:
                    log.info("cache invalidation listener reconnected; every cache was emptied")
                self.outage = False
                delay = FIRST_RETRY_SECONDS
                await self._listen()
                raise ConnectionError("connection closed")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures += 1
                if not self.outage:
                    log.warning(
                        "cache invalidation listener lost (%s: %s); caches fall back to their TTL until it is back",
                        type(exc).__name__,
                        exc,
                    )
                self.outage = True
            finally:
                self.connected.clear()
                INVALIDATION_LISTENER_UP.set(0)
                await self._disconnect()
            await asyncio.sleep(delay)
            delay = min(delay * 2, LAST_RETRY_SECONDS)

    async def close(self) -> None:
        """Drop the connection (after :meth:`run` was cancelled)."""
        await self._disconnect()

    async def _connect(self) -> None:
        raise NotImplementedError

    async def _listen(self) -> None:
        raise NotImplementedError

    async def _disconnect(self) -> None:
        raise NotImplementedError

    async def send(self, payloads: list[str]) -> None:
        """Publish messages to every process."""
        raise NotImplementedError


class PostgresListener(Listener):
    """``LISTEN madrasa_invalidate`` on a connection of its own; ``pg_notify`` through the pool."""

    def __init__(self, bus: InvalidationBus) -> None:
        super().__init__(bus)
        self._conn: Any = None
        self._lost = asyncio.Event()

    async def _connect(self) -> None:
        config = postgres_config(self.bus.settings.database_url)
        self._lost = asyncio.Event()
        self._conn = await asyncpg.connect(
            **config, timeout=10, server_settings={"application_name": f"{PG_APPLICATION}-{os.getpid()}"}
        )
        self._conn.add_termination_listener(lambda _conn: self._lost.set())
        await self._conn.add_listener(PG_CHANNEL, self._heard)

    def _heard(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.bus.receive(payload)

    async def _listen(self) -> None:
        while not self._lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), KEEPALIVE_SECONDS)
                break
            await self._conn.fetchval("SELECT 1", timeout=KEEPALIVE_SECONDS)

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.terminate()

    async def send(self, payloads: list[str]) -> None:
        """One ``pg_notify`` per message in one statement, through the pool (outside any transaction)."""
        await self.bus.db.execute("SELECT pg_notify({}, p) FROM unnest(CAST({} AS text[])) AS p", PG_CHANNEL, payloads)


class RedisListener(Listener):
    """``SUBSCRIBE`` on a connection of its own; ``PUBLISH`` on another."""

    def __init__(self, bus: InvalidationBus) -> None:
        super().__init__(bus)
        from redis.asyncio import Redis

        self.channel = redis_channel(bus.settings.database_url)
        self._client: Redis = Redis.from_url(bus.settings.redis_url, socket_connect_timeout=5, socket_timeout=5)
        self._listening: Redis | None = None
        self._pubsub: Any = None

    async def _connect(self) -> None:
        from redis.asyncio import Redis

        self._listening = Redis.from_url(self.bus.settings.redis_url, socket_connect_timeout=5)
        self._pubsub = self._listening.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(self.channel)

    async def _listen(self) -> None:
        while True:
            message = await self._pubsub.get_message(timeout=KEEPALIVE_SECONDS)
            if message is None:
                await self._pubsub.ping()
            elif message.get("type") == "message":
                self.bus.receive(message["data"])

    async def _disconnect(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        listening, self._listening = self._listening, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
        if listening is not None:
            with contextlib.suppress(Exception):
                await listening.aclose()

    async def send(self, payloads: list[str]) -> None:
        """``PUBLISH`` each message (pipelined)."""
        async with self._client.pipeline(transaction=False) as pipe:
            for payload in payloads:
                pipe.publish(self.channel, payload)
            await pipe.execute()

    async def close(self) -> None:
        """Drop both connections."""
        await super().close()
        with contextlib.suppress(Exception):
            await self._client.aclose()


def make_listener(bus: InvalidationBus) -> Listener:
    """The listener of the bus's backend."""
    if bus.backend == "redis":
        return RedisListener(bus)
    if bus.backend == "postgres":
        if bus.settings.dialect != "postgres":
            raise ValueError("the postgres invalidation backend needs a PostgreSQL database")
        return PostgresListener(bus)
    raise ValueError(f"no listener for the {bus.backend!r} invalidation backend")
