"""Linking guardians to pupils: at once within the school's reach, else by an invitation the guardian accepts.

A director names a guardian by e-mail. When that address belongs to someone already within the school's
reach — a member of the school (any role held at the school itself) or a guardian of one of its pupils — the
link is made at once, as before. Anyone else (another region's teacher, a parent elsewhere, or an address
with no account yet) is *invited*: a pending link (``guardian_invitation``) and a one-time link mailed to the
address. The guardianship and the parent role at the school come only when the link is used
(:func:`accept`, from the portal page or ``POST /api/v1/guardian-invitations/accept``); the token is stored
hashed, expires after :data:`INVITATION_TTL` and is claimed by one conditional ``UPDATE … RETURNING``, so of
concurrent uses exactly one wins.

The director's answer is the same for every invitation — whether the address has an account or not — and
never carries the id of an account outside the school's reach. No account is created before acceptance.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from core import audit
from core.context import RequestContext
from core.db import Database
from core.errors import Invalid
from core.identity import normalise_email, sha256
from core.mail import Mail, public_link
from core.school import service
from core.scope import Scope
from core.services import Services
from core.sql import SQL, ident
from core.tenancy import TenantInfo

INVITATION_TTL = timedelta(days=14)
INVALID_TOKEN = "This invitation link is invalid, expired or already used."


class GuardianLink(msgspec.Struct):
    """What linking a guardian did: ``linked`` (``id`` is the guardian) or ``invited`` (``id`` is null)."""

    status: str
    id: int | None
    invitation_id: int | None


class PendingMail(msgspec.Struct):
    """An invitation to send once the transaction that created it has committed."""

    email: str
    full_name: str
    locale: str
    school_id: int
    token: str


def _now() -> datetime:
    return datetime.now(UTC)


def known_to(tenant: TenantInfo, person: SQL) -> SQL:
    """SQL condition: the person (an id expression) is within a tenant's reach.

    That is a role held at the tenant or below it, or being a guardian of one of its pupils. The same rule
    decides a director's single link, a director's CSV import (the school) and region onboarding (the region).
    """
    level = {"school": "school_id", "province": "province_id"}.get(tenant.kind, "region_id")
    prefix = "/".join(str(i) for i in tenant.path) + "/"
    return SQL(
        "(EXISTS (SELECT 1 FROM membership m JOIN tenant t ON t.id = m.tenant_id WHERE m.person_id = {} "
        "AND t.path LIKE {}) OR EXISTS (SELECT 1 FROM guardianship x WHERE x.person_id = {} AND {} = {}))",
        person,
        prefix + "%",
        person,
        ident("x", level),
        tenant.id,
    )


async def in_reach(db: Database, person_id: int, school: TenantInfo) -> bool:
    """Whether a person is already within a school's reach: a role held at the school, or a guardian there."""
    return bool(await db.fetchval(SQL("SELECT 1 WHERE {}", known_to(school, SQL("{}", person_id)))))


async def link(
    ctx: RequestContext,
    student: dict[str, Any],
    *,
    email: str,
    full_name: str,
    full_name_ar: str,
    relation: str,
    locale: str,
) -> tuple[GuardianLink, PendingMail | None]:
    """Link a guardian at once when within reach, else record a pending link and return the mail to send."""
    db = ctx.services.db
    email = normalise_email(email)
    person = await db.fetchval("SELECT id FROM person WHERE email = {}", email)
    # The same statements whether or not the address has an account (no id is 0): no timing tells them apart.
    school = await ctx.services.tenants.by_id(student["school_id"])
    assert school is not None
    reach = await in_reach(db, int(person) if person is not None else 0, school)
    if person is not None and reach:
        await link_now(ctx, student, int(person), relation)
        return GuardianLink("linked", int(person), None), None
    return await invite(
        ctx, student, email=email, full_name=full_name, full_name_ar=full_name_ar, relation=relation, locale=locale
    )


async def invite(
    ctx: RequestContext,
    student: dict[str, Any],
    *,
    email: str,
    full_name: str,
    full_name_ar: str,
    relation: str,
    locale: str,
) -> tuple[GuardianLink, PendingMail]:
    """Record a pending link (audited) and return the mail to send once the transaction has committed."""
    db = ctx.services.db
    email = normalise_email(email)
    token = secrets.token_urlsafe(32)
    stamp = _now()
    row = await db.fetchrow(
        "INSERT INTO guardian_invitation (student_id, email, full_name, full_name_ar, relation, locale, token_hash, "
        "expires_at, created_by, created_at, region_id, province_id, school_id) "
        "VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}) RETURNING id",
        student["id"],
        email,
        full_name,
        full_name_ar,
        relation,
        locale,
        sha256(token),
        stamp + INVITATION_TTL,
        ctx.person_id,
        stamp,
        student["region_id"],
        student["province_id"],
        student["school_id"],
    )
    assert row is not None
    await audit.record(
        db,
        actor_id=ctx.person_id,
        action="guardian.invite",
        object_type="student",
        object_id=student["id"],
        tenant=await ctx.services.tenants.by_id(student["school_id"]),
        after={"invitation": row["id"], "relation": relation},
    )
    pending = PendingMail(email, full_name, locale, student["school_id"], token)
    return GuardianLink("invited", None, int(row["id"])), pending


