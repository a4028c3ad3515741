"""Attendance: when a notice was claimed for delivery, so one stuck in ``sending`` can be claimed again."""

from core.plugin_api import Migrator

DEPENDS_ON = [("attendance", "m0001_attendance")]


async def forwards(m: Migrator) -> None:
    """Add ``attendance_notice.claimed_at`` and an index for finding the day's unsent notices."""
    await m.sql('ALTER TABLE "attendance_notice" ADD COLUMN claimed_at TIMESTAMPTZ NULL')
    await m.sql('CREATE INDEX attendance_notice_unsent ON "attendance_notice" (school_id, on_date, status)')
