"""Tables of the attendance module.

Presence is the default and is never stored: a **session** row says that attendance was taken for
one timetable slot on one date, and **mark** rows exist only for the pupils absent or late in it.
Expected hours come from the timetable × the school days (terms minus holidays) × enrolments.
A **notice** is the one message per pupil and day sent to the family (unique per pupil and day);
a **justification** is a family's excuse for some absences, reviewed by the director; an **alert**
records a threshold crossed; a **delivery** is a notice's message to one guardian on one channel.
Tenant-owned tables carry the scope columns of their school; reasons and rules are regional settings
(national when ``tenant_id`` is NULL).
"""

from __future__ import annotations

from piccolo.columns import Boolean, Date, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.table import Table


class _Scoped(Table):
    region_id = Integer(index=True)
    province_id = Integer()
    school_id = Integer(index=True)


class AttendanceSession(_Scoped, tablename="attendance_session"):
    """Attendance taken for a timetable slot on a date (everyone not marked was present)."""

    id = Serial(primary_key=True)
    slot_id = Integer()
    class_id = Integer(index=True)
    on_date = Date()
    minutes = Integer()  # length of the session
    teacher_id = Integer(index=True)
    taken_by = Integer()
    taken_at = Timestamptz()
    updated_at = Timestamptz()
    version = Integer(default=1)


class AttendanceMark(_Scoped, tablename="attendance_mark"):
    """A pupil absent or late in a session."""

    id = Serial(primary_key=True)
    session_id = Integer()
    class_id = Integer()
    student_id = Integer()
    on_date = Date()
    kind = Varchar(length=8)  # absent, late
    minutes = Integer()  # absent: the session's length; late: minutes late
    justification_id = Integer(null=True, default=None)
    justified = Boolean(default=False)


class AttendanceNotice(_Scoped, tablename="attendance_notice"):
    """The family's message about a pupil for a day: at most one (unique pupil × day)."""

    id = Serial(primary_key=True)
    student_id = Integer()
    on_date = Date()
    kind = Varchar(length=8, default="absence")  # absence, alert
    created_at = Timestamptz()
    status = Varchar(length=8, default="pending")  # pending, sending, retrying, sent, failed, void
    sent_at = Timestamptz(null=True, default=None)
    channels = Varchar(length=40, default="")
    claimed_at = Timestamptz(null=True, default=None)  # when delivery started (added by migration m0002)
    # Delivery runs that met a failure, when the next one is due, and why the last one failed (m0003).
    attempts = Integer(default=0)
    next_attempt_at = Timestamptz(null=True, default=None)
    last_error = Text(default="")


class AttendanceDelivery(_Scoped, tablename="attendance_delivery"):
    """One message to one person on one channel (``email``, ``sms``): a notice's to a guardian, or an alert's
    e-mail to a guardian, the homeroom teacher or a director. Sent once, retried with backoff (m0003)."""

    id = Serial(primary_key=True)
    notice_id = Integer(null=True, default=None)
    alert_id = Integer(null=True, default=None)
    person_id = Integer()
    channel = Varchar(length=8)
    status = Varchar(length=8, default="retrying")  # sending (alerts), retrying, sent, failed, dropped
    attempts = Integer(default=0)
    next_attempt_at = Timestamptz(null=True, default=None)
    last_error = Text(default="")
    sent_at = Timestamptz(null=True, default=None)


class AttendanceJustification(_Scoped, tablename="attendance_justification"):
    """A family's excuse for some absences: a reason, a note, an optional document; reviewed by the school."""

    id = Serial(primary_key=True)
    student_id = Integer(index=True)
    submitted_by = Integer()
    reason_code = Varchar(length=24)
    note = Text(default="")
    file_key = Varchar(length=1024, null=True, default=None)
    file_type = Varchar(length=120, null=True, default=None)
    file_size = Integer(null=True, default=None)
    state = Varchar(length=10, default="pending")  # pending, accepted, rejected
    created_at = Timestamptz()
    reviewed_by = Integer(null=True, default=None)
    reviewed_at = Timestamptz(null=True, default=None)
    review_note = Text(default="")


class AttendanceAlert(_Scoped, tablename="attendance_alert"):
    """A pupil crossed a threshold of unjustified hours (once per rule window)."""

    id = Serial(primary_key=True)
    student_id = Integer(index=True)
    class_id = Integer()
    window_no = Integer()  # days since 2000-01-01 divided by the rule's window length
    minutes = Integer()
    created_at = Timestamptz()


class AttendanceReason(Table, tablename="attendance_reason"):
    """A reason a family may give; a region's own list replaces the national one."""

    id = Serial(primary_key=True)
    tenant_id = Integer(null=True, default=None)
    code = Varchar(length=24)
    label_fr = Varchar(length=100)
    label_ar = Varchar(length=100, default="")
    label_en = Varchar(length=100, default="")
    position = Integer(default=0)


class AttendanceRule(Table, tablename="attendance_rule"):
    """The alert threshold of a region (national when ``tenant_id`` is NULL)."""

    id = Serial(primary_key=True)
    tenant_id = Integer(null=True, default=None)
    unjustified_hours = Integer(default=10)
    window_days = Integer(default=30)


class AttendanceContact(Table, tablename="attendance_contact"):
    """A person's mobile number for SMS notices (personal, not a tenant's)."""

    id = Serial(primary_key=True)
    person_id = Integer(unique=True)
    phone = Varchar(length=16)
    updated_at = Timestamptz()


SCOPED_TABLES: list[type[Table]] = [
    AttendanceSession,
    AttendanceMark,
    AttendanceNotice,
    AttendanceJustification,
    AttendanceAlert,
    AttendanceDelivery,
]
ATTENDANCE_TABLES: list[type[Table]] = [*SCOPED_TABLES, AttendanceReason, AttendanceRule, AttendanceContact]