async def link_now(ctx: RequestContext, student: dict[str, Any], person: int, relation: str) -> None:
    """The guardianship and the parent role at the pupil's school, audited (the caller checked the reach)."""
    db = ctx.services.db
    await service.link_guardianship(db, student, person, relation)
    ctx.services.grants.invalidate(person)
    await audit.record(
        db,
        actor_id=ctx.person_id,
        action="guardian.link",
        object_type="student",
        object_id=student["id"],
        tenant=await ctx.services.tenants.by_id(student["school_id"]),
        after={"guardian": person, "relation": relation},
    )


INVITATION_TEXT = {
    "fr": (
        "madrasa : invitation à suivre un élève de {school}",
        "Bonjour {name},\n\n{school} vous invite à être le parent ou tuteur d'un de ses élèves. Si vous "
        "l'acceptez, ouvrez ce lien dans les 14 jours (il ne sert qu'une fois) :\n{url}\n\n"
        "Si vous ne vous attendiez pas à ce message, ignorez-le : rien ne change sans votre accord.\n",
    ),
    "ar": (
        "مدرسة: دعوة لتتبع تلميذ في {school}",
        "مرحبا {name}،\n\nتدعوك {school} لتكون وليّ أمر أحد تلاميذها. إن قبلت، افتح هذا الرابط خلال 14 يوما "
        "(يستعمل مرة واحدة):\n{url}\n\nإن لم تكن تنتظر هذه الرسالة فتجاهلها: لا يتغير شيء دون موافقتك.\n",
    ),
    "en": (
        "madrasa: invitation to follow a pupil of {school}",
        "Hello {name},\n\n{school} invites you to be the parent or guardian of one of its pupils. If you accept, "
        "open this link within 14 days (it works once):\n{url}\n\n"
        "If you did not expect this message, ignore it: nothing changes without your consent.\n",
    ),
}


async def send(services: Services, pending: PendingMail) -> None:
    """Mail an invitation's one-time link (built from the public URL or the school's own domain)."""
    school = await services.tenants.by_id(pending.school_id)
    assert school is not None
    subject, body = INVITATION_TEXT.get(pending.locale, INVITATION_TEXT["fr"])
    url = await public_link(services.settings, services.db, f"/guardian-invitations/{pending.token}", school)
    title = school.name(pending.locale)
    await services.mailer.send(
        Mail(
            to=pending.email,
            subject=subject.format(school=title),
            body=body.format(name=pending.full_name or pending.email, school=title, url=url),
            link=url,
        )
    )


async def invitation_for(services: Services, token: str) -> dict[str, Any] | None:
    """A live invitation by its token, with the pupil's name and school (``None`` when unknown, used or expired)."""
    if not 10 <= len(token) <= 200:
        return None
    db = services.db
    async with db.scoped(Scope.everything(), write=False):
        row = await db.fetchrow(
            "SELECT i.id, i.email, i.expires_at, i.used_at, i.school_id, s.first_name, s.last_name, "
            "s.first_name_ar, s.last_name_ar FROM guardian_invitation i JOIN student s ON s.id = i.student_id "
            "WHERE i.token_hash = {} AND s.school_id = i.school_id",
            sha256(token),
        )
    if row is None or row["used_at"] is not None or _aware(row["expires_at"]) <= _now():
        return None
    return row


def _aware(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Accepted(msgspec.Struct):
    """An accepted invitation: the school where the parent role was granted, and whether a password is set."""

    school: str
    student_id: int
    password_set: bool


async def accept(services: Services, token: str) -> tuple[int, Accepted]:
    """Use an invitation once: the guardianship and the parent role at the pupil's school. Returns the person id.

    The address's account is created here if it has none (it then chooses a password with "Forgot password?").
    """
    if not 10 <= len(token) <= 200:
        raise Invalid("token", INVALID_TOKEN, code="invalid_invitation")
    db = services.db
    stamp = _now()
    async with db.scoped(Scope.everything()):
        claimed = await db.fetchrow(
            "UPDATE guardian_invitation SET used_at = {} WHERE token_hash = {} AND used_at IS NULL AND expires_at > {} "
            "RETURNING id, student_id, email, full_name, full_name_ar, relation, locale, school_id",
            stamp,
            sha256(token),
            stamp,
        )
        if claimed is None:
            raise Invalid("token", INVALID_TOKEN, code="invalid_invitation")
        student = await db.fetchrow(
            "SELECT id, region_id, province_id, school_id FROM student WHERE id = {}", claimed["student_id"]
        )
        if student is None or student["school_id"] != claimed["school_id"]:
            # The pupil left the school meanwhile: the invitation no longer applies (the claim is rolled back).
            raise Invalid("token", INVALID_TOKEN, code="invalid_invitation")
        person = await service.ensure_person(
            db, claimed["email"], claimed["full_name"], claimed["full_name_ar"], claimed["locale"]
        )
        await db.execute("UPDATE guardian_invitation SET person_id = {} WHERE id = {}", person, claimed["id"])
        await service.link_guardianship(db, student, person, claimed["relation"])
        school: TenantInfo | None = await services.tenants.by_id(student["school_id"])
        assert school is not None
        await audit.record(
            db,
            actor_id=person,
            action="guardian.accept",
            object_type="student",
            object_id=student["id"],
            tenant=school,
            after={"guardian": person, "invitation": claimed["id"], "relation": claimed["relation"]},
        )
        password = await db.fetchval("SELECT password_hash FROM person WHERE id = {}", person)
    services.grants.invalidate(person)
    return person, Accepted(school.slug, int(student["id"]), bool(password))
