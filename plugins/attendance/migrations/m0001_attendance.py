"""Attendance: sessions taken, absent/late marks, notices, justifications, alerts, reasons, rules."""

from core.migrate import Migrator
from plugins.attendance.tables import ATTENDANCE_TABLES, SCOPED_TABLES

REASONS = [
    ("illness", "Maladie", "مرض", "Illness"),
    ("family", "Raison familiale", "ظرف عائلي", "Family reason"),
    ("transport", "Problème de transport", "مشكل في النقل", "Transport problem"),
    ("appointment", "Rendez-vous médical ou administratif", "موعد طبي أو إداري", "Medical or official appointment"),
    ("other", "Autre", "سبب آخر", "Other"),
]


async def forwards(m: Migrator) -> None:
    """Create the tables, the keys that make submissions and notices idempotent, RLS, national settings."""
    await m.create_tables(*ATTENDANCE_TABLES)
    await m.sql('CREATE UNIQUE INDEX attendance_session_unique ON "attendance_session" (slot_id, on_date)')
    await m.sql('CREATE INDEX attendance_session_day ON "attendance_session" (school_id, on_date)')
    await m.sql('CREATE UNIQUE INDEX attendance_mark_unique ON "attendance_mark" (session_id, student_id)')
    await m.sql('CREATE INDEX attendance_mark_student ON "attendance_mark" (student_id, on_date)')
    await m.sql('CREATE INDEX attendance_mark_class ON "attendance_mark" (class_id, on_date)')
    await m.sql('CREATE UNIQUE INDEX attendance_notice_unique ON "attendance_notice" (student_id, on_date, kind)')
    await m.sql('CREATE UNIQUE INDEX attendance_alert_unique ON "attendance_alert" (student_id, window_no)')
    await m.sql('CREATE UNIQUE INDEX attendance_reason_unique ON "attendance_reason" (COALESCE(tenant_id, 0), code)')
    await m.sql('CREATE UNIQUE INDEX attendance_rule_unique ON "attendance_rule" (COALESCE(tenant_id, 0))')
    for table in SCOPED_TABLES:
        await m.enable_rls(table._meta.tablename)
    for position, (code, fr, ar, en) in enumerate(REASONS):
        await m.sql(
            "INSERT INTO attendance_reason (tenant_id, code, label_fr, label_ar, label_en, position) "
            f"VALUES (NULL, '{code}', '{fr.replace(chr(39), chr(39) * 2)}', '{ar}', '{en}', {position})"
        )
    await m.sql("INSERT INTO attendance_rule (tenant_id, unjustified_hours, window_days) VALUES (NULL, 10, 30)")
