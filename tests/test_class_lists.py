"""Class lists in the portal: a teacher's classes from the menu, and a class's pupils (code, name, no photo),
printable; other teachers 403, families 403, another school's class 404."""

from __future__ import annotations

import secrets

from tests.test_school_portal import HOME, OTHER


async def test_teacher_reaches_the_list_of_a_class_from_the_menu(world):
    teacher = f"teacher.{HOME}@test.ma"
    home = await world.api("GET", "/?lang=fr", as_=teacher, tenant=HOME)
    assert home.status_code == 200
    assert f'href="/t/{HOME}/classes"' in home.text and "Mes classes" in home.text

    class_id = world.objects[HOME]["class_id"]
    classes = await world.api("GET", "/classes?lang=fr", as_=teacher, tenant=HOME)
    assert classes.status_code == 200, classes.text
    assert f'href="/t/{HOME}/classes/{class_id}"' in classes.text

    listing = await world.api("GET", f"/classes/{class_id}?lang=fr", as_=teacher, tenant=HOME)
    assert listing.status_code == 200, listing.text
    pupil = world.objects[HOME]["student_id"]
    code = await world.sql("SELECT national_code FROM student WHERE id = {}", pupil)
    last = await world.sql("SELECT last_name FROM student WHERE id = {}", pupil)
    assert f"<bdi>{code}</bdi>" in listing.text and last in listing.text
    assert f'data-student="{pupil}"' in listing.text
    assert "Code élève" in listing.text and "<img" not in listing.text.split("<main>", 1)[1]
    # Printable: a print button driven by a static script (no inline script) and a print style sheet.
    assert "data-print" in listing.text and '<script src="/static/core/print.js"></script>' in listing.text
    assert "<script>" not in listing.text
    css = await world.client.get("/static/core/class-list.css")
    assert css.status_code == 200 and "@media print" in css.text

    arabic = await world.api("GET", f"/classes/{class_id}?lang=ar", as_=teacher, tenant=HOME)
    assert 'dir="rtl"' in arabic.text and "رقم التلميذ" in arabic.text


async def test_class_lists_are_refused_outside_ones_classes(world):
    class_id = world.objects[HOME]["class_id"]
    other_teacher = await world.add_person(f"classlist.{secrets.token_hex(3)}@test.ma", "teacher", HOME)
    mine = await world.api("GET", "/classes", as_=other_teacher, tenant=HOME)
    assert mine.status_code == 200 and f"/classes/{class_id}" not in mine.text
    assert (await world.api("GET", f"/classes/{class_id}", as_=other_teacher, tenant=HOME)).status_code == 403
    assert (
        await world.api("GET", f"/classes/{class_id}", as_=f"guardian.{HOME}@test.ma", tenant=HOME)
    ).status_code == 403
    # The director sees every class of the school.
    director = await world.api("GET", "/classes", as_=f"director.{HOME}@test.ma", tenant=HOME)
    assert director.status_code == 200 and f'href="/t/{HOME}/classes/{class_id}"' in director.text
    assert (
        await world.api("GET", f"/classes/{class_id}", as_=f"director.{HOME}@test.ma", tenant=HOME)
    ).status_code == 200
    # Another school's class, from that school's portal or this one's: not found.
    foreign = world.objects[OTHER]["class_id"]
    assert (
        await world.api("GET", f"/classes/{foreign}", as_=f"director.{HOME}@test.ma", tenant=HOME)
    ).status_code == 404
    assert (
        await world.api("GET", f"/classes/{class_id}", as_=f"director.{OTHER}@test.ma", tenant=OTHER)
    ).status_code == 404
