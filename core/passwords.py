"""Password hashing: argon2id at a deliberate cost, run in a bounded pool of threads off the event loop.

* Cost: ``MADRASA_ARGON2_MEMORY_KIB`` / ``_TIME_COST`` / ``_PARALLELISM``, by default OWASP's argon2id
  guidance (19 MiB, t=2, p=1); :mod:`core.config` refuses a cost weaker than OWASP's weakest equivalent
  (7 MiB × 5 passes). ``password_hash_profile = "test"`` swaps in a cheap hasher for test suites.
* A stored hash made with other parameters verifies as before; :meth:`PasswordPool.needs_rehash` says it is
  to be upgraded, which a successful login does (``core/identity.py``).
* At most ``MADRASA_PASSWORD_HASH_WORKERS`` hashes (default: the CPU count) run at once, in anyio worker
  threads under a :class:`anyio.CapacityLimiter` of their own; argon2-cffi releases the GIL while it hashes.
  Further logins wait their turn, so a burst of logins queues instead of taking every thread and core
  from page requests, and the memory argon2 needs stays bounded (workers × memory cost). ``/metrics``
  shows both (``madrasa_password_hashes{state="running"|"waiting"}``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

import anyio
from anyio import to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from core.config import Settings
from core.observability import PASSWORD_HASHES

_RUNNING = PASSWORD_HASHES.labels(state="running")
_WAITING = PASSWORD_HASHES.labels(state="waiting")

#: The library's default before madrasa chose its own (RFC 9106's second profile): the benchmark's baseline.
RFC9106_LOW_MEMORY = (65536, 3, 4)


def hash_parameters(settings: Settings) -> tuple[int, int, int]:
    """``(memory KiB, time cost, parallelism)`` of the configured profile."""
    if settings.password_hash_profile == "test":
        return (1024, 1, 1)
    return (settings.argon2_memory_kib, settings.argon2_time_cost, settings.argon2_parallelism)


def make_hasher(settings: Settings) -> PasswordHasher:
    """argon2id at the configured cost (``test``: a cheap one, never in production)."""
    memory, time_cost, parallelism = hash_parameters(settings)
    return PasswordHasher(time_cost=time_cost, memory_cost=memory, parallelism=parallelism)


def hash_workers(settings: Settings) -> int:
    """How many hashes may run at once: the setting, or the CPU count when it is 0."""
    return settings.password_hash_workers or os.cpu_count() or 1


@dataclass(frozen=True)
class PoolStatistics:
    """What the pool is doing: hashes running, logins waiting, the most ever running at once, and the bound."""

    running: int
    waiting: int
    peak_running: int
    workers: int


class PasswordPool:
    """Hashes and verifies passwords in worker threads, at most ``workers`` at a time."""

    def __init__(self, hasher: PasswordHasher, workers: int) -> None:
        self.hasher = hasher
        self.workers = workers
        self._limiter: anyio.CapacityLimiter | None = None
        self._lock = threading.Lock()
        self._active = 0  # counted in the threads themselves, whatever the limiter says
        self._peak = 0

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        """The pool's own limiter (made on first use, inside the running event loop)."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.workers)
        return self._limiter

    def statistics(self) -> PoolStatistics:
        """The pool's current load (``waiting``: logins queued for a worker)."""
        waiting = self._limiter.statistics().tasks_waiting if self._limiter is not None else 0
        return PoolStatistics(self._active, waiting, self._peak, self.workers)

    def _run(self, func: Callable[..., object], *args: str) -> object:
        """In a worker thread: the hash itself, counted as running (no longer waiting)."""
        with self._lock:
            self._active += 1
            self._peak = max(self._peak, self._active)
        _WAITING.dec()
        _RUNNING.inc()
        try:
            return func(*args)
        finally:
            _RUNNING.dec()
            with self._lock:
                self._active -= 1

    async def _in_pool(self, func: Callable[..., object], *args: str) -> object:
        _WAITING.inc()
        started = False

        def run() -> object:
            nonlocal started
            started = True
            return self._run(func, *args)

        try:
            return await to_thread.run_sync(run, limiter=self.limiter)
        finally:
            if not started:  # cancelled while waiting for a worker
                _WAITING.dec()

    async def hash(self, password: str) -> str:
        """An argon2id hash of ``password``."""
        result = await self._in_pool(self.hasher.hash, password)
        assert isinstance(result, str)
        return result

    async def verify(self, stored: str, password: str) -> bool:
        """Whether ``password`` matches the stored hash (``False`` for a malformed or empty hash)."""
        try:
            await self._in_pool(self.hasher.verify, stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return True

    def needs_rehash(self, stored: str) -> bool:
        """Whether a stored hash was made with other parameters than the configured ones."""
        try:
            return self.hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True
