"""Database access: engines, the connection pool, raw SQL helpers and tenant-scoped transactions.

Piccolo tables define the schema and serve simple CRUD; hot paths and set-based work use
SQL written as :class:`core.sql.SQL` (or a literal ``{}`` template and its values), compiled for
the active dialect with every value bound.

Row-level security: :meth:`Database.scoped` opens a transaction and, on PostgreSQL, sets
``app.scope`` (comma-separated tenant node ids) and ``app.platform`` with
``set_config(…, true)`` so they vanish at commit. Services also filter by the same scope
in SQL (:func:`scope_sql`), which is the only layer on SQLite.

Read replicas (``MADRASA_REPLICA_URLS``): a read-only ``scoped(…, write=False)`` transaction of a route marked
``opt={"replica": True}`` (or one asked with ``replica=True`` outside requests) runs on a replica's connection, with
the same role and the same scope settings; :mod:`core.replicas` picks the replica or says "the primary".
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import date, datetime, time
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import asyncpg
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine, PostgresTransaction
from piccolo.engine.sqlite import SQLiteEngine, TransactionType
from piccolo.querystring import QueryString
from piccolo.table import Table

from core.config import Settings
from core.observability import REPLICA_READS
from core.replicas import Replica, ReplicaSet, note_write, read_routing
from core.scope import Scope
from core.sql import SQL, as_sql, ident, in_, join, many_text

log = logging.getLogger("madrasa.db")

Dialect = Literal["sqlite", "postgres"]

#: Scope in force for the current transaction, for code that needs to know it (audit, storage).
current_scope: contextvars.ContextVar[Scope | None] = contextvars.ContextVar("madrasa_scope", default=None)
#: What runs once the transaction open in this task has committed (:meth:`Database.after_commit`).
_after_commit: contextvars.ContextVar[list[Callable[[], None]] | None] = contextvars.ContextVar(
    "madrasa_after_commit", default=None
)


def postgres_config(url: str) -> dict[str, Any]:
    """asyncpg connection keywords from a ``postgresql://`` URL."""
    parts = urlsplit(url)
    config: dict[str, Any] = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "database": unquote(parts.path.lstrip("/")) or "postgres",
        "user": unquote(parts.username or "postgres"),
    }
    if parts.password:
        config["password"] = unquote(parts.password)
    return config


class PooledConnection(asyncpg.Connection):  # type: ignore[misc]
    """A pooled connection released without asyncpg's reset round trip.

    The reset (``RESET ALL``, ``UNLISTEN *``, advisory unlocks) undoes session state; the app keeps
    none: the tenant scope is set with ``set_config(…, true)`` and dies with each transaction, and
    the pool still rolls back a transaction left open.
    """

    def get_reset_query(self) -> str:
        """No session state to reset."""
        return ""


class ReleasingTransaction(PostgresTransaction):
    """Piccolo's transaction, which gives its connection back to the pool even when the connection died.

    Piccolo releases the connection only after a rollback or commit that succeeded: a server restart in the
    middle of a transaction (the rollback fails on the closed connection) would leak it, and the pool would
    run dry. Here the connection always goes back, a rollback that fails on a live connection terminates it
    (the pool opens a fresh one), and the error the block raised is the one that propagates.
    """

    async def __aenter__(self) -> PostgresTransaction:
        for attempt in range(2):
            try:
                return await super().__aenter__()
            except BaseException as exc:
                connection = getattr(self, "connection", None)
                if connection is None:  # no connection to be had
                    raise
                # Acquired, but BEGIN failed: a connection the server dropped while it sat in the pool. Nothing
                # was done yet, so one more connection is tried.
                await self._give_back(connection, broken=True)
                del self.connection
                if attempt or isinstance(exc, asyncio.CancelledError) or not isinstance(exc, _SUSPECT_ERRORS):
                    raise
        raise AssertionError("unreachable")

    async def __aexit__(self, exception_type: Any, exception: Any, traceback: Any) -> bool:
        if self._parent is not None:
            return exception is None
        broken = isinstance(exception, _SUSPECT_ERRORS)  # terminating the connection rolls its transaction back
        try:
            if exception is None:
                if not self._committed and not self._rolled_back:
                    await self.commit()
            elif not broken and not self._rolled_back:
                try:
                    await self.rollback()
                except Exception as failure:  # the block's own error says what went wrong
                    log.warning("rollback failed: %s: %s", type(failure).__name__, failure)
                    broken = True
        except BaseException as failure:  # the commit failed
            broken = broken or isinstance(failure, _SUSPECT_ERRORS)
            raise
        finally:
            await self._give_back(self.connection, broken=broken)
            self.engine.current_transaction.reset(self.context)
        return exception is None

    async def _give_back(self, connection: Any, *, broken: bool) -> None:
        if broken:
            _terminate(connection)
        if self.engine.pool:
            with contextlib.suppress(Exception):
                await self.engine.pool.release(connection)
        else:
            with contextlib.suppress(Exception):
                await connection.close()


