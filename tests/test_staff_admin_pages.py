"""The director's rooms and staff in the portal: rooms, teachers joining, teaching assignments, duties,
supervisors.

Each test works in a school of its own (:func:`tests.test_director_portal.fresh_school`), with the
session of its director (``school.manage``) and of its teacher (who may not manage).
"""

from __future__ import annotations

import re
import secrets

import pytest

from core.school import staff_pages
from tenants import supervisor_pages
from tests.test_director_portal import OTHER, fresh_school
from tests.test_school_manage_pages import Director


async def test_the_director_adds_a_room_from_the_classes_page(world):
    d = await Director(world, await fresh_school(world, "rooms")).setup()
    classes = await d.page("GET", "/school/classes")
    staff = await d.page("GET", "/school/staff")
    assert f'href="/t/{d.slug}/school/rooms"' in classes.text and f'href="/t/{d.slug}/school/rooms"' in staff.text
    empty = await d.page("GET", "/school/rooms")
    assert empty.status_code == 200 and 'name="csrf_token"' in empty.text and "Aucune salle" in empty.text
    assert (await d.page("GET", "/school/rooms", d.teacher)).status_code == 403

    made = await d.page("POST", "/school/rooms", data={"name": "Labo 2", "capacity": "24"})
    assert made.status_code == 303 and made.headers["location"].endswith("/school/rooms?done=created")
    listed = await d.page("GET", "/school/rooms?done=created")
    assert "Labo 2" in listed.text and "La salle a été ajoutée." in listed.text and ">24<" in listed.text
    count = "SELECT COUNT(*) FROM room WHERE school_id = {}"
    assert await world.sql(count, d.school_id) == 1

    # The same name again: refused beside the field, nothing written.
    again = await d.page("POST", "/school/rooms", data={"name": "Labo 2", "capacity": "24"})
    assert again.status_code == 409 and 'id="room-name-error"' in again.text
    assert "Une salle porte déjà ce nom." in again.text
    bad = await d.page("POST", "/school/rooms", data={"name": "", "capacity": "900"})
    assert bad.status_code == 400 and 'id="room-name-error"' in bad.text and 'id="room-capacity-error"' in bad.text
    assert "Un nombre entier de 1 à 500." in bad.text
    arabic = await world.api(
        "POST", "/school/rooms?lang=ar", as_=d.director, tenant=d.slug, data={"name": "X", "capacity": "0"}
    )
    assert arabic.status_code == 400 and "عدد صحيح من 1 إلى 500." in arabic.text and 'dir="rtl"' in arabic.text
    assert await world.sql(count, d.school_id) == 1

    # The teacher may not add one; another school's director cannot post here.
    assert (await d.page("POST", "/school/rooms", d.teacher, data={"name": "T1"})).status_code == 403
    outsider = await world.api(
        "POST", "/school/rooms", as_=f"director.{OTHER}@test.ma", tenant=d.slug, data={"name": "T2"}
    )
    assert outsider.status_code in (403, 404)
    assert await world.sql(count, d.school_id) == 1


