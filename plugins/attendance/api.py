"""Attendance API (``/api/v1/attendance/…``): taking attendance, family reads and justifications, review,
rules and reasons, statistics, the at-risk list and CSV export. Controllers stay thin: the rules are in
:mod:`plugins.attendance.service`, the figures in :mod:`plugins.attendance.stats`."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Response, get, post, put
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery, JSONBody, QueryParameter

from core.plugin_api import (
    JPEG,
    PDF,
    PNG,
    SQL,
    WEBP,
    ContentPolicy,
    Ctx,
    ObjectNotFound,
    ObjectTooLarge,
    RequestContext,
    Scope,
    TenantInfo,
    UnsupportedType,
    build_key,
    ident,
    school,
    scope_for,
    scope_sql,
)
from plugins.attendance import alerts, common, justifications, notify, service, stats
from plugins.attendance.errors import API_HANDLERS, error

#: What a justification may carry: a scan or a photo of a certificate, at most 5 MiB.
ATTACHMENT_TYPES = frozenset({PDF, JPEG, PNG, WEBP})
ATTACHMENT_MAX_BYTES = 5 * 1024 * 1024
PHONE_RE = re.compile(r"^\+[1-9][0-9]{7,14}$")


class TakeIn(msgspec.Struct, forbid_unknown_fields=True):
    """A lesson's attendance: only the absent and late pupils; everyone else was present."""

    entries: Annotated[list[service.Entry], msgspec.Meta(max_length=200)] = []
    reason: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class ReviewIn(msgspec.Struct, forbid_unknown_fields=True):
    """The director's decision on a justification."""

    decision: Literal["accepted", "rejected"]
    note: Annotated[str, msgspec.Meta(max_length=2000)] = ""


class RuleIn(msgspec.Struct, forbid_unknown_fields=True):
    """A region's alert threshold: ``unjustified_hours`` within ``window_days``."""

    unjustified_hours: Annotated[int, msgspec.Meta(ge=1, le=500)]
    window_days: Annotated[int, msgspec.Meta(ge=1, le=366)] = 30


class ReasonIn(msgspec.Struct, forbid_unknown_fields=True):
    """A reason families may give."""

    code: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_]{1,24}$")]
    label_fr: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    label_ar: Annotated[str, msgspec.Meta(max_length=100)] = ""
    label_en: Annotated[str, msgspec.Meta(max_length=100)] = ""


class ReasonsIn(msgspec.Struct, forbid_unknown_fields=True):
    """A region's whole list of reasons."""

    reasons: Annotated[list[ReasonIn], msgspec.Meta(min_length=1, max_length=30)]


class PhoneIn(msgspec.Struct, forbid_unknown_fields=True):
    """A mobile number for SMS notices (E.164), or ``null`` to stop them."""

    phone: str | None


class JustifyForm(msgspec.Struct):
    """A family's justification (multipart): the absences (comma-separated ids), a reason, a note, a document."""

    absences: str
    reason: str
    note: str = ""
    file: UploadFile | None = None


# -- helpers -----------------------------------------------------------------------------------


#: The roles through which one sees a child's (or one's own) attendance.
FAMILY_ROLES = frozenset({"parent", "student"})


async def family_scope(ctx: RequestContext) -> Scope:
    """The caller's family scope: the schools of their children (or their own) where attendance is on.

    A family may span several schools, whatever school the URL names; the schools where the module is off
    are left out, so their pupils read as missing (404) in every family view and action.
    """
    assert ctx.identity is not None
    services = ctx.services
    grants = await services.grants.grants(ctx.identity.id)
    granted = scope_for(grants, services.permissions.roles_for("attendance.view") & FAMILY_ROLES, None)
    if not granted:
        return granted
    async with services.db.scoped(granted, write=False):
        rows = await services.db.fetch(
            SQL(
                # Two index lookups: an OR of both scans every pupil of the scope.
                "SELECT s.school_id FROM student s WHERE s.person_id = {} AND {} UNION "
                "SELECT s.school_id FROM guardianship g JOIN student s ON s.id = g.student_id "
                "WHERE g.person_id = {} AND {}",
                ctx.identity.id,
                scope_sql(granted, "s"),
                ctx.identity.id,
                scope_sql(granted, "s"),
            )
        )
    schools = set()
    for row in rows:
        node = await services.tenants.by_id(row["school_id"])
        if node is not None and "attendance" not in await services.disabled_for(node.path):
            schools.add(node.id)
    return Scope(frozenset(schools))


