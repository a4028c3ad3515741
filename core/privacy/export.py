"""The right of access: everything held about a person or a pupil, as one zip made by a background job.

The archive holds ``README.txt``, ``manifest.json`` (who, when, each section with its row count, each file
with its size and SHA-256), ``data/<section>.json`` per section and ``files/…`` (the files the person
uploaded, a pupil's report cards, justification documents). Core writes the sections it owns (account,
roles, guardianships, login records, audit entries, stored files, the pupil record); every plugin adds its
own through ``madrasa_personal_data``. Every plugin is asked, whether or not its module is switched on for a
school: the law covers everything held, not only what a portal shows today.

The subject is read with the platform scope (a person's data lies in several regions) and every query
filters by the subject's ids. Who may ask for whom is checked when the job is queued
(:func:`subject_for`) and again when it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from core import audit
from core.db import Database
from core.errors import NotFound
from core.jobs import JobContext, register_job
from core.plugins import resolve
from core.scope import Scope
from core.sql import SQL, in_, join
from core.storage import StorageError, check_key, sanitise_filename, tenant_of

KIND = "privacy.export"
#: Archives are removed this many seconds after they were made (at the next export).
KEEP_SECONDS = 7 * 24 * 3600


class DataFile(msgspec.Struct, frozen=True):
    """A stored file that belongs in a subject's archive (read from storage with its tenant)."""

    key: str
    filename: str
    tenant_id: int


class DataSection(msgspec.Struct):
    """One part of a subject's archive: ``data/<name>.json`` with ``rows``, plus ``files``.

    ``name`` is ``<plugin>.<what>`` (``grades.marks``); ``rows`` are JSON-able dicts (dates, decimals
    allowed); ``description`` says in plain words what the rows are.
    """

    name: str
    rows: list[dict[str, Any]]
    description: str = ""
    files: list[DataFile] = []


class DataSubject(msgspec.Struct, frozen=True):
    """Whose data is collected: a person (their account), their pupil records, or both.

    A guardian's request for a child has the child's pupil record and, if the child has a login, its person.
    """

    person_id: int | None
    student_ids: tuple[int, ...] = ()


# --------------------------------------------------------------------------- who may ask for whom


async def subject_for(db: Database, requester: int, student_id: int | None) -> DataSubject:
    """The subject of a request: oneself, or a pupil one is the guardian of (or is) — else :class:`NotFound`."""
    async with db.scoped(Scope.everything(), write=False):
        if student_id is None:
            own = await db.fetch("SELECT id FROM student WHERE person_id = {} ORDER BY id", requester)
            return DataSubject(person_id=requester, student_ids=tuple(r["id"] for r in own))
        row = await db.fetchrow(
            "SELECT s.id, s.person_id FROM student s WHERE s.id = {} AND (s.person_id = {} OR EXISTS "
            "(SELECT 1 FROM guardianship g WHERE g.student_id = s.id AND g.person_id = {}))",
            student_id,
            requester,
            requester,
        )
    if row is None:
        raise NotFound("No pupil {id} among your children.", id=student_id)
    return DataSubject(person_id=row["person_id"], student_ids=(row["id"],))


# --------------------------------------------------------------------------- core's sections


async def _rows(db: Database, query: str, *args: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in await db.fetch(query, *args)]