async def test_the_director_adds_a_teacher_and_their_teaching_from_the_staff_page(world):
    d = await Director(world, await fresh_school(world, "staffadd")).setup()
    email = f"new.teacher.{secrets.token_hex(4)}@test.ma"
    number = f"{secrets.randbelow(10**8):08d}"
    staff = await d.page("GET", "/school/staff")
    assert 'id="teacher-form"' in staff.text and f'action="/t/{d.slug}/school/staff/teachers"' in staff.text
    assert (await d.page("GET", "/school/staff", d.teacher)).status_code == 403

    # Errors beside the fields, nothing written.
    bad = await d.page("POST", "/school/staff/teachers", data={"email": "nope", "full_name": "", "staff_number": "12"})
    assert bad.status_code == 400
    for field in ("teacher-email", "teacher-name", "teacher-number"):
        assert f'id="{field}-error"' in bad.text
    assert "Un numéro de personnel (PPR) compte 5 à 10 chiffres." in bad.text
    arabic = await world.api(
        "POST", "/school/staff/teachers?lang=ar", as_=d.director, tenant=d.slug, data={"email": email}
    )
    assert arabic.status_code == 400 and "رقم التأجير يتكون من 5 إلى 10 أرقام." in arabic.text
    assert await world.sql("SELECT COUNT(*) FROM person WHERE email = {}", email) == 0

    body = {"email": email, "full_name": "Nadia Tazi", "full_name_ar": "نادية التازي", "staff_number": number}
    made = await d.page("POST", "/school/staff/teachers", data=body)
    assert made.status_code == 303 and made.headers["location"].endswith("/school/staff?done=teacher")
    person = await world.sql("SELECT id FROM person WHERE email = {}", email)
    role = "SELECT m.role FROM membership m WHERE m.person_id = {} AND m.tenant_id = {}"
    assert await world.sql(role, person, d.school_id) == "teacher"
    listed = await d.page("GET", "/school/staff?done=teacher")
    assert f'data-teacher="{person}"' in listed.text and "L&#39;enseignant a rejoint le personnel." in listed.text
    # The number is someone's now: another e-mail with it is refused.
    taken = await d.page("POST", "/school/staff/teachers", data={**body, "email": f"x.{email}"})
    assert taken.status_code == 409 and "Ce numéro de personnel appartient" in taken.text

    # A teaching assignment: a subject of the class's level, once per class and subject.
    path = f"/school/staff/{person}/assignments"
    assert f'action="/t/{d.slug}{path}"' in listed.text
    wrong = await d.page("POST", path, data={"class_id": str(d.class_id), "subject_code": "NOPE"})
    assert wrong.status_code == 400 and f'id="assign-{person}-subject-error"' in wrong.text
    no_class = await d.page("POST", path, data={"class_id": "", "subject_code": "MATH"})
    assert no_class.status_code == 400 and f'id="assign-{person}-class-error"' in no_class.text
    assigned = "SELECT COUNT(*) FROM teaching_assignment WHERE person_id = {}"
    assert await world.sql(assigned, person) == 0
    done = await d.page("POST", path, data={"class_id": str(d.class_id), "subject_code": "MATH"})
    assert done.status_code == 303 and done.headers["location"].endswith("/school/staff?done=assigned")
    assert await world.sql(assigned, person) == 1
    page = await d.page("GET", "/school/staff")
    assert re.search(rf'data-teacher="{person}".*?TC-M1', page.text, re.S)
    # Someone else already teaches it: refused beside the subject.
    other = await world.sql("SELECT id FROM person WHERE email = {}", d.teacher)
    clash = await d.page(
        "POST", f"/school/staff/{other}/assignments", data={"class_id": str(d.class_id), "subject_code": "MATH"}
    )
    assert clash.status_code == 409 and "Un autre enseignant enseigne déjà" in clash.text

    # The teacher may not; another school's teacher or class is not found here.
    assert (
        await d.page("POST", path, d.teacher, data={"class_id": str(d.class_id), "subject_code": "PC"})
    ).status_code == 403
    foreign = await world.sql("SELECT id FROM person WHERE email = {}", f"teacher.{OTHER}@test.ma")
    missing = await d.page(
        "POST", f"/school/staff/{foreign}/assignments", data={"class_id": str(d.class_id), "subject_code": "PC"}
    )
    assert missing.status_code == 404
    other_class = await world.sql("SELECT MIN(id) FROM school_class WHERE school_id = {}", world.ids[OTHER])
    elsewhere = await d.page("POST", path, data={"class_id": str(other_class), "subject_code": "PC"})
    assert elsewhere.status_code == 400 and f'id="assign-{person}-class-error"' in elsewhere.text
    assert await world.sql(assigned, person) == 1


async def test_the_director_puts_a_teacher_on_the_duty_roster(world):
    d = await Director(world, await fresh_school(world, "duties")).setup()
    teacher = await world.sql("SELECT id FROM person WHERE email = {}", d.teacher)
    staff = await d.page("GET", "/school/staff")
    assert 'id="duty-form"' in staff.text and "Aucune permanence" in staff.text
    count = "SELECT COUNT(*) FROM duty_slot WHERE school_id = {}"

    # Errors beside the fields, nothing written.
    bad = await d.page("POST", "/school/staff/duties", data={"teacher_id": "", "label": "", "weekday": "9"})
    assert bad.status_code == 400
    for field in ("duty-teacher", "duty-label", "duty-day", "duty-start", "duty-end"):
        assert f'id="{field}-error"' in bad.text
    body = {"teacher_id": str(teacher), "label": "Surveillance cour", "weekday": "2", "starts_at": "10:00"}
    backwards = await d.page("POST", "/school/staff/duties", data={**body, "ends_at": "09:00"})
    assert backwards.status_code == 400 and "La permanence doit finir après son début." in backwards.text
    arabic = await world.api(
        "POST", "/school/staff/duties?lang=ar", as_=d.director, tenant=d.slug, data={**body, "ends_at": "09:00"}
    )
    assert arabic.status_code == 400 and "يجب أن تنتهي الحراسة بعد بدايتها." in arabic.text
    foreign = await world.sql("SELECT id FROM person WHERE email = {}", f"teacher.{OTHER}@test.ma")
    elsewhere = await d.page(
        "POST", "/school/staff/duties", data={**body, "teacher_id": str(foreign), "ends_at": "11:00"}
    )
    assert elsewhere.status_code == 400 and 'id="duty-teacher-error"' in elsewhere.text
    assert await world.sql(count, d.school_id) == 0

    made = await d.page("POST", "/school/staff/duties", data={**body, "ends_at": "11:00"})
    assert made.status_code == 303 and made.headers["location"].endswith("/school/staff?done=duty")
    listed = await d.page("GET", "/school/staff?done=duty")
    assert re.search(r'<tr data-duty="\d+">.*?Surveillance cour.*?Mardi.*?10:00–11:00', listed.text, re.S)
    assert "La permanence a été ajoutée." in listed.text
    # The same hour again: the clash is named above the form, nothing more written.
    clash = await d.page("POST", "/school/staff/duties", data={**body, "starts_at": "10:30", "ends_at": "11:30"})
    assert clash.status_code == 409 and 'id="duty-clash"' in clash.text
    assert "Conflit : l&#39;enseignant est déjà de service « Surveillance cour » à ce moment." in clash.text
    assert await world.sql(count, d.school_id) == 1
    # The API names it in the reader's language too.
    arabic_clash = await world.api(
        "POST",
        "/school/staff/duties?lang=ar",
        as_=d.director,
        tenant=d.slug,
        data={**body, "starts_at": "10:30", "ends_at": "11:30"},
    )
    assert arabic_clash.status_code == 409 and "الأستاذ مكلّف بالمهمة «Surveillance cour»" in arabic_clash.text

    # The teacher may not add one; another school's director cannot post here.
    assert (await d.page("POST", "/school/staff/duties", d.teacher, data=body)).status_code == 403
    outsider = await world.api(
        "POST", "/school/staff/duties", as_=f"director.{OTHER}@test.ma", tenant=d.slug, data=body
    )
    assert outsider.status_code in (403, 404)
    assert await world.sql(count, d.school_id) == 1


