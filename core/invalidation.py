"""Cache invalidation across processes: named topics, published after commit, heard by every process.

Each process keeps short-lived caches (:class:`core.cache.TTLCache`) of tenants, grants, module
settings, sessions and plugin data. A writer calls :meth:`InvalidationBus.publish` with a topic and,
optionally, a key; the bus drops the entry in this process at once, and once the writer's transaction
has committed (:meth:`core.db.Database.after_commit`) sends the message to every process, which
drops it too (the writer's own process included, closing the window in which a concurrent reader may
have reloaded the old row before the commit).

Transport (:func:`backend_for`): Redis pub/sub when jobs go through Redis (``MADRASA_JOB_BACKEND=saq``:
Redis is then running anyway, and it spares the database one listening connection per process),
else PostgreSQL ``LISTEN/NOTIFY`` on PostgreSQL, else nothing beyond this process (SQLite is one
process). ``MADRASA_INVALIDATION_BACKEND`` names one explicitly.

A message can be lost (the listener was disconnected): the cache's TTL bounds how long a stale entry
lives, and a listener that (re)connects empties every cache of its process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from core.cache import TTLCache
from core.config import Settings
from core.db import Database
from core.observability import INVALIDATION_FLUSHES

__all__ = [
    "ALL",
    "CALENDAR",
    "GRANTS",
    "MODULES",
    "SESSIONS",
    "TENANTS",
    "InvalidatedCache",
    "InvalidationBus",
    "backend_for",
    "on_invalidate",
]

log = logging.getLogger("madrasa.invalidation")

#: Tenant nodes, their status, branding, domains and programme membership (key: none, everything goes).
TENANTS = "tenants"
#: A person's grants (key: the person id; none: everyone's).
GRANTS = "grants"
#: Module switches (key: none).
MODULES = "modules"
#: A session (key: the session id), after logout or revocation.
SESSIONS = "sessions"
#: School years, terms and holidays (key: none).
CALENDAR = "calendar"
#: Every cache of every topic (after a bulk load: the demo, an archive import).
ALL = "all"

#: A cache key that crosses processes: text or an integer; ``None`` means "everything under the topic".
Key = str | int | None
Handler = Callable[[Key], None]
Backend = Literal["local", "postgres", "redis"]

#: Handlers of process-wide caches (a plugin's module-level caches), heard by every bus of the process.
_process_handlers: dict[str, list[Handler]] = {}

K = TypeVar("K")
V = TypeVar("V")


def on_invalidate(topic: str, handler: Handler) -> None:
    """Call ``handler(key)`` in this process whenever ``topic`` is published, by any process."""
    _check_topic(topic)
    _process_handlers.setdefault(topic, []).append(handler)


class InvalidatedCache(TTLCache[K, V]):
    """A :class:`TTLCache` that empties itself when its topic is published (a key of the topic is popped).

    Keys that are not text or integers (tuples, say) are dropped all together: publish the topic without a key.
    """

    __slots__ = ("topic",)

    def __init__(self, topic: str, seconds: float, max_entries: int = 100_000) -> None:
        super().__init__(seconds, max_entries)
        self.topic = topic
        on_invalidate(topic, self._drop)

    def _drop(self, key: Key) -> None:
        if key is None:
            self.clear()
        else:
            self.pop(key)  # type: ignore[arg-type]


def backend_for(settings: Settings) -> Backend:
    """The transport of invalidations for a deployment (see the module's docstring)."""
    chosen = settings.invalidation_backend
    if chosen != "auto":
        return chosen
    if settings.job_backend == "saq":
        return "redis"
    return "postgres" if settings.dialect == "postgres" else "local"


def _check_topic(topic: str) -> None:
    if not topic or len(topic) > 100 or not topic.replace(".", "").replace("_", "").isalnum():
        raise ValueError(f"invalid invalidation topic {topic!r}: letters, digits, '.' and '_' (at most 100)")


def encode(topic: str, key: Key) -> str:
    """The wire form of one message (JSON ``[topic, key]``)."""
    return json.dumps([topic, key], separators=(",", ":"))


def decode(payload: str | bytes) -> tuple[str, Key]:
    """A message from the wire; raises ``ValueError`` for one this version does not understand."""
    try:
        topic, key = json.loads(payload)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"unreadable invalidation message {payload!r}") from exc
    if not isinstance(topic, str) or not (key is None or isinstance(key, str | int)) or isinstance(key, bool):
        raise ValueError(f"unreadable invalidation message {payload!r}")
    return topic, key


