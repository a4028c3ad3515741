"""Retrying a message that failed: a growing wait between tries, given up after :data:`MAX_ATTEMPTS`.

The rule every delivery of the centre follows (and attendance's own, which it was taken from): the wait after the
first failure is :data:`FIRST_WAIT`, doubling with each further failure up to :data:`LONGEST_WAIT`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

#: Tries of one message (the first one included) before it is given up as ``failed``.
MAX_ATTEMPTS = 6
#: The wait after the first failure; it doubles with each further failure.
FIRST_WAIT = timedelta(minutes=2)
#: The longest wait between two tries.
LONGEST_WAIT = timedelta(hours=1)
MAX_ERROR_CHARS = 500


def backoff(attempts: int) -> timedelta:
    """The wait after ``attempts`` failed tries: 2, 4, 8, 16, 32 minutes… at most an hour."""
    return min(FIRST_WAIT * (2 ** max(attempts - 1, 0)), LONGEST_WAIT)


def describe(exc: BaseException) -> str:
    """A short reason for a failed send (the exception's type and message)."""
    text = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    return text[:MAX_ERROR_CHARS]


def after_try(attempts: int, error: str | None, now: datetime) -> dict[str, Any]:
    """A message's state after one more try (``attempts``: the tries before it; ``error``: ``None`` if it went out):
    ``sent``, ``retrying`` with the time of the next try, or ``failed`` after :data:`MAX_ATTEMPTS` tries."""
    attempts += 1
    if error is None:
        return {"status": "sent", "attempts": attempts, "next": None, "error": "", "sent_at": now}
    if attempts >= MAX_ATTEMPTS:
        return {"status": "failed", "attempts": attempts, "next": None, "error": error, "sent_at": None}
    return {
        "status": "retrying",
        "attempts": attempts,
        "next": now + backoff(attempts),
        "error": error,
        "sent_at": None,
    }
