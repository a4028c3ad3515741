"""Everything a plugin may rely on, in one module: the documented surface of core.

A plugin imports from here and from nowhere else in core (``tests/test_plugin_contract.py``
checks this for ``plugins/*``). Each name is described, with an example, in
``docs/plugin_api.md``. What is not here is core's internals and may change without notice.

Groups:

* **hooks** — :data:`hookimpl` to implement madrasa's hooks, :data:`hookspec` to declare a
  plugin's own (through ``madrasa_addhooks``);
* **describing a plugin** — :class:`PluginInfo`, :class:`Permission`, :class:`MenuItem`,
  :class:`DashboardCard`, :class:`LessonOfWeek`, :class:`LessonLink`, :class:`Backend`;
* **requests** — :data:`Ctx`, :class:`RequestContext`, :class:`TenantInfo`, :class:`Scope`,
  :func:`scope_for`, :func:`parse_path`;
* **errors** — :class:`DomainError` and its kinds (:class:`Invalid`, :class:`Conflict`, …);
* **database** — :class:`Database`, :class:`SQL`, :func:`ident`, :func:`in_`, :func:`join`,
  :func:`scope_sql`, constraint helpers, :class:`Migrator` and :class:`MigrationSet`; a route's
  ``opt={"replica": True}`` (and ``Database.scoped(…, replica=…)``) lets its reads go to a read replica;
* **school structure** — :class:`school` (classes, pupils, teachers, timetables, the school year);
* **exchange between modules** — the structs of the gradebook hooks (:class:`Gradebook`, …);
* **personal data** — :class:`DataSection`, :class:`DataFile`, :class:`DataSubject` (the
  ``madrasa_personal_data`` hook) and :data:`RETENTION_KINDS` (``madrasa_retention_purge``);
* **events, jobs, audit** — :class:`Event` (``ctx.services.emit``), :class:`JobContext`,
  :func:`queue_of`, :func:`every`, :func:`covers_row`, :mod:`audit`;
* **files, mail, SMS, clock** — :class:`ContentPolicy` and friends, :func:`build_key`,
  :class:`Mail`, :class:`Sms`, :data:`SYSTEM_CLOCK`;
* **caches** — :class:`TTLCache` (this process), :class:`SharedCache` (``ctx.services.shared_cache``:
  Redis when ``MADRASA_CACHE_URL`` is set, else this process);
* **caches across processes** — :class:`InvalidatedCache`, :func:`on_invalidate`, :class:`InvalidationBus`
  (``ctx.services.invalidation.publish``) and core's topics (:data:`CALENDAR_TOPIC`);
* **notifications** — :class:`NotificationKind` (the ``madrasa_notification_kinds`` hook), :func:`notify`
  (send through the notification centre: inbox, e-mail, SMS, in each recipient's language),
  :func:`notification_deliveries` (what became of the messages sent with some keys) and :mod:`retry`
  (the platform's rule for retrying a message: tries, growing waits);
* **pages** — :func:`page`, :class:`Row`, :func:`module_home`, :func:`gettext_`, :func:`format_number`,
  :func:`format_percent`, :func:`format_day` (also the templates' `number`, `percent` and `day` filters),
  :func:`problem`, :func:`csv_cell`.
"""

from __future__ import annotations

from core import audit
from core.access import scope_for
from core.cache import TTLCache
from core.clock import SYSTEM_CLOCK, Clock, FixedClock
from core.context import Ctx, RequestContext
from core.csv_cells import csv_cell
from core.db import (
    INTEGRITY_ERRORS,
    UNIQUE_VIOLATIONS,
    Database,
    current_scope,
    scope_sql,
    unique_violation,
)
from core.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    Locked,
    NotFound,
    PreconditionRequired,
    TooLarge,
    UnsupportedMedia,
)
from core.events import Event
from core.exchange import (
    Gradebook,
    GradebookItem,
    GradebookProblem,
    GradebookResult,
    GradebookWrite,
    GradebookWritten,
    LineItemIn,
    ResultIn,
)
from core.hookspecs import hookimpl, hookspec
from core.i18n import LOCALES, format_day, format_number, format_percent, gettext_, locale_var
from core.invalidation import CALENDAR as CALENDAR_TOPIC
from core.invalidation import InvalidatedCache, InvalidationBus, on_invalidate
from core.jobs import JobContext, JobInfo, JobQueueError, covers_row, queue_of, visible_job
from core.mail import Mail
from core.migrate import MigrationSet, Migrator
from core.notifications import retry
from core.notifications.inbox import deliveries_of as notification_deliveries
from core.notifications.kinds import NotificationKind
from core.notifications.service import notify
from core.paging import Paged, paginate
from core.permissions import AUTHENTICATED, PUBLIC, ROLES, Permission
from core.plugin_kit import module_home
from core.plugins import Backend, DashboardCard, LessonLink, LessonOfWeek, MenuItem, PluginInfo
from core.privacy.export import DataFile, DataSection, DataSubject
from core.privacy.retention import KINDS as RETENTION_KINDS
from core.problems import http_exception_handler, problem
from core.rendering import Row, page
from core.schedule import every
from core.school import reads as _reads
from core.school import service as _school
from core.school.rules import normalise_pupil_code as _normalise_pupil_code
from core.scope import Scope
from core.services import Services
from core.shared_cache import SharedCache
from core.sms import MAX_SMS_CHARS, Sms, SmsGateway
from core.sql import SQL, ident, in_, join
from core.storage import (
    JPEG,
    PDF,
    PNG,
    WEBP,
    XLSX,
    ContentPolicy,
    ObjectNotFound,
    ObjectTooLarge,
    Storage,
    StorageError,
    StorageUnavailable,
    UnsupportedType,
    build_key,
)
from core.tenancy import TenantInfo, parse_path