#: Errors after which a connection's state is unknown (the server said FATAL, the socket broke, the operation
#: was cancelled half way): the connection is terminated rather than handed to the next request.
_SUSPECT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.CancelledError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)


def _terminate(connection: Any) -> None:
    """Close a pooled connection at once (a proxy the pool already took back is left alone)."""
    with contextlib.suppress(Exception):
        connection.terminate()


class ReplicaTransaction(ReleasingTransaction):
    """A transaction on a replica's connection, registered as the engine's current transaction.

    Piccolo runs a query on the engine's current transaction when there is one, so every query of the block
    (Piccolo tables and :meth:`Database.fetch` alike) reads from the replica.
    """

    def __init__(self, engine: PostgresEngine, pool: Any) -> None:
        super().__init__(engine, allow_nested=False)
        self.replica_pool = pool

    async def get_connection(self) -> Any:
        """A connection of the replica's pool."""
        return await self.replica_pool.acquire()

    async def begin(self) -> None:
        """``BEGIN READ ONLY``: a stray write fails as it would on the standby, whatever the server."""
        self.transaction = self.connection.transaction(readonly=True)
        await self.transaction.start()

    async def _give_back(self, connection: Any, *, broken: bool) -> None:
        if broken:
            _terminate(connection)
        with contextlib.suppress(Exception):
            await self.replica_pool.release(connection)


#: What a replica's failure looks like: the errors of a broken connection, and a pool that timed out.
REPLICA_ERRORS: tuple[type[BaseException], ...] = (*_SUSPECT_ERRORS, TimeoutError)


class _BoundedAcquire:
    """asyncpg's acquire context, which terminates the connection when the block ends on a suspect error."""

    def __init__(self, context: Any) -> None:
        self._context = context

    def __await__(self) -> Any:
        return self._context.__await__()

    async def __aenter__(self) -> Any:
        return await self._context.__aenter__()

    async def __aexit__(self, exception_type: Any, exception: Any, traceback: Any) -> Any:
        if isinstance(exception, _SUSPECT_ERRORS) and self._context.connection is not None:
            _terminate(self._context.connection)
        return await self._context.__aexit__(exception_type, exception, traceback)


class BoundedPool:
    """An asyncpg pool whose ``acquire()`` gives up after ``timeout`` seconds (:class:`TimeoutError`).

    Piccolo acquires without a timeout; with the database down or every connection busy a request would
    wait as long as the client does. The timeout covers waiting for a free connection and opening a new
    one. A connection the server closed (a restart) is replaced by the pool on the next acquire; one that
    failed half way through an operation is terminated first (:class:`PooledConnection` skips the reset
    that would otherwise notice).
    """

    def __init__(self, pool: asyncpg.Pool, timeout: float) -> None:
        self._pool = pool
        self.timeout = timeout

    def acquire(self, *, timeout: float | None = None) -> Any:
        """A connection, within ``timeout`` (the pool's bound by default)."""
        return _BoundedAcquire(self._pool.acquire(timeout=self.timeout if timeout is None else timeout))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)


def make_engine(url: str) -> Engine:
    """A Piccolo engine for a database URL."""
    if url.startswith("sqlite:///"):
        return SQLiteEngine(path=url.removeprefix("sqlite:///"), timeout=30)
    return PostgresEngine(config=postgres_config(url))


