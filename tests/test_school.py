"""School structure: pupil codes, enrolment, transfers, assignments, timetable clashes, who sees what."""

from __future__ import annotations

import random
from datetime import date, time

import pytest

from core.school.rules import (
    CoefficientRow,
    Slot,
    clashes,
    effective_coefficients,
    normalise_pupil_code,
    occurrences,
)
from tests.conftest import link_guardian

A, A2, B = "lycee-ibn-batouta", "college-al-khawarizmi", "lycee-moulay-youssef"  # A, A2: region 1; B: region 2


def code() -> str:
    return "Q" + "".join(random.choice("0123456789") for _ in range(9))


# -- pure rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["j130012345", " J130012345 ", "A000000001"])
def test_pupil_codes_accepted(raw):
    assert normalise_pupil_code(raw) == raw.strip().upper()


@pytest.mark.parametrize("raw", ["", "1300123456", "JJ30012345", "J13001234", "J1300123456", "J13001234X"])
def test_pupil_codes_refused(raw):
    with pytest.raises(ValueError, match="pupil code"):
        normalise_pupil_code(raw)


def slot(**changes):
    base = dict(
        weekday=1,
        starts_at=time(8),
        ends_at=time(10),
        valid_from=date(2026, 9, 7),
        valid_to=date(2027, 6, 30),
        class_id=1,
        teacher_id=10,
        room_id=100,
    )
    return Slot(**{**base, **changes})


def test_clash_kinds():
    existing = [slot(id=1)]
    assert [k for k, _ in clashes(slot(class_id=2, room_id=101), existing)] == ["teacher"]
    assert [k for k, _ in clashes(slot(class_id=2, teacher_id=11), existing)] == ["room"]
    assert [k for k, _ in clashes(slot(teacher_id=11, room_id=101), existing)] == ["class"]


@pytest.mark.parametrize(
    "other",
    [
        slot(starts_at=time(10), ends_at=time(12)),  # touching ends
        slot(weekday=2),
        slot(valid_from=date(2027, 7, 1), valid_to=date(2027, 7, 30)),  # later validity
        slot(id=1),  # itself (an edit)
    ],
)
def test_no_clash(other):
    assert clashes(other, [slot(id=1)]) == []


def test_coefficients_resolve_school_over_region_over_national():
    rows = [
        CoefficientRow(None, "MATH", 7, 9),
        CoefficientRow(None, "PC", 7, 6),
        CoefficientRow(5, "MATH", 8, 9),  # region 5
        CoefficientRow(9, "PC", 6, 6),  # school 9
        CoefficientRow(6, "MATH", 1, 1),  # another region: ignored
    ]
    assert effective_coefficients(rows, 5, 9) == {"MATH": (8, 9), "PC": (6, 6)}
    assert effective_coefficients(rows, 7, 8) == {"MATH": (7, 9), "PC": (7, 6)}
    assert effective_coefficients(rows, 5, None) == {"MATH": (8, 9), "PC": (7, 6)}  # at the region itself
    assert effective_coefficients(rows, None, None) == {"MATH": (7, 9), "PC": (7, 6)}


def test_occurrences_skip_holidays_and_respect_validity():
    days = occurrences(
        1,
        date(2026, 9, 7),
        date(2026, 10, 5),
        date(2026, 9, 1),
        date(2026, 12, 31),
        holidays=[(date(2026, 9, 14), date(2026, 9, 20))],
    )
    assert days == [date(2026, 9, 7), date(2026, 9, 21), date(2026, 9, 28), date(2026, 10, 5)]
    assert occurrences(3, date(2026, 9, 7), date(2026, 9, 8), date(2026, 9, 1), date(2026, 9, 30)) == []


# -- through the API ------------------------------------------------------------------------------


async def post(world, school, path, body, actor=None):
    return await world.api("POST", path, as_=actor or f"director.{school}@test.ma", tenant=school, json=body)


async def new_pupil(world, school, **extra):
    body = {
        "national_code": code(),
        "first_name": "Sara",
        "last_name": "Bennis",
        "first_name_ar": "سارة",
        "last_name_ar": "بنيس",
        **extra,
    }
    response = await post(world, school, "/api/v1/school/students", body)
    assert response.status_code == 201, response.text
    return response.json()["id"], body["national_code"]


