"""Attendance portal pages: the register (form posts, errors shown on the page), the family's page with the
justification form (413/415 as form errors), the director's review, statistics and the home per role."""

from __future__ import annotations

import re

from tests.test_attendance import PDF, A, Setup, count, today


def form_url(s: Setup, slot: int | None = None) -> str:
    return f"/attendance/sessions/{slot or s.slots[0]}/{today().isoformat()}"


async def test_teacher_takes_attendance_with_the_form(world):
    s = await Setup(world).build()
    home = await world.api("GET", "/attendance/", as_=s.teacher, tenant=A)
    assert home.status_code == 200
    assert form_url(s) in home.text and f'data-slot="{s.slots[0]}"' in home.text

    page = await world.api("GET", form_url(s), as_=s.teacher, tenant=A)
    assert page.status_code == 200, page.text
    for pupil in s.pupils:
        assert f'name="status_{pupil}" value="present" checked' in page.text
        assert f'<label class="sr-only" for="minutes-{pupil}">' in page.text  # every field is labelled
    form = {f"status_{p}": "present" for p in s.pupils}
    form[f"status_{s.pupils[0]}"] = "absent"
    form[f"status_{s.pupils[1]}"] = "late"
    form[f"minutes_{s.pupils[1]}"] = "8"
    response = await world.api("POST", form_url(s), as_=s.teacher, tenant=A, data=form)
    assert response.status_code == 303, response.text
    assert response.headers["location"].endswith(f"{form_url(s)}?saved=1")
    page = await world.api("GET", response.headers["location"].removeprefix(f"/t/{A}"), as_=s.teacher, tenant=A)
    assert 'id="register-notice"' in page.text
    assert f'name="status_{s.pupils[0]}" value="absent" checked' in page.text
    assert f'name="minutes_{s.pupils[1]}" value="8"' in page.text
    assert await count(world, "SELECT COUNT(*) FROM attendance_mark WHERE class_id = {}", s.class_id) == 2


async def test_register_errors_are_shown_on_the_page_and_nothing_is_saved(world):
    s = await Setup(world).build()
    form = {f"status_{s.pupils[0]}": "late", f"minutes_{s.pupils[0]}": "beaucoup"}
    response = await world.api("POST", form_url(s), as_=s.teacher, tenant=A, data=form)
    assert response.status_code == 400
    assert 'id="register-error"' in response.text and 'value="late" checked' in response.text
    form = {f"status_{s.pupils[0]}": "late", f"minutes_{s.pupils[0]}": "500"}
    response = await world.api("POST", form_url(s), as_=s.teacher, tenant=A, data=form)
    assert response.status_code == 400 and "between 1 and 120" in response.text
    assert await count(world, "SELECT COUNT(*) FROM attendance_session WHERE class_id = {}", s.class_id) == 0
    # Another teacher's lesson: refused.
    other = await Setup(world).build()
    assert (await world.api("GET", form_url(other), as_=s.teacher, tenant=A)).status_code == 403