async def person_sections(db: Database, person_id: int) -> list[DataSection]:
    """Core's data about a person: account, roles, guardianships, staff record, logins, invitations, notifications,
    files."""
    account = await _rows(
        db,
        "SELECT id, email, full_name, full_name_ar, locale, active, created_at, "
        "(password_hash IS NOT NULL) AS has_password FROM person WHERE id = {}",
        person_id,
    )
    if not account:
        return []
    for key in ("has_password", "active"):  # SQLite answers 0/1
        account[0][key] = bool(account[0][key])
    email = account[0]["email"]
    files = await _rows(
        db,
        "SELECT id, key, tenant_id, category, filename, content_type, size, created_at FROM stored_file "
        "WHERE owner_id = {} ORDER BY id",
        person_id,
    )
    return [
        DataSection("account", account, "Your account (the password itself is never stored, only a hash)."),
        DataSection(
            "roles",
            await _rows(
                db,
                "SELECT m.role, t.slug AS tenant, t.kind AS tenant_kind, p.slug AS programme, m.created_at "
                "FROM membership m LEFT JOIN tenant t ON t.id = m.tenant_id "
                "LEFT JOIN programme p ON p.id = m.programme_id WHERE m.person_id = {} ORDER BY m.id",
                person_id,
            ),
            "Roles held, where.",
        ),
        DataSection(
            "guardianships",
            await _rows(
                db,
                "SELECT g.relation, s.national_code, s.first_name, s.last_name, t.slug AS school "
                "FROM guardianship g JOIN student s ON s.id = g.student_id JOIN tenant t ON t.id = s.school_id "
                "WHERE g.person_id = {} ORDER BY g.id",
                person_id,
            ),
            "Pupils you are the guardian of.",
        ),
        DataSection(
            "staff",
            await _rows(
                db,
                "SELECT st.staff_number, st.grade, t.slug AS school FROM staff st "
                "JOIN tenant t ON t.id = st.school_id WHERE st.person_id = {}",
                person_id,
            ),
            "Staff record.",
        ),
        DataSection(
            "login_sessions",
            await _rows(
                db,
                "SELECT a.kind, t.slug AS tenant, a.created_at, a.expires_at, a.revoked_at, a.user_agent, a.ip "
                "FROM auth_session a LEFT JOIN tenant t ON t.id = a.tenant_id WHERE a.person_id = {} "
                "ORDER BY a.created_at",
                person_id,
            ),
            "Logins (browser sessions and app tokens): when, from which device and address.",
        ),
        DataSection(
            "failed_logins",
            await _rows(
                db,
                "SELECT at, ip, (device <> '') AS known_device FROM login_attempt WHERE email = {} ORDER BY at",
                email,
            ),
            "Failed login attempts on your address (and whether they came from a device you had used).",
        ),
        DataSection(
            "password_resets",
            await _rows(
                db, "SELECT expires_at, used_at FROM password_reset WHERE person_id = {} ORDER BY id", person_id
            ),
            "Password-reset links sent to you.",
        ),
        DataSection(
            "guardian_invitations",
            await _rows(
                db,
                "SELECT full_name, relation, created_at, expires_at, used_at FROM guardian_invitation "
                "WHERE email = {} OR person_id = {} ORDER BY id",
                email,
                person_id,
            ),
            "Invitations to link you to a pupil.",
        ),
        DataSection(
            "notifications",
            await _rows(
                db,
                "SELECT n.kind, n.text, n.link, t.slug AS tenant, n.created_at, n.read_at FROM notification n "
                "LEFT JOIN tenant t ON t.id = n.tenant_id WHERE n.person_id = {} ORDER BY n.id",
                person_id,
            ),
            "Notifications sent to you, and when you read them.",
        ),
        DataSection(
            "notification_messages",
            await _rows(
                db,
                "SELECT n.kind, d.channel, d.status, d.attempts, d.sent_at FROM notification_delivery d "
                "JOIN notification n ON n.id = d.notification_id WHERE d.person_id = {} ORDER BY d.id",
                person_id,
            ),
            "E-mails and SMS of those notifications.",
        ),
        DataSection(
            "notification_preferences",
            [
                *await _rows(
                    db,
                    "SELECT kind, email, sms, digest, updated_at FROM notification_preference WHERE person_id = {} "
                    "ORDER BY kind",
                    person_id,
                ),
                *await _rows(
                    db,
                    "SELECT phone, quiet_start, quiet_end, updated_at FROM notification_setting WHERE person_id = {}",
                    person_id,
                ),
            ],
            "How you chose to receive notifications: channels per kind, quiet hours (minutes after midnight), "
            "SMS number.",
        ),
        DataSection(
            "files",
            [{k: v for k, v in f.items() if k != "key"} for f in files],
            "Files you uploaded (their content is in files/).",
            [DataFile(f["key"], f"{f['id']}-{f['filename']}", f["tenant_id"]) for f in files],
        ),
    ]