class Database:
    """The application's database: the app-role engine, the owner engine for migrations."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dialect: Dialect = settings.dialect
        if self.dialect == "sqlite":
            settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = make_engine(settings.database_url)
        owner_url = settings.migration_database_url or settings.database_url
        self.owner_engine: Engine = self.engine if owner_url == settings.database_url else make_engine(owner_url)
        #: Streaming replicas that serve the reads allowed to go to one (``MADRASA_REPLICA_URLS``).
        self.replicas = ReplicaSet(
            [postgres_config(url) for url in settings.replica_urls] if self.dialect == "postgres" else [],
            max_lag=settings.replica_max_lag_seconds,
            retry_seconds=settings.replica_retry_seconds,
            open_pool=self._open_replica_pool,
        )
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------------

    def bind(self, tables: Iterable[type[Table]]) -> None:
        """Point Piccolo tables at this database's app-role engine."""
        for table in tables:
            table._meta.db = self.engine

    async def start(self) -> None:
        """Open the pool (PostgreSQL) with explicit minimum and maximum sizes."""
        if self._started:
            return
        if isinstance(self.engine, PostgresEngine):
            await self.engine.start_connection_pool(
                min_size=self.settings.db_pool_min,
                max_size=self.settings.db_pool_max,
                max_inactive_connection_lifetime=300,
                connection_class=PooledConnection,
                timeout=self.settings.db_acquire_timeout,  # connecting, per attempt
            )
            self.engine.pool = BoundedPool(self.engine.pool, self.settings.db_acquire_timeout)
        else:
            await self.engine.run_ddl("PRAGMA journal_mode=WAL")
        self._started = True

    async def _open_replica_pool(self, config: dict[str, Any]) -> BoundedPool:
        """A replica's pool: like the primary's, but opening no connection until one is needed (``min_size=0``),
        so a replica that is down at start-up stops nothing."""
        pool = await asyncpg.create_pool(
            **config,
            min_size=0,
            max_size=self.settings.db_pool_max,
            max_inactive_connection_lifetime=300,
            connection_class=PooledConnection,
            timeout=self.settings.db_acquire_timeout,
        )
        return BoundedPool(pool, self.settings.db_acquire_timeout)

    async def stop(self) -> None:
        """Close the pools."""
        await self.replicas.stop()
        if self._started and isinstance(self.engine, PostgresEngine) and self.engine.pool:
            pool, self.engine.pool = self.engine.pool, None
            try:
                await asyncio.wait_for(pool.close(), timeout=10)
            except TimeoutError:  # a connection still out (a request stuck): close them all the hard way
                log.warning("the connection pool did not close in 10 s; terminating its connections")
                pool.terminate()
        self._started = False

    # -- raw SQL -----------------------------------------------------------------------------

    def _querystring(self, query: SQL | str, args: Sequence[Any]) -> QueryString:
        return querystring(as_sql(query, args), self.dialect)

    async def fetch(self, query: SQL | str, *args: Any) -> list[dict[str, Any]]:
        """Rows as dicts: an :class:`~core.sql.SQL`, or a literal ``{}`` template and its values.

        Values come back alike on both backends: SQLite's ISO date, time and timestamp text
        (what it returns for computed columns) becomes ``date``/``time``/``datetime``.
        """
        rows = await self.engine.run_querystring(self._querystring(query, args))
        if self.dialect == "postgres":
            return [dict(r) for r in rows]
        return [normalise_row(r) for r in rows]

    async def fetchrow(self, query: SQL | str, *args: Any) -> dict[str, Any] | None:
        """The first row or ``None``."""
        rows = await self.fetch(query, *args)
        return rows[0] if rows else None

    async def fetchval(self, query: SQL | str, *args: Any) -> Any:
        """The first column of the first row, or ``None``."""
        row = await self.fetchrow(query, *args)
        return next(iter(row.values())) if row else None

    async def execute(self, query: SQL | str, *args: Any) -> None:
        """Run a statement for its effect."""
        await self.engine.run_querystring(self._querystring(query, args))

    async def executemany(self, statement: SQL | str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for many rows of values, in the open transaction (or one of its own).

        ``statement`` is a literal ``{}`` template, or an :class:`SQL` with :data:`~core.sql.SLOT`
        placeholders (``slots(n)`` makes a ``VALUES`` row of them).
        """
        if not rows:
            return
        if self.engine.current_transaction.get() is None:
            async with self.transaction():
                await run_many(self.engine, self.dialect, statement, rows)
            return
        await run_many(self.engine, self.dialect, statement, rows)

    # -- transactions ------------------------------------------------------------------------

    @asynccontextmanager
    async def transaction(self, *, write: bool = True) -> AsyncIterator[Any]:
        """A transaction; fails if one is already open (use :meth:`savepoint` to nest)."""
        if self.engine.current_transaction.get() is not None:
            raise RuntimeError("a transaction is already open: use Database.savepoint() to nest")
        callbacks: list[Callable[[], None]] = []
        token = _after_commit.set(callbacks)
        try:
            if isinstance(self.engine, SQLiteEngine):
                kind = TransactionType.immediate if write else TransactionType.deferred
                async with self.engine.transaction(transaction_type=kind, allow_nested=False) as tx:
                    yield tx
            else:
                async with ReleasingTransaction(self.engine, allow_nested=False) as tx:
                    yield tx
        finally:
            _after_commit.reset(token)
        if write:
            note_write()  # committed: the request's author reads from the primary for a while (read-your-writes)
        for callback in callbacks:  # reached only when the block and its commit succeeded
            try:
                callback()
            except Exception:
                log.exception("an after-commit callback failed")

    @asynccontextmanager
    async def scoped(self, scope: Scope, *, write: bool = True, replica: bool | None = None) -> AsyncIterator[Any]:
        """A transaction restricted to ``scope``; PostgreSQL enforces it with RLS as well.

        A read (``write=False``) may run on a read replica: in a request, when its route is marked
        ``opt={"replica": True}`` (and the request may read from one, see :mod:`core.read_routing`); outside
        requests, when ``replica=True``. ``replica=False`` keeps a read on the primary (a count that must be
        exact). Without a replica fit to serve, the primary serves it.
        """
        wanted = self._wants_replica(write, replica)
        if wanted and self.in_transaction():
            raise RuntimeError("a transaction is already open: use Database.savepoint() to nest")
        target = await self.replicas.pick() if wanted else None
        tx = await self._open_replica(target, scope) if target is not None else None
        if wanted:
            REPLICA_READS.labels("replica" if tx is not None else "primary").inc()
        if tx is None:
            async with self.transaction(write=write) as tx:
                if self.dialect == "postgres":
                    await _set_scope(tx.connection, scope)
                token = current_scope.set(scope)
                try:
                    yield tx
                finally:
                    current_scope.reset(token)
            return
        assert target is not None
        token = current_scope.set(scope)
        try:
            yield tx
        except BaseException as exc:
            self._replica_failed(target, exc)
            await tx.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        else:
            try:
                await tx.__aexit__(None, None, None)
            except BaseException as exc:  # the connection was lost at the commit
                self._replica_failed(target, exc)
                raise
        finally:
            current_scope.reset(token)

    def _replica_failed(self, replica: Replica, exc: BaseException) -> None:
        """A replica's connection broke under a read: mark it down, and have the request answered again."""
        if isinstance(exc, REPLICA_ERRORS) and not isinstance(exc, asyncio.CancelledError):
            self.replicas.mark_down(replica, exc)
            routing = read_routing.get()
            if routing is not None:
                routing.failed = True  # the request is answered again from the primary (core/read_routing.py)

    def _wants_replica(self, write: bool, replica: bool | None) -> bool:
        """Whether a transaction may run on a replica (the request's routing, else the caller's ``replica``)."""
        if write or replica is False or not self.replicas:
            return False
        routing = read_routing.get()
        return routing.replica if routing is not None else bool(replica)

    async def _open_replica(self, replica: Replica, scope: Scope) -> ReplicaTransaction | None:
        """A transaction on ``replica`` with ``scope`` set, or ``None`` (the replica is then marked down)."""
        assert isinstance(self.engine, PostgresEngine)
        try:  # any failure to open (refused, lost, timed out, the server starting up) sends the read to the primary
            tx = ReplicaTransaction(self.engine, await self.replicas.pool(replica))
            await tx.__aenter__()
        except Exception as exc:
            self.replicas.mark_down(replica, exc)
            return None
        try:
            await _set_scope(tx.connection, scope)
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await tx.__aexit__(type(exc), exc, exc.__traceback__)
            if not isinstance(exc, Exception):
                raise
            self.replicas.mark_down(replica, exc)
            return None
        return tx

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A nested unit inside the open transaction: an error rolls back to its start only."""
        tx = self.engine.current_transaction.get()
        if tx is None:
            raise RuntimeError("savepoint() needs an open transaction")
        point = await tx.savepoint()
        try:
            yield
        except BaseException:
            await point.rollback_to()
            raise
        else:
            await point.release()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the transaction open in this task commits (never if it rolls back); now when none is.

        A transaction opened on the engine directly (not through :meth:`transaction`) is not followed: the
        callback runs at once.
        """
        pending = _after_commit.get()
        if pending is None:
            callback()
        else:
            pending.append(callback)

    def in_transaction(self) -> bool:
        """Whether a transaction is open in this task."""
        return self.engine.current_transaction.get() is not None


async def _set_scope(connection: Any, scope: Scope) -> None:
    """Set the RLS scope of the open transaction (``set_config(…, true)``: it ends with the transaction)."""
    await connection.execute(
        "SELECT set_config('app.scope', $1, true), set_config('app.platform', $2, true)",
        ",".join(str(n) for n in sorted(scope.nodes)),
        "on" if scope.platform else "",
    )


#: Constraint failures (a unique key, a check, a foreign key) on either backend.
INTEGRITY_ERRORS: tuple[type[Exception], ...] = (asyncpg.IntegrityConstraintViolationError, sqlite3.IntegrityError)
#: What a unique index raises on either backend (SQLite has one class for every constraint: see
#: :func:`unique_violation`).
UNIQUE_VIOLATIONS: tuple[type[Exception], ...] = (asyncpg.UniqueViolationError, sqlite3.IntegrityError)


def unique_violation(exc: BaseException) -> str | None:
    """The index or columns a unique violation names (``None`` when ``exc`` is another error). Pure function."""
    if isinstance(exc, asyncpg.UniqueViolationError):
        return exc.constraint_name or str(exc)
    if isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc):
        return str(exc)
    return None


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?([+-]\d{2}:?\d{2}|Z)?$")
_ISO_TIME = re.compile(r"^\d{2}:\d{2}:\d{2}(\.\d{1,6})?$")