async def test_the_director_grants_the_supervisor_role_from_the_menu(world):
    d = await Director(world, await fresh_school(world, "supervisors")).setup()
    home = await d.page("GET", "/")
    assert f'href="/t/{d.slug}/school/supervisors"' in home.text
    teacher_home = await d.page("GET", "/", d.teacher)
    assert "/school/supervisors" not in teacher_home.text
    empty = await d.page("GET", "/school/supervisors")
    assert empty.status_code == 200 and "Aucun surveillant général" in empty.text
    assert (await d.page("GET", "/school/supervisors", d.teacher)).status_code == 403
    email = f"supervisor.{secrets.token_hex(4)}@test.ma"
    granted = (
        "SELECT COUNT(*) FROM membership m JOIN person p ON p.id = m.person_id "
        "WHERE p.email = {} AND m.role = 'supervisor' AND m.tenant_id = {}"
    )

    bad = await d.page("POST", "/school/supervisors", data={"email": "not-an-address", "full_name": ""})
    assert (
        bad.status_code == 400
        and 'id="supervisor-email-error"' in bad.text
        and 'id="supervisor-name-error"' in bad.text
    )
    arabic = await world.api(
        "POST", "/school/supervisors?lang=ar", as_=d.director, tenant=d.slug, data={"email": email}
    )
    assert arabic.status_code == 400 and 'dir="rtl"' in arabic.text and 'id="supervisor-name-error"' in arabic.text
    assert await world.sql("SELECT COUNT(*) FROM person WHERE email = {}", email) == 0

    made = await d.page("POST", "/school/supervisors", data={"email": email, "full_name": "Karim Idrissi"})
    assert made.status_code == 303 and made.headers["location"].endswith("/school/supervisors?done=added")
    assert await world.sql(granted, email, d.school_id) == 1
    listed = await d.page("GET", "/school/supervisors?done=added")
    assert "Karim Idrissi" in listed.text and "Le surveillant général a été ajouté." in listed.text
    # Granting twice changes nothing.
    again = await d.page("POST", "/school/supervisors", data={"email": email, "full_name": "Karim Idrissi"})
    assert again.status_code == 303 and await world.sql(granted, email, d.school_id) == 1

    # The teacher may not grant it; another school's director cannot grant it here.
    body = {"email": f"x.{email}", "full_name": "X"}
    assert (await d.page("POST", "/school/supervisors", d.teacher, data=body)).status_code == 403
    outsider = await world.api("POST", "/school/supervisors", as_=f"director.{OTHER}@test.ma", tenant=d.slug, data=body)
    assert outsider.status_code in (403, 404)
    assert await world.sql("SELECT COUNT(*) FROM person WHERE email = {}", f"x.{email}") == 0


@pytest.mark.parametrize("locale", ["ar", "fr"])
def test_the_pages_messages_are_translated(locale):
    from tests.test_i18n import catalogue

    messages = catalogue(locale)
    missing = [m for m in [*staff_pages.PAGE_MESSAGES, *supervisor_pages.PAGE_MESSAGES] if not messages.get(m)]
    assert not missing, missing