async def student_sections(db: Database, student_ids: tuple[int, ...]) -> list[DataSection]:
    """Core's data about pupils: the pupil record, enrolments and guardians."""
    if not student_ids:
        return []
    ids = in_(list(student_ids))
    return [
        DataSection(
            "pupil",
            await _rows(
                db,
                "SELECT s.id, s.national_code, s.first_name, s.last_name, s.first_name_ar, s.last_name_ar, "
                "s.birth_date, s.gender, t.slug AS school, s.created_at FROM student s "
                "JOIN tenant t ON t.id = s.school_id WHERE s.id IN {} ORDER BY s.id",
                ids,
            ),
            "The pupil record.",
        ),
        DataSection(
            "enrolments",
            await _rows(
                db,
                "SELECT e.student_id, y.label AS school_year, c.name AS class_name, e.starts_on, e.ends_on, e.status "
                "FROM enrolment e JOIN school_class c ON c.id = e.class_id "
                "JOIN school_year y ON y.id = e.school_year_id WHERE e.student_id IN {} ORDER BY e.starts_on",
                ids,
            ),
            "Classes the pupil was enrolled in.",
        ),
        DataSection(
            "guardians",
            await _rows(
                db,
                "SELECT g.student_id, p.full_name, g.relation FROM guardianship g JOIN person p ON p.id = g.person_id "
                "WHERE g.student_id IN {} ORDER BY g.id",
                ids,
            ),
            "The pupil's guardians.",
        ),
    ]


async def audit_section(db: Database, subject: DataSubject) -> DataSection:
    """Audit entries made by the person, or about the person or the pupils.

    An entry the person made about someone else (a teacher's change of a pupil's mark) keeps when, what
    and which object, not its before/after values nor its reason: those are the other person's data.
    """
    own = {("student", str(i)) for i in subject.student_ids}
    about = [SQL("(object_type = 'student' AND object_id IN {})", in_(sorted(i for _, i in own)))]
    if subject.person_id is not None:
        own.add(("person", str(subject.person_id)))
        about += [
            SQL("actor_id = {}", subject.person_id),
            SQL("(object_type = 'person' AND object_id = {})", str(subject.person_id)),
        ]
    rows = await _rows(
        db,
        "SELECT at, action, object_type, object_id, tenant_id, before, after, reason FROM audit_log "
        "WHERE {} ORDER BY id",
        join(" OR ", about),
    )
    for row in rows:
        if (row["object_type"], row["object_id"]) not in own and row["action"] not in SUBJECT_ACTIONS:
            row["before"] = row["after"] = None
            row["reason"] = ""
            continue
        for key in ("before", "after"):
            if isinstance(row[key], str | bytes):
                row[key] = msgspec.json.decode(row[key])
    return DataSection(
        "audit",
        rows,
        "Audit entries: changes made about you, and what you did (without other people's data).",
    )


#: Audit actions whose details are the actor's own doing, whatever object they name.
SUBJECT_ACTIONS = frozenset({"bulk_export", "privacy.export", "privacy.export_download"})


# --------------------------------------------------------------------------- collecting and writing


async def collect(services: Any, subject: DataSubject) -> list[DataSection]:
    """Every section about the subject: core's, then each plugin's (``madrasa_personal_data``)."""
    db = services.db
    sections: list[DataSection] = []
    async with db.scoped(Scope.everything(), write=False):
        if subject.person_id is not None:
            sections += await person_sections(db, subject.person_id)
        sections += await student_sections(db, subject.student_ids)
        sections.append(await audit_section(db, subject))
        for _plugin, call in services.plugins.callers("madrasa_personal_data"):
            for answer in call(db=db, subject=subject):
                value = await resolve(answer)
                sections.extend(value or [])
    return sections


README = """Personal data held by madrasa
==============================

This archive holds everything the platform keeps about {who}, as asked on {when}
(right of access, Moroccan law 09-08 on the protection of personal data).

- manifest.json: the sections, how many records each holds, and the files with their SHA-256;
- data/<section>.json: the records of one section, as JSON;
- files/: the documents themselves.

To have something corrected or deleted, contact the school or the academy that holds it.
"""


def _encode(value: Any) -> bytes:
    return msgspec.json.format(msgspec.json.encode(value, enc_hook=str), indent=1)


def archive_key(platform_id: int, job_id: str) -> str:
    """The storage key of an export's zip: under the platform's prefix (a subject may span regions), so every
    web and worker process finds it whichever of them made it."""
    return check_key(f"t/{platform_id}/personal-data/{job_id}.zip", platform_id)