def querystring(query: SQL, dialect: str) -> QueryString:
    """A Piccolo query holding ``query`` as :mod:`core.sql` compiled it (Piccolo does not re-parse it)."""
    qs = QueryString("")
    qs._frozen_compiled_strings = query.compile(dialect)
    return qs


async def run_many(engine: Engine, dialect: str, statement: SQL | str, rows: Sequence[Sequence[Any]]) -> None:
    """``executemany`` on the engine's open transaction (see :meth:`Database.executemany`)."""
    if not rows:
        return
    text = many_text(statement, dialect, len(rows[0]))
    tx = engine.current_transaction.get()
    if tx is None:
        raise RuntimeError("executemany needs an open transaction")
    await tx.connection.executemany(text, [list(r) for r in rows])


def normalise_value(value: Any) -> Any:
    """SQLite's text for a date, time or timestamp as the Python value PostgreSQL returns. Pure function."""
    if type(value) is not str or not 8 <= len(value) <= 32:
        return value
    if value[4:5] == "-":
        if _ISO_DATE.match(value):
            return date.fromisoformat(value)
        if _ISO_DATETIME.match(value):
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
    elif value[2:3] == ":" and _ISO_TIME.match(value):
        return time.fromisoformat(value)
    return value


def normalise_row(row: dict[str, Any]) -> dict[str, Any]:
    """A SQLite row with its date and time text turned into values (see :func:`normalise_value`)."""
    for key, value in row.items():
        if type(value) is str:
            row[key] = normalise_value(value)
    return row


def scope_sql(scope: Scope, alias: str = "", columns: Sequence[str] = ("region_id", "province_id", "school_id")) -> SQL:
    """The application-layer tenant filter as :class:`~core.sql.SQL`: the rule the RLS policies apply."""
    if scope.platform:
        return SQL("1=1")
    nodes = sorted(scope.nodes)
    if not nodes:
        return SQL("1=0")
    listed = in_(nodes)
    targets = [ident(alias, col) if alias else ident(col) for col in columns]
    return SQL("({})", join(" OR ", [SQL("{} IN {}", target, listed) for target in targets]))
