"""Portal pages of the school structure: timetables, a guardian's children, the child switcher."""

from __future__ import annotations

import re

from tests.conftest import PASSWORD, link_guardian

HOME = "lycee-ibn-batouta"  # region casablanca-settat
OTHER = "lycee-moulay-youssef"  # region rabat-sale-kenitra


def child_links(html: str) -> set[str]:
    """Links to child pages found in a page."""
    return set(re.findall(r'href="(/t/[a-z0-9-]+/children/\d+)"', html))


async def test_teacher_timetable_lists_the_monday_lesson(world):
    response = await world.api("GET", "/timetable", as_=f"teacher.{HOME}@test.ma", tenant=HOME)
    assert response.status_code == 200, response.text
    html = response.text
    assert 'data-subject="MATH"' in html
    assert "Mathématiques" in html or "Mathematics" in html
    assert "Lundi" in html or "Monday" in html
    assert '<time datetime="08:00">08:00</time>' in html and "10:00" in html
    assert "TEST-1" in html and "Salle 1" in html


async def test_teacher_timetable_in_arabic_reads_right_to_left(world):
    response = await world.api("GET", "/timetable?lang=ar", as_=f"teacher.{HOME}@test.ma", tenant=HOME)
    assert response.status_code == 200
    assert 'dir="rtl"' in response.text and 'lang="ar"' in response.text
    assert "الرياضيات" in response.text and "الاثنين" in response.text


async def test_guardian_lists_their_child(world):
    student_id = world.objects[HOME]["student_id"]
    response = await world.api("GET", "/children?lang=fr", as_=f"guardian.{HOME}@test.ma", tenant=HOME)
    assert response.status_code == 200, response.text
    assert f"/t/{HOME}/children/{student_id}" in response.text
    assert "Pupil1 Test" in response.text and "TEST-1" in response.text
    assert "Mes enfants" in response.text


async def test_child_page_shows_the_timetable_in_arabic(world):
    student_id = world.objects[HOME]["student_id"]
    guardian = f"guardian.{HOME}@test.ma"
    response = await world.api("GET", f"/children/{student_id}?lang=fr", as_=guardian, tenant=HOME)
    assert response.status_code == 200, response.text
    assert "Mathématiques" in response.text and "08:00" in response.text and 'dir="ltr"' in response.text

    arabic = await world.api("GET", f"/children/{student_id}?lang=ar", as_=guardian, tenant=HOME)
    assert arabic.status_code == 200
    assert '<html lang="ar" dir="rtl">' in arabic.text
    assert "الرياضيات" in arabic.text and "الاثنين" in arabic.text and "08:00" in arabic.text
    assert "تلميذ اختبار" in arabic.text  # the pupil's Arabic name on the Arabic page


async def own_pupil_with_guardian(world, school: str, code: str, first_name: str, guardian: str) -> int:
    """A pupil of this test in the school's seeded class (which has a MATH lesson), linked to ``guardian``."""
    director = f"director.{school}@test.ma"
    created = await world.api(
        "POST",
        "/api/v1/school/students",
        as_=director,
        tenant=school,
        json={
            "national_code": code,
            "first_name": first_name,
            "last_name": "Twofold",
            "class_id": world.objects[school]["class_id"],
        },
    )
    assert created.status_code == 201, created.text
    student_id = int(created.json()["id"])
    await link_guardian(world, school, student_id, guardian, "Guardian Twofold")
    return student_id


async def test_guardian_with_children_in_two_regions_sees_both(world):
    # A family of this test's own: the seeded pupils and guardians stay as the other tests expect them.
    guardian = f"guardian.two-regions.{world.backend}@test.ma"
    home_student = await own_pupil_with_guardian(world, HOME, "Q700000001", "Hamza", guardian)
    other_student = await own_pupil_with_guardian(world, OTHER, "Q700000002", "Salma", guardian)
    person = await world.services.db.fetchval("SELECT id FROM person WHERE email = {}", guardian)
    await world.services.identity.set_password(person, PASSWORD)
    world.passwords[guardian] = PASSWORD
    expected = {f"/t/{HOME}/children/{home_student}", f"/t/{OTHER}/children/{other_student}"}

    listing = await world.api("GET", "/children?lang=fr", as_=guardian, tenant=HOME)
    assert listing.status_code == 200, listing.text
    assert child_links(listing.text) == expected  # both children, nothing else
    assert "Hamza Twofold" in listing.text and "Salma Twofold" in listing.text

    # The other child's page, under its own school, with a switcher back to the first one.
    page = await world.api("GET", f"/children/{other_student}", as_=guardian, tenant=OTHER)
    assert page.status_code == 200, page.text
    assert child_links(page.text) == expected
    assert 'aria-current="page"' in page.text and 'data-subject="MATH"' in page.text

    # Under the wrong school's prefix the guardian is sent to the child's school.
    moved = await world.api("GET", f"/children/{other_student}", as_=guardian, tenant=HOME)
    assert moved.status_code in (302, 303) and moved.headers["location"] == f"/t/{OTHER}/children/{other_student}"

    # The seeded guardian of the other school still sees only their own child, not this family's.
    # (other tests may give that guardian more children of their own school: the point is this family's)
    alone = await world.api("GET", "/children", as_=f"guardian.{OTHER}@test.ma", tenant=OTHER)
    links = child_links(alone.text)
    assert f"/t/{OTHER}/children/{world.objects[OTHER]['student_id']}" in links and not links & expected