async def prune_archives(services: Any, now: datetime | None = None) -> int:
    """Delete the zips of exports finished more than :data:`KEEP_SECONDS` ago (and less than a month before that,
    so each is looked at a bounded number of times); returns how many jobs were looked at."""
    now = now or datetime.now(UTC)
    db = services.db
    async with db.scoped(Scope.everything(), write=False):
        rows = await db.fetch(
            "SELECT id FROM job WHERE kind = {} AND status = 'done' AND finished_at < {} AND finished_at >= {}",
            KIND,
            now - timedelta(seconds=KEEP_SECONDS),
            now - timedelta(seconds=KEEP_SECONDS, days=30),
        )
    platform = (await services.tenants.root()).id
    for row in rows:
        with contextlib.suppress(StorageError):
            await services.storage.delete(archive_key(platform, row["id"]), tenant_id=platform)
    return len(rows)


async def write_archive(services: Any, subject: DataSubject, sections: list[DataSection], key: str) -> dict:
    """Write the zip to core storage under ``key`` (the platform's prefix); returns the manifest."""
    now = datetime.now(UTC)
    manifest: dict[str, Any] = {
        "subject": {"person_id": subject.person_id, "student_ids": list(subject.student_ids)},
        "generated_at": now.isoformat(),
        "sections": [],
        "files": [],
    }
    contents: list[tuple[str, bytes]] = []
    for section in sections:
        contents.append((f"data/{section.name}.json", _encode(section.rows)))
        manifest["sections"].append(
            {"name": section.name, "rows": len(section.rows), "description": section.description}
        )
        for number, item in enumerate(section.files, start=1):
            try:
                data = await services.storage.get(item.key, tenant_id=item.tenant_id)
            except StorageError:
                manifest["files"].append({"section": section.name, "name": item.filename, "missing": True})
                continue
            name = f"files/{section.name}/{number}-{sanitise_filename(item.filename)}"
            contents.append((name, data))
            digest = hashlib.sha256(data).hexdigest()
            manifest["files"].append({"section": section.name, "name": name, "size": len(data), "sha256": digest})
    who = f"person {subject.person_id}" if subject.person_id else "a pupil"
    if subject.student_ids:
        who += f" (pupil record {', '.join(str(i) for i in subject.student_ids)})"

    def write() -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("README.txt", README.format(who=who, when=now.strftime("%Y-%m-%d %H:%M UTC")))
            archive.writestr("manifest.json", _encode(manifest))
            for name, data in contents:
                archive.writestr(name, data)
        return buffer.getvalue()

    platform = tenant_of(key)
    await services.storage.put(key, await asyncio.to_thread(write), "application/zip", tenant_id=platform)
    return manifest


@register_job(KIND)
async def export_job(job: JobContext, *, requested_by: int, student_id: int | None = None) -> dict[str, Any]:
    """Store the zip (:func:`archive_key`) for the requester or one of their children."""
    services = job.services
    subject = await subject_for(services.db, requested_by, student_id)  # the link may be gone since
    await record(services, requested_by, subject, "privacy.export", job.id)  # the archive lists its own request
    await prune_archives(services)
    sections = await collect(services, subject)
    await job.progress(len(sections), len(sections) + 1, "writing")
    platform = (await services.tenants.root()).id
    manifest = await write_archive(services, subject, sections, archive_key(platform, job.id))
    return {
        "sections": len(manifest["sections"]),
        "rows": sum(s["rows"] for s in manifest["sections"]),
        "files": len(manifest["files"]),
    }


async def record(services: Any, actor: int | None, subject: DataSubject, action: str, job_id: str) -> None:
    """Audit a request or a download of an archive (at platform level: the subject may span regions)."""
    db = services.db
    kind, object_id = ("person", subject.person_id) if not subject.student_ids else ("student", subject.student_ids[0])
    async with db.scoped(Scope.everything()):
        await audit.record(
            db,
            actor_id=actor,
            action=action,
            object_type=kind,
            object_id=object_id or "",
            tenant=None,
            after={"job": job_id, "person_id": subject.person_id, "student_ids": list(subject.student_ids)},
        )