async def test_duplicate_pupil_code_across_regions_is_refused(world):
    _, taken = await new_pupil(world, A)
    before = await world.sql("SELECT COUNT(*) FROM student")
    response = await post(
        world, B, "/api/v1/school/students", {"national_code": taken.lower(), "first_name": "X", "last_name": "Y"}
    )
    assert response.status_code == 409
    assert taken in response.json()["detail"]
    assert await world.sql("SELECT COUNT(*) FROM student") == before


async def test_bad_pupil_code_names_the_field(world):
    response = await post(
        world, A, "/api/v1/school/students", {"national_code": "12345", "first_name": "X", "last_name": "Y"}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "national_code"


async def test_create_with_bad_class_writes_nothing(world):
    before = await world.sql("SELECT COUNT(*) FROM student")
    response = await post(
        world,
        A,
        "/api/v1/school/students",
        {"national_code": code(), "first_name": "X", "last_name": "Y", "class_id": world.objects[B]["class_id"]},
    )
    assert response.status_code == 404  # another school's class is not visible from here
    assert await world.sql("SELECT COUNT(*) FROM student") == before


async def test_enrolment_moves_between_classes_and_keeps_history(world):
    klass = await post(
        world, A, "/api/v1/school/classes", {"name": f"ENR-{world.backend}", "level_code": "TC", "track_code": "TCS"}
    )
    assert klass.status_code == 201
    pupil, _ = await new_pupil(world, A, class_id=world.objects[A]["class_id"])
    moved = await post(world, A, f"/api/v1/school/students/{pupil}/enrolment", {"class_id": klass.json()["id"]})
    assert moved.status_code == 200
    again = await post(world, A, f"/api/v1/school/students/{pupil}/enrolment", {"class_id": klass.json()["id"]})
    assert again.json()["id"] == moved.json()["id"]  # idempotent
    assert await world.sql("SELECT COUNT(*) FROM enrolment WHERE student_id = {}", pupil) == 2
    assert await world.sql("SELECT COUNT(*) FROM enrolment WHERE student_id = {} AND ends_on IS NULL", pupil) == 1


async def test_class_rules(world):
    bad_track = await post(world, A, "/api/v1/school/classes", {"name": "X", "level_code": "TC", "track_code": "SM"})
    assert bad_track.status_code == 400 and "track" in bad_track.json()["detail"]
    bad_level = await post(world, A, "/api/v1/school/classes", {"name": "X", "level_code": "7BAC"})
    assert bad_level.status_code == 400
    duplicate = await post(
        world, A, "/api/v1/school/classes", {"name": "TEST-1", "level_code": "TC", "track_code": "TCS"}
    )
    assert duplicate.status_code == 409


async def test_assignment_rules(world):
    objects = world.objects[A]
    other_region = await post(
        world,
        A,
        "/api/v1/school/assignments",
        {"teacher_id": world.objects[B]["teacher_id"], "class_id": objects["class_id"], "subject_code": "PC"},
    )
    assert other_region.status_code == 400 and "another region" in other_region.json()["detail"]
    same_region = await post(
        world,
        A,
        "/api/v1/school/assignments",
        {"teacher_id": world.objects[A2]["teacher_id"], "class_id": objects["class_id"], "subject_code": "PC"},
    )
    assert same_region.status_code == 400 and "not on the staff" in same_region.json()["detail"]
    not_taught = await post(
        world,
        A,
        "/api/v1/school/assignments",
        {"teacher_id": objects["teacher_id"], "class_id": objects["class_id"], "subject_code": "ACT"},
    )
    assert not_taught.status_code == 400 and "not taught" in not_taught.json()["detail"]
    taken = await post(
        world,
        A,
        "/api/v1/school/assignments",
        {"teacher_id": world.objects[A]["guardian_id"], "class_id": objects["class_id"], "subject_code": "MATH"},
    )
    assert taken.status_code == 400  # a guardian is not a teacher


async def lesson(world, school, **body):
    objects = world.objects[school]
    payload = {
        "class_id": objects["class_id"],
        "subject_code": "MATH",
        "teacher_id": objects["teacher_id"],
        "weekday": 1,
        "starts_at": "08:00",
        "ends_at": "10:00",
        **body,
    }
    return await post(world, school, "/api/v1/school/timetable", payload)


async def test_timetable_clashes_are_refused_with_the_reason(world):
    objects = world.objects[A]
    # the seeded lesson: Monday 08:00–10:00, MATH, TEST-1, Salle 1
    same_teacher = await lesson(world, A, starts_at="09:00", ends_at="11:00")
    assert same_teacher.status_code == 409 and "teacher" in same_teacher.json()["detail"]
    assert "Monday 08:00–10:00" in same_teacher.json()["detail"]

    second_class = await post(
        world, A, "/api/v1/school/classes", {"name": f"CLASH-{world.backend}", "level_code": "TC", "track_code": "TCS"}
    )
    second = second_class.json()["id"]
    await world.add_person(f"t2.{world.backend}@test.ma", "teacher", A)
    t2 = await world.services.db.fetchval("SELECT id FROM person WHERE email = {}", f"t2.{world.backend}@test.ma")
    assert (
        await post(
            world, A, "/api/v1/school/assignments", {"teacher_id": t2, "class_id": second, "subject_code": "MATH"}
        )
    ).status_code == 201
    room = await lesson(
        world, A, class_id=second, teacher_id=t2, room_id=objects["room_id"], starts_at="09:30", ends_at="10:30"
    )
    assert room.status_code == 409 and "room Salle 1" in room.json()["detail"]

    assert (
        await post(
            world,
            A,
            "/api/v1/school/assignments",
            {"teacher_id": t2, "class_id": objects["class_id"], "subject_code": "PC"},
        )
    ).status_code == 201
    same_class = await lesson(
        world, A, subject_code="PC", teacher_id=t2, room_id=None, starts_at="08:30", ends_at="09:30"
    )
    assert same_class.status_code == 409 and "class TEST-1" in same_class.json()["detail"]

    fine = await lesson(
        world, A, class_id=second, teacher_id=t2, room_id=objects["room_id"], starts_at="10:00", ends_at="11:00"
    )
    assert fine.status_code == 201
    inverted = await lesson(world, A, class_id=second, teacher_id=t2, weekday=2, starts_at="11:00", ends_at="10:00")
    assert inverted.status_code == 400
    assert (
        await world.api(
            "DELETE", f"/api/v1/school/timetable/{fine.json()['id']}", as_=f"director.{A}@test.ma", tenant=A
        )
    ).status_code == 204


async def test_a_teacher_in_two_schools_cannot_be_in_both_at_once(world):
    """The other school's timetable is invisible to this director, yet the clash is caught."""
    teacher = f"shared.teacher.{world.backend}@test.ma"
    await world.add_person(teacher, "teacher", A)
    await world.add_person(teacher, "teacher", A2)
    tid = await world.services.db.fetchval("SELECT id FROM person WHERE email = {}", teacher)
    for school in (A, A2):
        response = await post(
            world,
            school,
            "/api/v1/school/assignments",
            {"teacher_id": tid, "class_id": world.objects[school]["class_id"], "subject_code": "SVT"},
        )
        assert response.status_code == 201, response.text
    first = await lesson(
        world, A2, subject_code="SVT", teacher_id=tid, room_id=None, weekday=4, starts_at="14:00", ends_at="16:00"
    )
    assert first.status_code == 201, first.text
    second = await lesson(
        world, A, subject_code="SVT", teacher_id=tid, room_id=None, weekday=4, starts_at="15:00", ends_at="17:00"
    )
    assert second.status_code == 409
    assert "another school" in second.json()["detail"]
    # and the director of A learnt nothing more than that (no class name of the other school)
    assert "TEST-1" not in second.json()["detail"]


async def test_teacher_sees_only_classes_they_teach(world):
    teacher = f"teacher.{A}@test.ma"
    mine = await world.api("GET", "/api/v1/me/classes", as_=teacher)
    assert world.objects[A]["class_id"] in [c["id"] for c in mine.json()]
    assert {c["school"] for c in mine.json()} == {A}
    students = await world.api("GET", f"/api/v1/me/classes/{world.objects[A]['class_id']}/students", as_=teacher)
    assert students.status_code == 200 and any(s["id"] == world.objects[A]["student_id"] for s in students.json())
    klass = await post(
        world,
        A,
        "/api/v1/school/classes",
        {"name": f"NOTMINE-{world.backend}", "level_code": "TC", "track_code": "TCL"},
    )
    other = await world.api("GET", f"/api/v1/me/classes/{klass.json()['id']}/students", as_=teacher, tenant=A)
    assert other.status_code == 403
    foreign = await world.api("GET", f"/api/v1/me/classes/{world.objects[B]['class_id']}/students", as_=teacher)
    assert foreign.status_code == 404
    timetable = await world.api("GET", "/api/v1/me/timetable", as_=teacher)
    lessons = {(s["weekday"], s["starts_at"], s["subject_code"], s["teacher_id"]) for s in timetable.json()}
    assert (1, "08:00", "MATH", world.objects[A]["teacher_id"]) in lessons
    assert {s["school_id"] for s in timetable.json()} == {world.ids[A]}


async def test_parent_with_children_in_two_regions_sees_both_and_nothing_else(world):
    parent = f"two.regions.{world.backend}@test.ma"
    for school in (A, B):  # in neither school's reach yet: each link is an invitation the parent accepts
        await link_guardian(world, school, world.objects[school]["student_id"], parent, "Parent de deux")
    person = await world.services.db.fetchval("SELECT id FROM person WHERE email = {}", parent)
    await world.services.identity.set_password(person, "a-good-password-1")
    world.passwords[parent] = "a-good-password-1"
    children = await world.api("GET", "/api/v1/me/children", as_=parent)
    assert children.status_code == 200
    assert {c["id"] for c in children.json()} == {world.objects[A]["student_id"], world.objects[B]["student_id"]}
    assert {c["school"] for c in children.json()} == {A, B}
    for school in (A, B):
        week = await world.api(
            "GET", f"/api/v1/me/children/{world.objects[school]['student_id']}/timetable", as_=parent
        )
        assert week.status_code == 200 and week.json()[0]["subject_code"] == "MATH"
    stranger = await world.api("GET", f"/api/v1/me/children/{world.objects[A2]['student_id']}/timetable", as_=parent)
    assert stranger.status_code == 404
    # a teacher is not a guardian
    teacher = await world.api("GET", "/api/v1/me/children", as_=f"teacher.{A}@test.ma")
    assert teacher.status_code == 403


async def test_transfer_keeps_the_record_and_moves_who_sees_new_data(world):
    pupil, pupil_code = await new_pupil(world, A, class_id=world.objects[A]["class_id"])
    guardian = f"transfer.parent.{world.backend}@test.ma"
    await link_guardian(world, A, pupil, guardian, "P")
    response = await post(world, A, f"/api/v1/school/students/{pupil}/transfer", {"to_school": B})
    assert response.status_code == 200, response.text
    # the origin no longer sees the pupil; the destination does, with the same code and record
    assert (
        await world.api(
            "GET",
            f"/api/v1/school/classes/{world.objects[A]['class_id']}/timetable",
            as_=f"director.{A}@test.ma",
            tenant=A,
        )
    ).status_code == 200
    origin_list = await world.api(
        "GET", f"/api/v1/me/classes/{world.objects[A]['class_id']}/students", as_=f"teacher.{A}@test.ma"
    )
    assert pupil not in {s["id"] for s in origin_list.json()}
    enrol = await post(
        world, B, f"/api/v1/school/students/{pupil}/enrolment", {"class_id": world.objects[B]["class_id"]}
    )
    assert enrol.status_code == 200
    assert await world.sql("SELECT national_code FROM student WHERE id = {}", pupil) == pupil_code
    assert await world.sql("SELECT COUNT(*) FROM enrolment WHERE student_id = {}", pupil) == 2  # history kept
    person = await world.services.db.fetchval("SELECT id FROM person WHERE email = {}", guardian)
    schools = await world.services.db.fetch(
        "SELECT t.slug FROM membership m JOIN tenant t ON t.id = m.tenant_id "
        "WHERE m.person_id = {} AND m.role = 'parent'",
        person,
    )
    assert B in {s["slug"] for s in schools}
    # the origin director can no longer act on the pupil
    again = await post(
        world, A, f"/api/v1/school/students/{pupil}/enrolment", {"class_id": world.objects[A]["class_id"]}
    )
    assert again.status_code == 404


async def test_duty_roster(world):
    objects = world.objects[A]
    teacher = objects["teacher_id"]
    during_lesson = await post(
        world,
        A,
        "/api/v1/school/duties",
        {"teacher_id": teacher, "label": "Surveillance", "weekday": 1, "starts_at": "09:00", "ends_at": "09:30"},
    )
    assert during_lesson.status_code == 409
    label = f"Permanence {world.backend}"
    ok = await post(
        world,
        A,
        "/api/v1/school/duties",
        {"teacher_id": teacher, "label": label, "weekday": 5, "starts_at": "12:00", "ends_at": "13:00"},
    )
    assert ok.status_code == 201, ok.text
    twice = await post(
        world,
        A,
        "/api/v1/school/duties",
        {"teacher_id": teacher, "label": "Autre", "weekday": 5, "starts_at": "12:30", "ends_at": "13:30"},
    )
    assert twice.status_code == 409 and label in twice.json()["detail"]
    roster = await world.api("GET", "/api/v1/me/duties", as_=f"teacher.{A}@test.ma")
    assert any(d["label"] == label and d["starts_at"] == "12:00" for d in roster.json())


async def test_teachers_join_with_a_national_staff_number(world):
    email = f"new.teacher.{world.backend}@test.ma"
    number = "".join(random.choice("0123456789") for _ in range(8))
    added = await post(
        world, A, "/api/v1/school/teachers", {"email": email, "full_name": "Nouveau Prof", "staff_number": number}
    )
    assert added.status_code == 201, added.text
    person = added.json()["id"]
    # the same teacher joins a second school of the region: same identity, same number
    again = await post(
        world, A2, "/api/v1/school/teachers", {"email": email, "full_name": "Nouveau Prof", "staff_number": number}
    )
    assert again.status_code == 201 and again.json()["id"] == person
    # the number is national: a school of another region cannot give it to someone else
    taken = await post(
        world,
        B,
        "/api/v1/school/teachers",
        {"email": f"other.{world.backend}@test.ma", "full_name": "Autre", "staff_number": number},
    )
    assert taken.status_code == 409
    bad = await post(
        world,
        A,
        "/api/v1/school/teachers",
        {"email": f"x.{world.backend}@test.ma", "full_name": "X", "staff_number": "12-34"},
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "staff_number"
    # and can now be assigned
    assign = await post(
        world,
        A,
        "/api/v1/school/assignments",
        {"teacher_id": person, "class_id": world.objects[A]["class_id"], "subject_code": "ENG"},
    )
    assert assign.status_code == 201, assign.text


async def test_a_parents_children_follow_the_person_not_the_tenant_of_the_token(world):
    """The mobile app logs in at one school: /me/children still lists both children in two regions, each with
    its school and region, and a child's own calls work under the other child's school too."""
    parent = "parent@madrasa.demo"
    everywhere = await world.api("GET", "/api/v1/me/children", as_=parent)
    assert everywhere.status_code == 200 and len(everywhere.json()) == 2
    for tenant in ("lycee-ibn-batouta", "ecole-al-amal"):
        at_one = await world.api("GET", "/api/v1/me/children", as_=parent, tenant=tenant)
        assert at_one.status_code == 200, at_one.text
        children = at_one.json()
        assert {c["school"] for c in children} == {"lycee-ibn-batouta", "ecole-al-amal"}
        assert {c["region"] for c in children} == {"casablanca-settat", "rabat-sale-kenitra"}
        assert all(c["region_name"] and c["school_name"] for c in children)
        for child in children:
            week = await world.api("GET", f"/api/v1/me/children/{child['id']}/timetable", as_=parent, tenant=tenant)
            assert week.status_code == 200, week.text
    # isolation holds: another pupil's week is not the parent's to read
    stranger = world.objects["lycee-moulay-youssef"]["student_id"]
    other = await world.api("GET", f"/api/v1/me/children/{stranger}/timetable", as_=parent, tenant="lycee-ibn-batouta")
    assert other.status_code == 404