class InvalidationBus:
    """Topics a process's caches listen to, and the transport that carries them to the other processes."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.backend: Backend = backend_for(settings)
        self._handlers: dict[str, list[Handler]] = {}
        self._outbox: asyncio.Queue[str] | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self.listener: Any = None

    # -- subscribing and publishing ----------------------------------------------------------

    def subscribe(self, topic: str, handler: Handler) -> None:
        """Call ``handler(key)`` whenever ``topic`` is published (a store of this bus's services)."""
        _check_topic(topic)
        self._handlers.setdefault(topic, []).append(handler)

    def publish(self, topic: str, key: Key = None) -> None:
        """Drop ``topic``/``key`` here now, and everywhere once the open transaction (if any) commits."""
        _check_topic(topic)
        if isinstance(key, bool) or not (key is None or isinstance(key, str | int)):
            raise TypeError(f"an invalidation key is text, an integer or None, not {type(key).__name__}")
        self.deliver(topic, key)
        self.db.after_commit(lambda: self._send(topic, key))

    def deliver(self, topic: str, key: Key) -> None:
        """Run this process's handlers of ``topic`` (a failing handler is logged; the others still run)."""
        if topic == ALL:
            for each in {*self._handlers, *_process_handlers} - {ALL}:
                self.deliver(each, None)
            return
        for handler in (*self._handlers.get(topic, ()), *_process_handlers.get(topic, ())):
            try:
                handler(key)
            except Exception:
                log.exception("an invalidation handler failed", extra={"topic": topic})

    def flush_all(self) -> None:
        """Empty every cache of this process (a listener (re)connected: what it missed is unknown)."""
        INVALIDATION_FLUSHES.inc()
        self.deliver(ALL, None)

    def _send(self, topic: str, key: Key) -> None:
        if self._outbox is None:  # not started (a command, a test's services) or local: this process is all
            self.deliver(topic, key)
            return
        self._outbox.put_nowait(encode(topic, key))

    def receive(self, payload: str | bytes) -> None:
        """A message from the transport (every process's, this one's included)."""
        try:
            topic, key = decode(payload)
        except ValueError as exc:
            log.warning("%s", exc)
            return
        self.deliver(topic, key)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start listening (and sending) in the background; never fails for an unreachable transport."""
        if self._tasks or self.backend == "local":
            return
        from core.invalidation_transport import make_listener

        self.listener = make_listener(self)
        self._outbox = asyncio.Queue()
        # Started here, outside any request: the tasks must not inherit a transaction's context.
        self._tasks = [
            asyncio.create_task(self.listener.run(), name="madrasa-invalidation-listener"),
            asyncio.create_task(self._sender(), name="madrasa-invalidation-sender"),
        ]

    async def stop(self) -> None:
        """Stop listening; what is still queued is sent first (for two seconds at most)."""
        if not self._tasks:
            return
        if self._outbox is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._outbox.join(), 2)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self._outbox = None
        await self.listener.close()

    async def _sender(self) -> None:
        assert self._outbox is not None
        failing = False
        while True:
            batch = [await self._outbox.get()]
            while not self._outbox.empty() and len(batch) < 100:
                batch.append(self._outbox.get_nowait())
            try:
                await self.listener.send(batch)
                if failing:
                    log.info("cache invalidations are sent again")
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The other processes keep the entries until their TTL; this one drops them now.
                if not failing:
                    log.warning("cannot send cache invalidations (%s: %s)", type(exc).__name__, exc)
                failing = True
                for payload in batch:
                    self.receive(payload)
            finally:
                for _ in batch:
                    self._outbox.task_done()
