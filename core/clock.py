"""The time of day as the school sees it, behind one small interface so it can be pinned.

Code that decides by the date (attendance is taken on the day, "today's" notices, the current term)
asks ``services.clock`` rather than the system: :class:`Clock` reads the system time in
Africa/Casablanca; :class:`FixedClock` answers a chosen instant (tests, benchmarks, replays).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

#: Schools' time zone: dates of lessons, registers and notices are local dates.
SCHOOL_TZ = ZoneInfo("Africa/Casablanca")


class Clock:
    """The system clock, in the schools' time zone."""

    tz = SCHOOL_TZ

    def now(self) -> datetime:
        """The current instant, timezone-aware (Africa/Casablanca)."""
        return datetime.now(self.tz)

    def today(self) -> date:
        """Today's date in Morocco."""
        return self.now().date()

    def utcnow(self) -> datetime:
        """The current instant in UTC (for stored timestamps)."""
        return self.now().astimezone(UTC)


class FixedClock(Clock):
    """A clock stopped at a chosen instant (a date means 10:00 local time that day); :meth:`set` moves it."""

    def __init__(self, at: datetime | date) -> None:
        self._at = self._instant(at)

    def _instant(self, at: datetime | date) -> datetime:
        if isinstance(at, datetime):
            return at if at.tzinfo else at.replace(tzinfo=self.tz)
        return datetime.combine(at, time(10, 0), tzinfo=self.tz)

    def set(self, at: datetime | date) -> None:
        """Move the clock to another instant."""
        self._at = self._instant(at)

    def now(self) -> datetime:
        """The fixed instant, in Africa/Casablanca."""
        return self._at.astimezone(self.tz)


#: The process's real clock (what ``Services.clock`` defaults to).
SYSTEM_CLOCK = Clock()
