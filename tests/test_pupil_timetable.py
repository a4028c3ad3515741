"""A pupil's own timetable names the teacher of each lesson, as a guardian's view of the child's week does."""

from __future__ import annotations

import secrets

from core.scope import Scope
from tests.conftest import PASSWORD
from tests.test_school_portal import HOME, own_pupil_with_guardian


async def test_a_pupils_timetable_and_the_childs_page_name_the_teachers(world):
    guardian = f"guardian.timetable.{world.backend}.{secrets.token_hex(2)}@test.ma"
    student_id = await own_pupil_with_guardian(world, HOME, f"T{secrets.randbelow(10**9):09d}", "Ilyas", guardian)
    login = await world.add_person(f"pupil.timetable.{world.backend}.{secrets.token_hex(2)}@test.ma", "student", HOME)
    db = world.services.db
    async with db.scoped(Scope.everything()):
        person = await db.fetchval("SELECT id FROM person WHERE email = {}", login)
        parent = await db.fetchval("SELECT id FROM person WHERE email = {}", guardian)
        await db.execute("UPDATE student SET person_id = {} WHERE id = {}", person, student_id)
        teacher = await db.fetchval("SELECT full_name FROM person WHERE id = {}", world.objects[HOME]["teacher_id"])
    assert teacher
    await world.services.identity.set_password(parent, PASSWORD)
    world.passwords[guardian] = PASSWORD

    own = await world.api("GET", "/timetable?lang=fr", as_=login, tenant=HOME)
    assert own.status_code == 200, own.text
    assert 'data-subject="MATH"' in own.text
    assert "<dt>Enseignant" in own.text and f"<bdi>{teacher}</bdi>" in own.text

    child = await world.api("GET", f"/children/{student_id}?lang=fr", as_=guardian, tenant=HOME)
    assert child.status_code == 200, child.text
    assert f"<bdi>{teacher}</bdi>" in child.text

    # The teacher's own week does not name the teacher on every lesson.
    mine = await world.api("GET", "/timetable?lang=fr", as_=f"teacher.{HOME}@test.ma", tenant=HOME)
    assert mine.status_code == 200 and 'data-subject="MATH"' in mine.text
    assert "<dt>Enseignant" not in mine.text