def node_filter(tenant: TenantInfo, alias: str = "c") -> SQL:
    """Rows of the tenant's subtree (a school, a province, a region; the platform: everything)."""
    column = {"school": "school_id", "province": "province_id", "region": "region_id"}.get(tenant.kind)
    return SQL("{} = {}", ident(alias, column), tenant.id) if column else SQL("1=1")


def parse_ids(text: str) -> list[int]:
    """``"12, 13"`` → ``[12, 13]``; 400 on anything else."""
    parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts) or len(parts) > 100:
        raise error("bad_absence_ids", "absences")
    return [int(p) for p in parts]


async def read_attachment(ctx: RequestContext, upload: UploadFile | None) -> tuple[bytes, str, str] | None:
    """The uploaded document, checked (size 413, type 415) before anything is written; ``None`` without one."""
    if upload is None or not (upload.filename or ""):
        return None
    content = await upload.read()
    if not content:
        return None
    limit = min(ATTACHMENT_MAX_BYTES, ctx.services.settings.max_upload_bytes)
    policy = ContentPolicy(max_bytes=limit, allowed_types=ATTACHMENT_TYPES)
    try:
        content_type = policy.check(len(content), upload.content_type or "", content)
    except ObjectTooLarge:
        raise error("document_too_large", "file", mib=max(1, limit // (1024 * 1024))) from None
    except UnsupportedType:
        raise error("document_type", "file") from None
    return content, content_type, upload.filename or "document"


async def justify(
    ctx: RequestContext,
    student_id: int,
    mark_ids: list[int],
    reason_code: str,
    note: str,
    attachment: tuple[bytes, str, str] | None,
) -> int:
    """Store a justification (and its document, last, inside the transaction)."""
    db = ctx.services.db
    scope = await family_scope(ctx)
    if len(note) > 2000:
        raise error("note_too_long", "note")
    storage = ctx.services.storage
    written: list[tuple[str, int]] = []
    try:
        async with db.scoped(scope):
            pupil = await justifications.family_pupil(ctx, scope_sql(scope, "s"), student_id, guardian_only=True)
            key = content_type = None
            size = None
            if attachment is not None:
                content, content_type, filename = attachment
                key = build_key(pupil["school_id"], "justifications", filename)
                size = len(content)
            created = await justifications.create_justification(
                ctx, pupil, mark_ids, reason_code, note.strip(), key, content_type, size
            )
            if attachment is not None and key is not None:
                written.append((key, pupil["school_id"]))
                await storage.put(key, attachment[0], attachment[1], tenant_id=pupil["school_id"])
    except BaseException:
        # The transaction did not commit: a document written (or half written) for it must not stay behind.
        for key, school_id in written:
            await storage.discard(key, tenant_id=school_id)
        raise
    return created


def term_period(cal: dict[str, Any], today: date) -> tuple[date, date]:
    """The current term up to today (the last begun term; the year's first otherwise)."""
    terms = cal["terms"]
    if not terms:
        return today, today
    begun = [(a, b) for _, a, b in terms if a <= today]
    start, end = begun[-1] if begun else (terms[0][1], terms[0][2])
    return start, min(end, today) if start <= today else end


async def period(
    ctx: RequestContext, region_id: int | None, start: date | None, end: date | None
) -> tuple[list[date], date, date]:
    """The school days of the asked period (default: the current term up to today)."""
    today = ctx.services.clock.today()
    cal = await service.calendar(ctx.services.db, region_id, start or today)
    default_start, default_end = term_period(cal, today)
    start, end = start or default_start, end or default_end
    if start > end:
        raise error("period_reversed", "from")
    if (end - start).days > 400:
        raise error("period_too_long", "to")
    return service.school_days(cal, start, min(end, today)), start, end


async def stats_csv(ctx: RequestContext, level: str, start: date | None, end: date | None) -> Response[str]:
    """The tenant's statistics as a CSV download (the API's and the portal's, which takes the session)."""
    result = await tenant_stats(ctx, level, start, end)
    ctx.extra["export_rows"] = len(result["groups"])  # recorded in the bulk-export audit entry
    name = f"attendance-{level}-{result['from']}-{result['to']}.csv"
    return Response(
        stats.to_csv(result["groups"]),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def tenant_stats(ctx: RequestContext, level: str, start: date | None, end: date | None) -> dict[str, Any]:
    """Statistics of the request's tenant grouped by ``level`` (below or at the tenant)."""
    tenant = ctx.require_tenant()
    order = ["platform", "region", "province", "school", "class"]
    if level not in stats.LEVELS or order.index(level) < order.index(tenant.kind):
        levels = ", ".join(x for x in order[order.index(tenant.kind) :] if x in stats.LEVELS)
        raise error("bad_level", "level", kind=tenant.kind, levels=levels)
    db = ctx.services.db
    async with db.scoped(ctx.scope, write=False):
        days, start, end = await period(ctx, tenant.region_id, start, end)
        rows = await stats.group_stats(db, level, days, start, end, node_filter(tenant), scope_sql(ctx.scope, "c"))
    return {"level": level, "from": start, "to": end, "days": len(days), "groups": rows}


def _json_row(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        if isinstance(v, datetime | date):
            out[k] = v.isoformat()
        elif isinstance(v, time):
            out[k] = v.strftime("%H:%M")
        else:
            out[k] = v
    return out


def justification_out(row: dict[str, Any], marks: list[dict[str, Any]]) -> dict[str, Any]:
    """A justification as the API shows it (the document as a link, never its storage key)."""
    return {
        "id": row["id"],
        "student_id": row["student_id"],
        "pupil": common.name_of(row, "fr"),
        "reason": row["reason_code"],
        "note": row["note"],
        "state": row["state"],
        "created_at": _json_row({"x": row["created_at"]})["x"],
        "reviewed_at": _json_row({"x": row["reviewed_at"]})["x"],
        "review_note": row["review_note"],
        "document": {"content_type": row["file_type"], "size": row["file_size"]} if row["file_key"] else None,
        "absences": [_json_row(m) for m in marks],
    }


# -- controllers --------------------------------------------------------------------------------


class TakeController(Controller):
    """Teachers (and the director, for corrections) take attendance for a lesson on a day."""

    path = "/api/v1/attendance"
    tags = ["attendance"]
    exception_handlers = API_HANDLERS

    @get("/today", opt={"permission": "attendance.take"})
    async def today(self, ctx: Ctx, on: FromQuery[date | None] = None) -> list[dict[str, Any]]:
        """The caller's lessons of the day at this school, and whether attendance was taken."""
        tenant = school.require_school(ctx)
        async with ctx.services.db.scoped(ctx.scope, write=False):
            rows = await service.teacher_day(ctx, tenant.id, on or ctx.services.clock.today())
        return [_json_row(r) for r in rows]

    @get("/sessions/{slot_id:int}/{on_date:date}", opt={"permission": "attendance.take"})
    async def get_session(self, ctx: Ctx, slot_id: FromPath[int], on_date: FromPath[date]) -> dict[str, Any]:
        """The class for a lesson on a day: every pupil present unless marked absent or late."""
        school.require_school(ctx)
        async with ctx.services.db.scoped(ctx.scope, write=False):
            _, view = await service.register_view(ctx, slot_id, on_date)
        return _json_row(view) | {"pupils": [_json_row(p) for p in view["pupils"]]}

    @put("/sessions/{slot_id:int}/{on_date:date}", opt={"permission": "attendance.take"})
    async def put_session(
        self, ctx: Ctx, slot_id: FromPath[int], on_date: FromPath[date], data: JSONBody[TakeIn]
    ) -> dict[str, Any]:
        """Take (or correct) attendance in one request: the absent and late pupils; the same request twice
        gives the same result and no second notice."""
        school.require_school(ctx)
        async with ctx.services.db.scoped(ctx.scope):
            slot = await service.get_slot(ctx, slot_id)
            taken = await service.take(ctx, slot, on_date, data.entries, data.reason)
        await notify.enqueue_delivery(ctx.services, slot, taken.notices, taken.alerts, ctx.person_id)
        await ctx.services.emit(taken.events)
        view = taken.view
        return _json_row(view) | {"pupils": [_json_row(p) for p in view["pupils"]]}


class FamilyController(Controller):
    """Parents and pupils: absences, notices, justifications."""

    path = "/api/v1/attendance"
    tags = ["attendance"]
    exception_handlers = API_HANDLERS

    @get("/pupils/{student_id:int}/absences", opt={"permission": "attendance.view", "replica": True})
    async def absences(self, ctx: Ctx, student_id: FromPath[int]) -> dict[str, Any]:
        """One's child's (or one's own) absences and lateness, with the state of their justification."""
        scope = await family_scope(ctx)
        db = ctx.services.db
        async with db.scoped(scope, write=False):
            pupil = await justifications.family_pupil(ctx, scope_sql(scope, "s"), student_id)
            marks = await justifications.pupil_marks(db, student_id)
            reasons = await justifications.reasons(db, pupil["region_id"])
        return {
            "student_id": student_id,
            "absences": [_json_row(m) for m in marks],
            "reasons": [
                {"code": r["code"], "label_fr": r["label_fr"], "label_ar": r["label_ar"], "label_en": r["label_en"]}
                for r in reasons
            ],
        }

    @get("/pupils/{student_id:int}/justifications", opt={"permission": "attendance.view", "replica": True})
    async def family_justifications(self, ctx: Ctx, student_id: FromPath[int]) -> list[dict[str, Any]]:
        """The justifications sent for one's child (or oneself) and their state."""
        scope = await family_scope(ctx)
        db = ctx.services.db
        async with db.scoped(scope, write=False):
            await justifications.family_pupil(ctx, scope_sql(scope, "s"), student_id)
            rows = await db.fetch(
                SQL(
                    "SELECT {} FROM attendance_justification j JOIN student st ON st.id = j.student_id "
                    "WHERE j.student_id = {} AND {} ORDER BY j.id DESC",
                    justifications.JUSTIFICATION_COLUMNS,
                    student_id,
                    scope_sql(scope, "j"),
                )
            )
            return [justification_out(r, await justifications.justification_marks(db, r["id"])) for r in rows]

    @post("/pupils/{student_id:int}/justifications", opt={"permission": "attendance.justify"}, status_code=201)
    async def create(
        self,
        ctx: Ctx,
        student_id: FromPath[int],
        data: Annotated[JustifyForm, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> dict[str, Any]:
        """Justify absences: a reason of the region's list, a note, optionally a PDF or photo (413/415 when
        too large or of another type; nothing is stored then)."""
        ids = parse_ids(data.absences)
        attachment = await read_attachment(ctx, data.file)
        created = await justify(ctx, student_id, ids, data.reason, data.note, attachment)
        return {"id": created, "state": "pending"}

    @get("/notices", opt={"permission": "attendance.view"})
    async def notices(self, ctx: Ctx) -> list[dict[str, Any]]:
        """The in-app notices about one's children (or oneself): absences of the day and alerts, newest first."""
        scope = await family_scope(ctx)
        db = ctx.services.db
        async with db.scoped(scope, write=False):
            rows = await family_notices(ctx, scope)
        return [_json_row(r) for r in rows]

    @put("/me/phone", opt={"permission": "attendance.justify"})
    async def phone(self, ctx: Ctx, data: JSONBody[PhoneIn]) -> dict[str, Any]:
        """Receive notices by SMS at this mobile number (E.164, ``+212…``), or stop with ``null``."""
        db = ctx.services.db
        phone = (data.phone or "").replace(" ", "")
        if phone and not PHONE_RE.match(phone):
            raise error("bad_phone", "phone")
        async with db.transaction():
            await db.execute("DELETE FROM attendance_contact WHERE person_id = {}", ctx.person_id)
            if phone:
                await db.execute(
                    "INSERT INTO attendance_contact (person_id, phone, updated_at) VALUES ({}, {}, {})",
                    ctx.person_id,
                    phone,
                    ctx.services.clock.utcnow(),
                )
        return {"phone": phone or None}


async def family_notices(ctx: RequestContext, scope: Scope, limit: int = 50) -> list[dict[str, Any]]:
    """Notices and alerts about the caller's children (or the caller as a pupil).

    A day's notice counts the day's marks as they are now; ``updated`` says that marks were recorded or corrected
    after its message went out (no second message is sent that day). Void notices (nothing left to say) are left
    out."""
    db = ctx.services.db
    family = SQL(
        "SELECT s.id FROM student s WHERE s.person_id = {} UNION SELECT g.student_id FROM guardianship g "
        "WHERE g.person_id = {}",
        ctx.person_id,
        ctx.person_id,
    )
    return await db.fetch(
        SQL(
            "SELECT * FROM (SELECT 'absence' AS kind, n.id, n.student_id, n.on_date, n.created_at, n.status, "
            "st.first_name, st.last_name, st.first_name_ar, st.last_name_ar, "
            "(SELECT COUNT(*) FROM attendance_mark m WHERE m.student_id = n.student_id AND m.on_date = n.on_date "
            "AND m.kind = 'absent') AS absent, (SELECT COUNT(*) FROM attendance_mark m "
            "WHERE m.student_id = n.student_id AND m.on_date = n.on_date AND m.kind = 'late') AS late, 0 AS minutes, "
            "CASE WHEN n.sent_at IS NOT NULL AND EXISTS (SELECT 1 FROM attendance_mark m JOIN attendance_session se "
            "ON se.id = m.session_id WHERE m.student_id = n.student_id AND m.on_date = n.on_date "
            "AND se.updated_at > n.sent_at) THEN 1 ELSE 0 END AS updated "
            "FROM attendance_notice n JOIN student st ON st.id = n.student_id "
            "WHERE n.student_id IN ({}) AND n.status <> 'void' AND {} "
            "UNION ALL SELECT 'alert' AS kind, a.id, a.student_id, NULL AS on_date, a.created_at, 'sent' AS status, "
            "st.first_name, st.last_name, st.first_name_ar, st.last_name_ar, 0 AS absent, 0 AS late, a.minutes, "
            "0 AS updated "
            "FROM attendance_alert a JOIN student st ON st.id = a.student_id WHERE a.student_id IN ({}) "
            "AND {}) x ORDER BY created_at DESC, id DESC LIMIT {}",
            family,
            scope_sql(scope, "n"),
            family,
            scope_sql(scope, "a"),
            limit,
        )
    )


async def document(ctx: RequestContext, justification_id: int) -> Response[bytes]:
    """A justification's document, for the family that sent it or the school's reviewers."""
    db = ctx.services.db
    staff = ctx.roles & common.REVIEWERS
    scope = ctx.scope if staff else await family_scope(ctx)
    async with db.scoped(scope, write=False):
        row = await justifications.get_justification(db, scope_sql(scope, "j"), justification_id)
        if not staff:
            await justifications.family_pupil(ctx, scope_sql(scope, "s"), row["student_id"])
        elif ctx.tenant is None or row["school_id"] != ctx.tenant.id:
            raise error("no_justification", justification_id=justification_id)
    if not row["file_key"]:
        raise error("no_document")
    try:
        data = await ctx.services.storage.get(row["file_key"], tenant_id=row["school_id"])
    except ObjectNotFound:
        raise error("document_missing") from None
    return Response(
        data,
        media_type=row["file_type"],
        headers={"Content-Disposition": "inline", "X-Content-Type-Options": "nosniff", "Cache-Control": "private"},
    )


class ReviewController(Controller):
    """The director reviews justifications."""

    path = "/api/v1/attendance/justifications"
    tags = ["attendance"]
    exception_handlers = API_HANDLERS

    @get("/", opt={"permission": "attendance.review"})
    async def list_(
        self, ctx: Ctx, state_: Annotated[str, QueryParameter(name="state")] = "pending"
    ) -> list[dict[str, Any]]:
        """The school's justifications in a state (``pending`` by default)."""
        tenant = school.require_school(ctx)
        state = state_
        if state not in common.JUSTIFICATION_STATES:
            raise error("bad_state", "state")
        db = ctx.services.db
        async with db.scoped(ctx.scope, write=False):
            rows = await db.fetch(
                SQL(
                    "SELECT {} FROM attendance_justification j JOIN student st ON st.id = j.student_id "
                    "WHERE j.school_id = {} AND j.state = {} AND {} ORDER BY j.id",
                    justifications.JUSTIFICATION_COLUMNS,
                    tenant.id,
                    state,
                    scope_sql(ctx.scope, "j"),
                )
            )
            return [justification_out(r, await justifications.justification_marks(db, r["id"])) for r in rows]

    @get("/{justification_id:int}", opt={"permission": "attendance.review"})
    async def get_one(self, ctx: Ctx, justification_id: FromPath[int]) -> dict[str, Any]:
        """One justification of the school."""
        tenant = school.require_school(ctx)
        db = ctx.services.db
        async with db.scoped(ctx.scope, write=False):
            row = await justifications.get_justification(db, scope_sql(ctx.scope, "j"), justification_id, tenant.id)
            return justification_out(row, await justifications.justification_marks(db, row["id"]))

    # The document as sent: a PDF or a photo (ATTACHMENT_TYPES), served with its own type.
    @get("/{justification_id:int}/document", opt={"permission": "attendance.view"}, media_type="*/*")
    async def get_document(self, ctx: Ctx, justification_id: FromPath[int]) -> Response[bytes]:
        """The document attached to a justification (its family, or the school's reviewers)."""
        return await document(ctx, justification_id)

    @post("/{justification_id:int}/review", opt={"permission": "attendance.review"}, status_code=200)
    async def review(self, ctx: Ctx, justification_id: FromPath[int], data: JSONBody[ReviewIn]) -> dict[str, Any]:
        """Accept or reject a pending justification (409 when it was already decided)."""
        tenant = school.require_school(ctx)
        db = ctx.services.db
        async with db.scoped(ctx.scope):
            row = await justifications.get_justification(db, scope_sql(ctx.scope, "j"), justification_id, tenant.id)
            done = await justifications.review(ctx, row, data.decision, data.note.strip())
            return justification_out(done, await justifications.justification_marks(db, row["id"]))


class SettingsController(Controller):
    """A region's reasons and alert threshold."""

    path = "/api/v1/attendance"
    tags = ["attendance"]
    exception_handlers = API_HANDLERS

    @get("/reasons", opt={"permission": "attendance.view"})
    async def get_reasons(self, ctx: Ctx) -> list[dict[str, Any]]:
        """The reasons families may give here (the region's list, else the national one)."""
        tenant = ctx.require_tenant()
        async with ctx.services.db.scoped(ctx.scope, write=False):
            rows = await justifications.reasons(ctx.services.db, tenant.region_id)
        return [
            {k: r[k] for k in ("code", "label_fr", "label_ar", "label_en")}
            | {"source": "region" if r["tenant_id"] else "national"}
            for r in rows
        ]

    @put("/reasons", opt={"permission": "attendance.configure"})
    async def put_reasons(self, ctx: Ctx, data: JSONBody[ReasonsIn]) -> list[dict[str, Any]]:
        """Replace the region's list of reasons (region administrators, on the region)."""
        region = region_of(ctx)
        codes = [r.code for r in data.reasons]
        if len(set(codes)) != len(codes):
            raise error("duplicate_reason", "reasons")
        async with ctx.services.db.scoped(ctx.scope):
            await justifications.set_reasons(ctx, region, [msgspec.structs.asdict(r) for r in data.reasons])
        return await self.get_reasons.fn(self, ctx)  # type: ignore[no-any-return]

    @get("/rules", opt={"permission": "attendance.view"})
    async def get_rule(self, ctx: Ctx) -> dict[str, int]:
        """The alert threshold in force here."""
        tenant = ctx.require_tenant()
        async with ctx.services.db.scoped(ctx.scope, write=False):
            return await alerts.rule_for(ctx.services.db, tenant.region_id)

    @put("/rules", opt={"permission": "attendance.configure"})
    async def put_rule(self, ctx: Ctx, data: JSONBody[RuleIn]) -> dict[str, int]:
        """Set the region's alert threshold (region administrators, on the region)."""
        region = region_of(ctx)
        async with ctx.services.db.scoped(ctx.scope):
            await alerts.set_rule(ctx, region, data.unjustified_hours, data.window_days)
            return await alerts.rule_for(ctx.services.db, region.id)


def region_of(ctx: RequestContext) -> TenantInfo:
    """The request's tenant, which must be a region the caller administers."""
    tenant = ctx.require_tenant()
    if tenant.kind != "region":
        raise error("not_a_region")
    if not ctx.scope.covers(tenant.path):
        raise error("not_your_region")
    return tenant


class StatsController(Controller):
    """Statistics, alerts and the at-risk list for directors and administrators."""

    path = "/api/v1/attendance"
    tags = ["attendance"]
    exception_handlers = API_HANDLERS

    @get("/stats", opt={"permission": "attendance.stats", "replica": True})
    async def get_stats(
        self,
        ctx: Ctx,
        level: FromQuery[str] = "school",
        from_: Annotated[date | None, QueryParameter(name="from")] = None,
        to: FromQuery[date | None] = None,
    ) -> dict[str, Any]:
        """Absence rate, justified and unjustified hours and lateness per region, province, school or class."""
        result = await tenant_stats(ctx, level, from_, to)
        return _json_row(result)

    @get(
        "/stats.csv",
        opt={"permission": "attendance.stats", "bulk_export": "attendance.stats", "replica": True},
        media_type="text/csv",
    )
    async def get_csv(
        self,
        ctx: Ctx,
        level: FromQuery[str] = "school",
        from_: Annotated[date | None, QueryParameter(name="from")] = None,
        to: FromQuery[date | None] = None,
    ) -> Response[str]:
        """The same statistics as CSV."""
        return await stats_csv(ctx, level, from_, to)

    @get("/classes/{class_id:int}/stats", opt={"permission": "attendance.stats", "replica": True})
    async def class_stats(
        self,
        ctx: Ctx,
        class_id: FromPath[int],
        from_: Annotated[date | None, QueryParameter(name="from")] = None,
        to: FromQuery[date | None] = None,
    ) -> dict[str, Any]:
        """Per pupil of a class of this school."""
        tenant = school.require_school(ctx)
        db = ctx.services.db
        async with db.scoped(ctx.scope, write=False):
            klass = await db.fetchrow(
                SQL(
                    "SELECT c.id, c.name FROM school_class c WHERE c.id = {} AND c.school_id = {} AND {}",
                    class_id,
                    tenant.id,
                    scope_sql(ctx.scope, "c"),
                )
            )
            if klass is None:
                raise error("no_class", class_id=class_id)
            days, start, end = await period(ctx, tenant.region_id, from_, to)
            rows = await stats.pupil_stats(db, days, start, end, class_id)
        return {
            "class_id": class_id,
            "name": klass["name"],
            "from": start.isoformat(),
            "to": end.isoformat(),
            "pupils": rows,
        }

    @get("/at-risk", opt={"permission": "attendance.stats", "replica": True})
    async def get_at_risk(self, ctx: Ctx) -> dict[str, Any]:
        """Pupils at risk of dropping out in this school, province or region: unjustified hours over the threshold."""
        tenant = ctx.require_tenant()
        async with ctx.services.db.scoped(ctx.scope, write=False):
            today = ctx.services.clock.today()
            result = await alerts.at_risk(ctx.services.db, tenant, today, scope_sql(ctx.scope, "m"))
        return {
            "rule": result["rule"],
            "from": result["from"].isoformat(),
            "to": result["to"].isoformat(),
            "pupils": [
                _json_row(r) | {"unjustified_hours": round(r["minutes"] / 60, 1), "name": common.name_of(r, "fr")}
                for r in result["pupils"]
            ],
        }

    @get("/alerts", opt={"permission": "attendance.view"})
    async def alerts(self, ctx: Ctx) -> list[dict[str, Any]]:
        """Alerts raised in this school: the director and the supervisor see all, a homeroom teacher those of
        their classes."""
        tenant = school.require_school(ctx)
        if not ctx.roles & {"school_director", "supervisor", "teacher", "platform_admin"}:
            raise error("staff_only")
        db = ctx.services.db
        whole = ctx.roles & (common.DIRECTORS | {"supervisor"})
        mine = SQL() if whole else SQL(" AND c.homeroom_teacher_id = {}", ctx.person_id)
        async with db.scoped(ctx.scope, write=False):
            rows = await db.fetch(
                SQL(
                    "SELECT a.id, a.student_id, a.class_id, c.name AS class_name, a.minutes, a.created_at, "
                    "st.first_name, st.last_name, st.national_code FROM attendance_alert a "
                    "JOIN student st ON st.id = a.student_id JOIN school_class c ON c.id = a.class_id "
                    "WHERE a.school_id = {}{} AND {} ORDER BY a.id DESC LIMIT 200",
                    tenant.id,
                    mine,
                    scope_sql(ctx.scope, "a"),
                )
            )
        return [_json_row(r) | {"unjustified_hours": round(r["minutes"] / 60, 1)} for r in rows]


ATTENDANCE_API: list[Any] = [TakeController, FamilyController, ReviewController, SettingsController, StatsController]
