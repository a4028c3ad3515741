"""Read replicas: which streaming replica may serve a read, how far behind each one is, which ones are down.

A request's reads go to a replica only when its route says so (``opt={"replica": True}``), the request is a GET
or HEAD, and the browser or client did not write within the read-your-writes window (``core/read_routing.py``
sets :data:`read_routing` for the request). Outside requests (jobs), ``db.scoped(scope, write=False,
replica=True)`` asks for one. :meth:`core.db.Database.scoped` then calls :meth:`ReplicaSet.pick`:

* **lag**: each replica's replay lag is measured at most once a second per process (:data:`LAG_QUERY`); one
  lagging more than ``MADRASA_REPLICA_MAX_LAG_SECONDS`` is skipped;
* **failures**: a replica that refuses a connection, loses one, or does not answer its lag check is marked down for
  ``MADRASA_REPLICA_RETRY_SECONDS`` and the read goes to the primary; after that it is tried again.

With no replica fit to serve, the read goes to the primary: a replica is never the reason for an error.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("madrasa.replicas")

#: How long (seconds) a measured lag is believed before the replica is asked again.
LAG_CHECK_SECONDS = 1.0

#: Replay lag in seconds, as the app role may read it. A replica whose WAL receiver streams and has replayed all it
#: received is current (0): the primary has written nothing newer. Otherwise the lag is the age of the last
#: transaction replayed, which overstates the lag of a replica behind an idle primary (it is then skipped: the safe
#: side). A server not in recovery (a URL that names a primary) has no lag.
LAG_QUERY = """
SELECT CASE
    WHEN NOT pg_is_in_recovery() THEN 0
    WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver)
        THEN 0
    ELSE COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8, 'Infinity')
END AS lag
"""


@dataclass
class ReadRouting:
    """Where one request's reads go, and what happened to them (mutable: the transactions update it)."""

    #: Reads of this request may go to a replica.
    replica: bool = False
    #: A replica failed under one of them (the request is answered again from the primary).
    failed: bool = False
    #: A write transaction of this request committed (read-your-writes starts).
    wrote: bool = False


#: The routing of the request being served (``None`` outside requests).
read_routing: contextvars.ContextVar[ReadRouting | None] = contextvars.ContextVar("madrasa_read_routing", default=None)


def note_write() -> None:
    """Record that the current request committed a write (called by :meth:`core.db.Database.transaction`)."""
    routing = read_routing.get()
    if routing is not None:
        routing.wrote = True


@dataclass(eq=False)
class Replica:
    """One replica: its connection settings, its pool once opened, and what is known of its health."""

    name: str
    config: dict[str, Any]
    pool: Any = None
    down_until: float = 0.0
    lag: float = math.inf
    checked_at: float = -math.inf
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class ReplicaSet:
    """The replicas of one process: their pools (opened on first use), lag checks and down marks."""

    def __init__(
        self,
        configs: Sequence[dict[str, Any]],
        *,
        max_lag: float,
        retry_seconds: float,
        open_pool: Callable[[dict[str, Any]], Awaitable[Any]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.replicas = [Replica(f"{c['host']}:{c['port']}", dict(c)) for c in configs]
        #: Seconds of replay lag beyond which a replica is skipped (``MADRASA_REPLICA_MAX_LAG_SECONDS``).
        self.max_lag = max_lag
        self.retry_seconds = retry_seconds
        self._open_pool = open_pool
        self._clock = clock
        self._turn = itertools.count()

    def __bool__(self) -> bool:
        return bool(self.replicas)

    async def stop(self) -> None:
        """Close every pool that was opened."""
        for replica in self.replicas:
            pool, replica.pool = replica.pool, None
            if pool is not None:
                try:
                    await asyncio.wait_for(pool.close(), timeout=10)
                except Exception:  # a connection still out: close them all the hard way
                    pool.terminate()

    async def pick(self) -> Replica | None:
        """A replica fit to serve a read now (up, lag within bounds), taking turns; ``None`` for the primary."""
        if not self.replicas:
            return None
        start = next(self._turn)
        count = len(self.replicas)
        for offset in range(count):
            replica = self.replicas[(start + offset) % count]
            if self._clock() < replica.down_until:
                continue
            lag = await self.lag(replica)
            if lag <= self.max_lag:
                return replica
        return None

    async def lag(self, replica: Replica) -> float:
        """The replica's replay lag in seconds (measured at most once per :data:`LAG_CHECK_SECONDS`)."""
        if self._clock() - replica.checked_at < LAG_CHECK_SECONDS:
            return replica.lag
        async with replica.lock:
            if self._clock() - replica.checked_at < LAG_CHECK_SECONDS:  # measured while this task waited
                return replica.lag
            try:
                pool = await self.pool(replica)
                async with pool.acquire() as connection:
                    value = await connection.fetchval(LAG_QUERY)
                lag = float(value)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.mark_down(replica, exc)
                return math.inf
            if lag > self.max_lag and replica.lag <= self.max_lag:
                log.warning("replica %s lags %.1f s behind the primary; reads go elsewhere", replica.name, lag)
            replica.lag, replica.checked_at = lag, self._clock()
            return lag

    async def pool(self, replica: Replica) -> Any:
        """The replica's connection pool, opened on first use (it opens no connection until one is needed)."""
        if replica.pool is None:
            replica.pool = await self._open_pool(replica.config)
        return replica.pool

    def mark_down(self, replica: Replica, exc: BaseException) -> None:
        """Leave a failed replica alone for ``retry_seconds`` (its lag is measured again when it is back)."""
        replica.down_until = self._clock() + self.retry_seconds
        replica.checked_at = -math.inf
        log.warning(
            "replica %s failed (%s: %s); reads go to the primary for %s s",
            replica.name,
            type(exc).__name__,
            exc,
            self.retry_seconds,
        )