async def test_another_parents_child_is_not_found(world):
    other = world.objects["college-al-khawarizmi"]["student_id"]
    for tenant in (HOME, "college-al-khawarizmi"):
        response = await world.api("GET", f"/children/{other}", as_=f"guardian.{HOME}@test.ma", tenant=tenant)
        assert response.status_code in (403, 404), f"{tenant}: {response.status_code}"
    response = await world.api("GET", f"/children/{other}", as_=f"guardian.{HOME}@test.ma", tenant=HOME)
    assert response.status_code == 404
    assert "Pupil2" not in response.text


async def test_teacher_cannot_open_a_child_page(world):
    student_id = world.objects[HOME]["student_id"]
    response = await world.api("GET", f"/children/{student_id}", as_=f"teacher.{HOME}@test.ma", tenant=HOME)
    assert response.status_code in (403, 404)
    assert "Pupil1" not in response.text
    listing = await world.api("GET", "/children", as_=f"teacher.{HOME}@test.ma", tenant=HOME)
    assert listing.status_code in (403, 404)


async def test_anonymous_visitor_is_sent_to_the_login(world):
    response = await world.client.get(f"/t/{HOME}/children", headers={"accept": "text/html"})
    assert response.status_code in (302, 303)
    assert response.headers["location"].startswith(f"/t/{HOME}/login?next=")


async def test_director_sees_class_timetables(world):
    class_id = world.objects[HOME]["class_id"]
    director = f"director.{HOME}@test.ma"
    listing = await world.api("GET", "/timetable/classes", as_=director, tenant=HOME)
    assert listing.status_code == 200, listing.text
    assert f"/t/{HOME}/timetable/classes/{class_id}" in listing.text
    week = await world.api("GET", f"/timetable/classes/{class_id}?lang=en", as_=director, tenant=HOME)
    assert week.status_code == 200
    assert "Mathematics" in week.text and "Monday" in week.text and "08:00" in week.text
    foreign = world.objects[OTHER]["class_id"]
    refused = await world.api("GET", f"/timetable/classes/{foreign}", as_=director, tenant=HOME)
    assert refused.status_code == 404
    parent = await world.api("GET", "/timetable/classes", as_=f"guardian.{HOME}@test.ma", tenant=HOME)
    assert parent.status_code == 403


async def test_home_sections_follow_the_roles(world):
    from core.context import RequestContext
    from core.identity import Identity
    from core.school.portal import home_sections

    async def urls(email: str) -> list[str]:
        identity_id = await world.services.db.fetchval("SELECT id FROM person WHERE email = {}", email)
        identity = Identity(identity_id, email, email, "", "fr")
        tenant = await world.services.tenants.by_slug(HOME)
        ctx = RequestContext(services=world.services, permission="public", identity=identity, tenant=tenant)
        return [s["url"] for s in await home_sections(ctx)]

    assert await urls(f"teacher.{HOME}@test.ma") == ["/timetable"]
    assert await urls(f"guardian.{HOME}@test.ma") == ["/children"]
    assert await urls(f"director.{HOME}@test.ma") == ["/timetable/classes"]


async def test_a_teachers_lessons_lead_to_their_registers(world):
    """On /timetable each of the teacher's lessons of the week, up to today, links to its register
    (attendance's ``madrasa_lesson_links``), which opens."""
    from core.clock import FixedClock
    from tests.test_attendance import DAY  # a Monday of the term, when the seeded lesson is taught

    previous = world.services.clock
    world.services.clock = FixedClock(DAY)
    try:
        teacher = f"teacher.{HOME}@test.ma"
        page = await world.api("GET", "/timetable", as_=teacher, tenant=HOME)
        assert page.status_code == 200, page.text
        slot = world.objects[HOME]["slot_id"]
        register = f"/t/{HOME}/attendance/sessions/{slot}/{DAY.isoformat()}"
        assert f'href="{register}"' in page.text
        opened = await world.client.get(
            register, headers={"cookie": f"madrasa_session={(await world.web_session(teacher))[0]}"}
        )
        assert opened.status_code == 200, opened.text[:300]
        # a pupil's or a parent's timetable carries no register link
        family = await world.api("GET", "/timetable", as_="student@madrasa.demo", tenant="lycee-ibn-batouta")
        assert "/attendance/sessions/" not in family.text
    finally:
        world.services.clock = previous