class school:  # a namespace, read as ``school.get_class(…)``
    """Reading the school structure: the school year, classes, pupils, teachers and timetables.

    Every function takes the request context (or a database and scope) and reads only within it.
    """

    require_school = staticmethod(_school.require_school)
    current_year = staticmethod(_school.current_year)
    get_class = staticmethod(_school.get_class)
    list_classes = staticmethod(_school.list_classes)
    get_student = staticmethod(_school.get_student)
    class_students = staticmethod(_reads.class_students)
    teacher_classes = staticmethod(_reads.teacher_classes)
    teacher_slots = staticmethod(_reads.teacher_slots)
    class_slots = staticmethod(_reads.class_slots)
    children = staticmethod(_reads.children)
    own_student = staticmethod(_reads.own_student)
    is_teacher_at = staticmethod(_school.is_teacher_at)
    normalise_pupil_code = staticmethod(_normalise_pupil_code)


__all__ = [
    "AUTHENTICATED",
    "CALENDAR_TOPIC",
    "INTEGRITY_ERRORS",
    "JPEG",
    "LOCALES",
    "MAX_SMS_CHARS",
    "PDF",
    "PNG",
    "PUBLIC",
    "RETENTION_KINDS",
    "ROLES",
    "SQL",
    "SYSTEM_CLOCK",
    "UNIQUE_VIOLATIONS",
    "WEBP",
    "XLSX",
    "Backend",
    "Clock",
    "Conflict",
    "ContentPolicy",
    "Ctx",
    "DashboardCard",
    "DataFile",
    "DataSection",
    "DataSubject",
    "Database",
    "DomainError",
    "Event",
    "FixedClock",
    "Forbidden",
    "Gradebook",
    "GradebookItem",
    "GradebookProblem",
    "GradebookResult",
    "GradebookWrite",
    "GradebookWritten",
    "Invalid",
    "InvalidatedCache",
    "InvalidationBus",
    "JobContext",
    "JobInfo",
    "JobQueueError",
    "LessonLink",
    "LessonOfWeek",
    "LineItemIn",
    "Locked",
    "Mail",
    "MenuItem",
    "MigrationSet",
    "Migrator",
    "NotFound",
    "NotificationKind",
    "ObjectNotFound",
    "ObjectTooLarge",
    "Paged",
    "Permission",
    "PluginInfo",
    "PreconditionRequired",
    "RequestContext",
    "ResultIn",
    "Row",
    "Scope",
    "Services",
    "SharedCache",
    "Sms",
    "SmsGateway",
    "Storage",
    "StorageError",
    "StorageUnavailable",
    "TTLCache",
    "TenantInfo",
    "TooLarge",
    "UnsupportedMedia",
    "UnsupportedType",
    "audit",
    "build_key",
    "covers_row",
    "csv_cell",
    "current_scope",
    "every",
    "format_day",
    "format_number",
    "format_percent",
    "gettext_",
    "hookimpl",
    "hookspec",
    "http_exception_handler",
    "ident",
    "in_",
    "join",
    "locale_var",
    "module_home",
    "notification_deliveries",
    "notify",
    "on_invalidate",
    "page",
    "paginate",
    "parse_path",
    "problem",
    "queue_of",
    "retry",
    "school",
    "scope_for",
    "scope_sql",
    "unique_violation",
    "visible_job",
]
