"""Inviting school directors: a one-time link by e-mail to choose a password.

:func:`invite` makes a person director of a school and sends the link; :func:`invite_directors`
invites the directors a staff file created. The token is stored hashed, expires after
:data:`INVITATION_TTL`, and works once (:func:`accept_invitation` claims it with one conditional
``UPDATE … RETURNING``, so of concurrent uses exactly one wins). The mailed link is built from the
configured public URL or the school's registered host (:func:`core.mail.public_link`), never from
the inviting request's headers.
"""

from __future__ import annotations

import secrets
from typing import Any

from core.errors import Invalid, NotFound
from core.identity import check_password_strength, normalise_email, sha256
from core.mail import Mail, public_link
from core.scope import Scope
from core.services import Services
from core.sql import SQL, in_
from core.tenancy import TenantInfo
from tenants import service as tenant_service
from tenants.onboarding_context import INVITATION_TTL, Actor, now

INVALID_TOKEN = "this invitation link is invalid, expired or already used"


async def invite(
    actor: Actor,
    school: TenantInfo,
    *,
    email: str,
    full_name: str,
    full_name_ar: str,
    locale: str,
) -> int:
    """Make a person director of a school and e-mail them a one-time link to set their password."""
    if school.kind != "school" or not actor.region.covers(school):
        raise NotFound("No school {school} in this region.", school=repr(school.slug))
    email = normalise_email(email)
    db = actor.db
    async with db.scoped(actor.scope):
        ctx = actor.request_context()
        person_id = await tenant_service.create_person(
            ctx, email=email, full_name=full_name, full_name_ar=full_name_ar, locale=locale, password=None
        )
        await tenant_service.add_membership(ctx, person_id, "school_director", school)
        token = await _new_invitation(actor, person_id, email, school)
    await _send_invitation(actor.services, email, full_name, locale, school, token)
    return person_id


async def _new_invitation(actor: Actor, person_id: int, email: str, school: TenantInfo) -> str:
    token = secrets.token_urlsafe(32)
    cols = school.scope_columns()
    await actor.db.execute(
        "INSERT INTO onboarding_invitation (person_id, email, role, token_hash, expires_at, created_by, created_at, "
        "region_id, province_id, school_id) VALUES ({}, {}, 'school_director', {}, {}, {}, {}, {}, {}, {})",
        person_id,
        email,
        sha256(token),
        now() + INVITATION_TTL,
        actor.person_id,
        now(),
        cols["region_id"],
        cols["province_id"],
        cols["school_id"],
    )
    return token


INVITATION_TEXT = {
    "fr": (
        "madrasa : invitation à diriger {school}",
        "Bonjour {name},\n\nVous êtes invité(e) comme directeur/directrice de {school}. Ouvrez ce lien dans les "
        "7 jours pour choisir votre mot de passe (il ne sert qu'une fois) :\n{url}\n",
    ),
    "ar": (
        "مدرسة: دعوة لإدارة {school}",
        "مرحبا {name}،\n\nتمت دعوتك مديرا(ة) لـ {school}. افتح هذا الرابط خلال 7 أيام لاختيار كلمة المرور "
        "(يستعمل مرة واحدة):\n{url}\n",
    ),
    "en": (
        "madrasa: invitation to run {school}",
        "Hello {name},\n\nYou are invited as the director of {school}. Open this link within 7 days to choose "
        "your password (it works once):\n{url}\n",
    ),
}


async def _send_invitation(
    services: Services, email: str, name: str, locale: str, school: TenantInfo, token: str
) -> None:
    subject, body = INVITATION_TEXT.get(locale, INVITATION_TEXT["fr"])
    url = await public_link(services.settings, services.db, f"/onboarding/invitations/{token}", school)
    title = school.name(locale)
    await services.mailer.send(
        Mail(
            to=email,
            subject=subject.format(school=title),
            body=body.format(name=name or email, school=title, url=url) + f"\nToken: {token}\n",
            link=url,
        )
    )


async def invite_directors(actor: Actor, people: list[int]) -> int:
    """Invite these directors of the region (one live invitation each); returns how many were sent."""
    db = actor.db
    prefix = "/".join(str(p) for p in actor.region.path) + "/%"
    async with db.scoped(actor.scope):
        rows = await db.fetch(
            SQL(
                "SELECT DISTINCT p.id, p.email, p.full_name, p.locale, m.tenant_id FROM membership m "
                "JOIN person p ON p.id = m.person_id JOIN tenant t ON t.id = m.tenant_id "
                "WHERE m.role = 'school_director' AND t.path LIKE {} AND p.id IN {}",
                prefix,
                in_(people),
            )
        )
        sent = []
        for r in rows:
            school = await actor.services.tenants.by_id(r["tenant_id"])
            assert school is not None
            token = await _new_invitation(actor, r["id"], r["email"], school)
            sent.append((r, school, token))
    for r, school, token in sent:
        await _send_invitation(actor.services, r["email"], r["full_name"], r["locale"], school, token)
    return len(sent)


async def invitation_for(services: Services, token: str) -> dict[str, Any] | None:
    """A live invitation by its token (``None`` when unknown, used or expired)."""
    if not 10 <= len(token) <= 200:
        return None
    db = services.db
    async with db.scoped(Scope.everything(), write=False):
        row = await db.fetchrow(
            "SELECT i.id, i.person_id, i.email, i.expires_at, i.used_at, i.school_id, p.full_name "
            "FROM onboarding_invitation i JOIN person p ON p.id = i.person_id WHERE i.token_hash = {}",
            sha256(token),
        )
    if row is None or row["used_at"] is not None or row["expires_at"] <= now():  # type: ignore[operator]
        return None
    return row


async def accept_invitation(services: Services, token: str, password: str) -> int:
    """Use an invitation once: set the person's password. Returns the person id.

    The token is claimed by one conditional ``UPDATE … RETURNING`` in the transaction that sets the password;
    the person's other outstanding invitations and password-reset tokens are voided with it.
    """
    weak = check_password_strength(password)
    if weak:
        raise Invalid("password", weak)
    if await invitation_for(services, token) is None:  # before hashing: a forged token costs no argon2 time
        raise Invalid("token", INVALID_TOKEN)
    hashed = await services.identity.new_password_hash(password)
    stamp = now()
    db = services.db
    async with db.scoped(Scope.everything()):
        claimed = await db.fetchrow(
            "UPDATE onboarding_invitation SET used_at = {} WHERE token_hash = {} AND used_at IS NULL "
            "AND expires_at > {} RETURNING person_id",
            stamp,
            sha256(token),
            stamp,
        )
        if claimed is None:
            raise Invalid("token", INVALID_TOKEN)
        person_id = int(claimed["person_id"])
        await db.execute(
            "UPDATE onboarding_invitation SET used_at = {} WHERE person_id = {} AND used_at IS NULL", stamp, person_id
        )
        await db.execute(
            "UPDATE password_reset SET used_at = {} WHERE person_id = {} AND used_at IS NULL", stamp, person_id
        )
        await db.execute("UPDATE person SET password_hash = {} WHERE id = {}", hashed, person_id)
    services.grants.invalidate(person_id)
    return person_id