async def test_family_justifies_with_a_document_and_the_director_accepts(world):
    s = await Setup(world).build()
    response = await world.api("POST", form_url(s), as_=s.teacher, tenant=A, data={f"status_{s.pupils[0]}": "absent"})
    assert response.status_code == 303
    parent = s.guardians[0]
    page = await world.api("GET", f"/attendance/pupils/{s.pupils[0]}", as_=parent, tenant=A)
    assert page.status_code == 200
    mark = int(re.search(r'name="absence" value="(\d+)"', page.text).group(1))
    assert 'enctype="multipart/form-data"' in page.text and '<label for="document">' in page.text

    # Too large and wrong type: the page says so, nothing is stored.
    big = PDF + b"0" * (5 * 1024 * 1024)
    response = await world.api(
        "POST",
        f"/attendance/pupils/{s.pupils[0]}/justify",
        as_=parent,
        tenant=A,
        data={"absence": str(mark), "reason": "illness"},
        files={"document": ("big.pdf", big, "application/pdf")},
    )
    assert response.status_code == 413 and 'id="pupil-error"' in response.text
    response = await world.api(
        "POST",
        f"/attendance/pupils/{s.pupils[0]}/justify",
        as_=parent,
        tenant=A,
        data={"absence": str(mark), "reason": "illness"},
        files={"document": ("a.txt", b"hello", "text/plain")},
    )
    assert response.status_code == 415 and 'id="pupil-error"' in response.text
    response = await world.api(
        "POST",
        f"/attendance/pupils/{s.pupils[0]}/justify",
        as_=parent,
        tenant=A,
        data={"reason": "illness"},
        files={"document": ("", b"", "application/octet-stream")},
    )
    assert response.status_code == 400  # no absence ticked
    assert await count(world, "SELECT COUNT(*) FROM attendance_justification WHERE student_id = {}", s.pupils[0]) == 0

    response = await world.api(
        "POST",
        f"/attendance/pupils/{s.pupils[0]}/justify",
        as_=parent,
        tenant=A,
        data={"absence": str(mark), "reason": "illness", "note": "Grippe"},
        files={"document": ("certificat.pdf", PDF, "application/pdf")},
    )
    assert response.status_code == 303, response.text
    page = await world.api("GET", f"/attendance/pupils/{s.pupils[0]}?sent=1", as_=parent, tenant=A)
    assert 'data-state="pending"' in page.text

    review = await world.api("GET", "/attendance/review", as_=s.director, tenant=A)
    assert review.status_code == 200 and "Grippe" in review.text
    jid = await world.sql("SELECT id FROM attendance_justification WHERE student_id = {}", s.pupils[0])
    assert f'data-justification="{jid}"' in review.text
    document = await world.api("GET", f"/attendance/justifications/{jid}/document", as_=s.director, tenant=A)
    assert document.status_code == 200 and document.content == PDF
    response = await world.api(
        "POST", f"/attendance/justifications/{jid}/review", as_=s.director, tenant=A, data={"decision": "accepted"}
    )
    assert response.status_code == 303
    page = await world.api("GET", f"/attendance/pupils/{s.pupils[0]}", as_=parent, tenant=A)
    assert f'data-mark="{mark}" data-state="accepted"' in page.text


async def test_statistics_page_for_a_director_and_a_region(world):
    s = await Setup(world).build()
    await world.api("POST", form_url(s), as_=s.teacher, tenant=A, data={f"status_{s.pupils[0]}": "absent"})
    page = await world.api("GET", "/attendance/stats", as_=s.director, tenant=A)
    assert page.status_code == 200 and 'id="stats-table"' in page.text and s.class_id and "stats.csv" in page.text
    region = await world.api("GET", "/attendance/stats", as_="region.casa@madrasa.demo", tenant="casablanca-settat")
    assert region.status_code == 200 and 'id="stats-table"' in region.text
    assert (await world.api("GET", "/attendance/stats", as_=s.teacher, tenant=A)).status_code == 403
    home = await world.api("GET", "/", as_=s.director, tenant=A)
    assert "/attendance/review" in home.text  # the director's dashboard card


async def test_director_lists_the_registers_of_a_day_and_opens_one(world):
    s = await Setup(world).build()
    home = await world.api("GET", "/attendance/", as_=s.director, tenant=A, params={"day": today().isoformat()})
    assert home.status_code == 200
    assert f'data-slot="{s.slots[0]}"' in home.text and f'data-slot="{s.slots[1]}"' in home.text
    page = await world.api("GET", form_url(s), as_=s.director, tenant=A)
    assert page.status_code == 200 and 'id="save-register"' in page.text
    # A teacher's home lists only their own lessons.
    other = await Setup(world).build()
    home = await world.api("GET", "/attendance/", as_=other.teacher, tenant=A)
    assert f'data-slot="{other.slots[0]}"' in home.text and f'data-slot="{s.slots[0]}"' not in home.text
