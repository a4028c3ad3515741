"""A dependency that cannot be reached (the database, file storage, the job queue) as a 503 with ``Retry-After``.

A lost or refused database connection, a pool that cannot hand out a connection in time, a storage
endpoint that does not answer or a Redis that is gone are not bugs of the request: the client should try
again shortly. :func:`dependency_down` recognises them anywhere in an exception's chain, and
:mod:`core.problems` answers ``503 Service Unavailable`` with ``Retry-After`` and a plain message
(translated on portal pages) instead of a 500.
"""

from __future__ import annotations

import errno
import socket
import sqlite3
from typing import Literal

import asyncpg

from core.errors import Unavailable
from core.storage import StorageError

Dependency = Literal["database", "storage", "queue"]

#: Seconds a client is told to wait before trying again.
RETRY_AFTER_SECONDS = 5

#: What the reader is told, by the dependency that failed (msgids of core's catalogue).
MESSAGES: dict[str, str] = {
    "database": "The service is briefly unavailable; try again in a moment.",
    "storage": "File storage is briefly unavailable; try again in a moment.",
    "queue": "The job queue is briefly unavailable; try again in a moment.",
}

#: asyncpg's errors of a server that is going away, starting up, refusing connections or gone.
_PG_DOWN: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # 08xxx, ConnectionDoesNotExistError ("closed in the middle of operation")
    asyncpg.AdminShutdownError,  # 57P01: terminating connection due to administrator command
    asyncpg.CrashShutdownError,  # 57P02
    asyncpg.CannotConnectNowError,  # 57P03: the database system is starting up / shutting down
    asyncpg.TooManyConnectionsError,  # 53300
)
#: asyncpg's client-side wording for a connection or pool that died under the request.
_PG_CLOSED_WORDS = ("connection is closed", "connection was closed", "pool is closing", "pool is closed")


def _redis_down(exc: BaseException) -> bool:
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:  # pragma: no cover - redis comes with saq
        return False
    return isinstance(exc, RedisConnectionError | RedisTimeoutError)


def _classify(exc: BaseException) -> Dependency | None:
    if isinstance(exc, Unavailable):
        return exc.dependency
    if isinstance(exc, _PG_DOWN):
        return "database"
    if isinstance(exc, asyncpg.InterfaceError) and any(w in str(exc) for w in _PG_CLOSED_WORDS):
        return "database"
    if isinstance(exc, asyncpg.InternalClientError) and "another operation" in str(exc):
        return "database"  # a connection the server dropped half way through an operation
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return "database"
    if _redis_down(exc):
        return "queue"
    if _network_error(exc):  # the database's address: the other dependencies' errors are recognised above
        return "database"
    return None


#: ``errno`` values of a peer that cannot be reached or went away.
_NETWORK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.EHOSTDOWN,
    }
)


def _network_error(exc: BaseException) -> bool:
    """Refused, reset, unreachable, timed out (a pool acquire too); not a missing file or a full disk."""
    if isinstance(exc, ConnectionError | TimeoutError | socket.gaierror):
        return True
    if not isinstance(exc, OSError):
        return False
    # asyncio's connect to several addresses (``localhost``: ::1 and 127.0.0.1) raises a plain OSError.
    return exc.errno in _NETWORK_ERRNOS or str(exc).startswith(("Multiple exceptions", "Connect call failed"))


def dependency_down(exc: BaseException) -> Dependency | None:
    """Which dependency an error (or what caused it) says is unreachable, or ``None`` for any other error."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 6:
        if isinstance(current, StorageError) and not isinstance(current, Unavailable):
            # A storage refusal (a missing object, a bad key) is not an outage; a folder that cannot be written is.
            return "storage" if isinstance(current.__cause__, OSError) else None
        found = _classify(current)
        if found is not None:
            return found
        chained = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
        current, seen = chained, seen + 1
    return None
