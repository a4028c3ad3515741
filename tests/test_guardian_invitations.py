"""Linking guardians: at once within the school's reach, else only when the invited person accepts a mailed link."""

from __future__ import annotations

from typing import Any

from core.mail import Mail
from core.scope import Scope
from tests.conftest import BACKENDS, World, new_client

HOME = "lycee-moulay-youssef"  # Rabat-Salé-Kénitra
FAR = "lycee-ibn-batouta"  # Casablanca-Settat
DIRECTOR = f"director.{HOME}@test.ma"


async def invite(world: World, email: str, student: int | None = None) -> Any:
    student = student or world.objects[HOME]["student_id"]
    return await world.api(
        "POST",
        f"/api/v1/school/students/{student}/guardians",
        as_=DIRECTOR,
        tenant=HOME,
        json={"email": email, "full_name": "Invited Guardian", "relation": "mother"},
    )


async def roles(world: World, email: str) -> list[tuple[str, str]]:
    db = world.services.db
    async with db.scoped(Scope.everything(), write=False):
        rows = await db.fetch(
            "SELECT m.role, t.slug FROM membership m JOIN person p ON p.id = m.person_id "
            "JOIN tenant t ON t.id = m.tenant_id WHERE p.email = {} ORDER BY m.role, t.slug",
            email,
        )
    return [(r["role"], r["slug"]) for r in rows]


async def links(world: World, email: str) -> int:
    return int(
        await world.sql(
            "SELECT COUNT(*) FROM guardianship g JOIN person p ON p.id = g.person_id WHERE p.email = {}", email
        )
    )


def last_mail(world: World, email: str) -> Mail:
    return next(m for m in reversed(world.services.mailer.sent) if m.to == email)  # type: ignore[attr-defined]


def token_of(mail: Mail) -> str:
    return mail.link.rsplit("/", 1)[-1]


async def test_an_account_of_another_region_is_invited_and_gets_nothing_until_it_accepts(world: World) -> None:
    teacher = await world.add_person(f"far.teacher.{world.backend}@test.ma", "teacher", FAR)
    response = await invite(world, teacher)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "invited" and response.json()["id"] is None
    # Nothing granted yet: no parent role, no link, the pupil is not among the teacher's children.
    assert await roles(world, teacher) == [("teacher", FAR)]
    assert await links(world, teacher) == 0
    mail = last_mail(world, teacher)
    assert f"/t/{HOME}/guardian-invitations/" in mail.link and mail.link in mail.body

    accepted = await world.api("POST", "/api/v1/guardian-invitations/accept", json={"token": token_of(mail)})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json() == {
        "school": HOME,
        "student_id": world.objects[HOME]["student_id"],
        "password_set": True,
    }
    # Exactly the parent role at the pupil's school, and the pupil among the children.
    assert await roles(world, teacher) == [("parent", HOME), ("teacher", FAR)]
    assert await links(world, teacher) == 1
    children = await world.api("GET", "/api/v1/me/children", as_=teacher)
    assert children.status_code == 200, children.text
    assert [c["id"] for c in children.json()] == [world.objects[HOME]["student_id"]]

    again = await world.api("POST", "/api/v1/guardian-invitations/accept", json={"token": token_of(mail)})
    assert again.status_code == 400
    forged = await world.api("POST", "/api/v1/guardian-invitations/accept", json={"token": "x" * 43})
    assert forged.status_code == 400


async def test_the_answer_does_not_tell_whether_an_account_exists(world: World) -> None:
    foreign = await world.add_person(f"far.director.{world.backend}@test.ma", "school_director", FAR)
    foreign_id = int(await world.sql("SELECT id FROM person WHERE email = {}", foreign))
    nobody = f"nobody.{world.backend}@test.ma"
    answers = [await invite(world, foreign), await invite(world, nobody)]
    assert [a.status_code for a in answers] == [202, 202]
    bodies = [a.json() for a in answers]
    assert [sorted(b) for b in bodies] == [["id", "invitation_id", "status"]] * 2
    assert [(b["status"], b["id"]) for b in bodies] == [("invited", None), ("invited", None)]
    assert all(isinstance(b["invitation_id"], int) for b in bodies)
    assert answers[0].headers.get("content-type") == answers[1].headers.get("content-type")
    assert str(foreign_id) not in answers[0].text.replace(str(bodies[0]["invitation_id"]), "")
    # Both were mailed alike; no account is created for the unknown address before it accepts.
    assert last_mail(world, foreign).subject == last_mail(world, nobody).subject
    assert await world.sql("SELECT id FROM person WHERE email = {}", nobody) is None
    assert await roles(world, foreign) == [("school_director", FAR)]

    accepted = await world.api(
        "POST", "/api/v1/guardian-invitations/accept", json={"token": token_of(last_mail(world, nobody))}
    )
    assert accepted.status_code == 200 and accepted.json()["password_set"] is False
    assert await roles(world, nobody) == [("parent", HOME)]


async def test_people_within_the_schools_reach_are_linked_at_once(world: World) -> None:
    # A member of the school (its own teacher).
    teacher = await world.add_person(f"home.teacher.{world.backend}@test.ma", "teacher", HOME)
    teacher_id = int(await world.sql("SELECT id FROM person WHERE email = {}", teacher))
    sent = len(world.services.mailer.sent)  # type: ignore[attr-defined]
    response = await invite(world, teacher)
    assert response.status_code == 201, response.text
    assert response.json() == {"status": "linked", "id": teacher_id, "invitation_id": None}
    assert await roles(world, teacher) == [("parent", HOME), ("teacher", HOME)]
    assert await links(world, teacher) == 1
    # A guardian of another pupil of the school, for a new pupil.
    guardian = f"guardian.{HOME}@test.ma"
    pupil = await world.api(
        "POST",
        "/api/v1/school/students",
        as_=DIRECTOR,
        tenant=HOME,
        json={"national_code": f"Q{BACKENDS.index(world.backend)}77001122", "first_name": "Sibling", "last_name": "T"},
    )
    assert pupil.status_code == 201, pupil.text
    response = await invite(world, guardian, pupil.json()["id"])
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "linked"
    assert await links(world, guardian) == 2
    assert len(world.services.mailer.sent) == sent  # type: ignore[attr-defined]


async def test_the_portal_page_accepts_an_invitation(world: World) -> None:
    email = f"portal.guardian.{world.backend}@test.ma"
    assert (await invite(world, email)).status_code == 202
    token = token_of(last_mail(world, email))
    client = new_client(world.app, ip="10.7.0.1")
    page = await client.get(f"/t/{HOME}/guardian-invitations/{token}?lang=en")
    assert page.status_code == 200, page.text
    assert "Pupil3" in page.text and "Accept the invitation" in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert await roles(world, email) == []
    csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    refused = await client.post(f"/t/{HOME}/guardian-invitations/{token}?lang=en", data={"csrf_token": "wrong"})
    assert refused.status_code == 403 and await roles(world, email) == []
    done = await client.post(f"/t/{HOME}/guardian-invitations/{token}?lang=en", data={"csrf_token": csrf})
    assert done.status_code == 200, done.text
    assert "Invitation accepted" in done.text
    assert await roles(world, email) == [("parent", HOME)]
    used = await client.get(f"/t/{HOME}/guardian-invitations/{token}?lang=en")
    assert used.status_code == 404 and "invalid, expired or already used" in used.text
    await client.aclose()
