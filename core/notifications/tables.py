"""The notification centre's tables.

Tenant-owned (scope columns, row-level security on PostgreSQL): ``notification_batch`` (what a module asked to
send, written by :func:`core.notifications.service.notify`), ``notification`` (one row per notification and
recipient: the in-app inbox) and ``notification_delivery`` (one row per notification and channel beyond the
inbox: e-mail or SMS, with its tries).

Platform tables that only core's services touch (no scope columns, as ``retention_period``):
``notification_preference`` (a person's channels and digest per kind), ``notification_setting`` (a person's SMS
number and quiet hours), ``notification_policy`` (a school's or region's rules per kind: SMS allowed, mandatory)
and ``notification_rate`` (messages sent per person, channel and hour: the rate limit, shared by every process).
"""

from __future__ import annotations

from piccolo.columns import Boolean, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.table import Table


class NotificationBatch(Table, tablename="notification_batch"):
    """One ``notify()`` call: kind, recipients, message id and values, link; expanded once by the delivery job."""

    id = Varchar(length=80, primary_key=True)
    region_id = Integer(null=True, default=None, index=True)
    province_id = Integer(null=True, default=None)
    school_id = Integer(null=True, default=None, index=True)
    tenant_id = Integer()
    kind = Varchar(length=64)
    #: JSON list of person ids.
    recipients = Text(default="[]")
    msgid = Text(default="")
    #: JSON object of the message's values.
    params = Text(default="{}")
    link = Varchar(length=500, default="")
    status = Varchar(length=8, default="pending", index=True)
    created_at = Timestamptz()
    done_at = Timestamptz(null=True, default=None)


class Notification(Table, tablename="notification"):
    """A notification as one recipient reads it, in their language; ``read_at`` once opened."""

    id = Serial(primary_key=True)
    region_id = Integer(null=True, default=None, index=True)
    province_id = Integer(null=True, default=None)
    school_id = Integer(null=True, default=None, index=True)
    tenant_id = Integer()
    batch_id = Varchar(length=80)
    person_id = Integer(index=True)
    kind = Varchar(length=64)
    text = Text(default="")
    link = Varchar(length=500, default="")
    created_at = Timestamptz()
    read_at = Timestamptz(null=True, default=None)


class NotificationDelivery(Table, tablename="notification_delivery"):
    """A notification's e-mail or SMS: ``queued`` (maybe until quiet hours end), ``digest`` (waits for the
    day's digest), ``sending``, ``sent``, ``retrying`` or ``failed``."""

    id = Serial(primary_key=True)
    region_id = Integer(null=True, default=None, index=True)
    province_id = Integer(null=True, default=None)
    school_id = Integer(null=True, default=None, index=True)
    notification_id = Integer()
    person_id = Integer()
    channel = Varchar(length=8)
    status = Varchar(length=8, default="queued")
    attempts = Integer(default=0)
    next_attempt_at = Timestamptz(null=True, default=None)
    last_error = Text(default="")
    sent_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz()


class NotificationPreference(Table, tablename="notification_preference"):
    """A person's choice for one kind: e-mail, SMS, and a daily digest instead of single e-mails."""

    id = Serial(primary_key=True)
    person_id = Integer(index=True)
    kind = Varchar(length=64)
    email = Boolean(default=False)
    sms = Boolean(default=False)
    digest = Boolean(default=False)
    updated_at = Timestamptz()


class NotificationSetting(Table, tablename="notification_setting"):
    """A person's SMS number and quiet hours (minutes after local midnight; none: no quiet hours)."""

    id = Serial(primary_key=True)
    person_id = Integer(unique=True)
    phone = Varchar(length=16, default="")
    quiet_start = Integer(null=True, default=None)
    quiet_end = Integer(null=True, default=None)
    updated_at = Timestamptz()


class NotificationPolicy(Table, tablename="notification_policy"):
    """A school's, province's, region's or the platform's rule for a kind: SMS allowed, mandatory."""

    id = Serial(primary_key=True)
    tenant_id = Integer(index=True)
    kind = Varchar(length=64)
    sms_allowed = Boolean(default=False)
    mandatory = Boolean(default=False)
    updated_by = Integer(null=True, default=None)
    updated_at = Timestamptz()


class NotificationRate(Table, tablename="notification_rate"):
    """Messages sent to a person on a channel in the hour starting at ``window_start``."""

    id = Serial(primary_key=True)
    person_id = Integer()
    channel = Varchar(length=8)
    window_start = Timestamptz()
    sent = Integer(default=0)


NOTIFICATION_TABLES: list[type[Table]] = [
    NotificationBatch,
    Notification,
    NotificationDelivery,
    NotificationPreference,
    NotificationSetting,
    NotificationPolicy,
    NotificationRate,
]
#: The tables with scope columns (row-level security).
SCOPED_TABLES = ("notification_batch", "notification", "notification_delivery")
