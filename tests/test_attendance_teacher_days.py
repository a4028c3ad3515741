"""A teacher's registers of past days: a date picker on the attendance home lists that day's lessons, whose
registers open read-only (corrections of another day are the director's)."""

from __future__ import annotations

from datetime import timedelta

from tests.test_attendance import A, Setup, school_day, today  # noqa: F401 (fixture)


async def test_teacher_picks_a_past_day_and_opens_its_register_read_only(world):
    s = await Setup(world).build()
    earlier = today() - timedelta(days=7)  # the same weekday a week before: a school day with these lessons
    home = await world.api("GET", "/attendance/?lang=fr", as_=s.teacher, tenant=A)
    assert home.status_code == 200, home.text
    assert 'id="teacher-day"' in home.text and f'max="{today().isoformat()}"' in home.text
    assert f'href="/t/{A}/attendance/sessions/{s.slots[0]}/{today().isoformat()}"' in home.text

    past = await world.api("GET", "/attendance/?lang=fr", as_=s.teacher, tenant=A, params={"day": earlier.isoformat()})
    assert past.status_code == 200, past.text
    register_url = f"/t/{A}/attendance/sessions/{s.slots[0]}/{earlier.isoformat()}"
    assert f'href="{register_url}"' in past.text and "Cours de ce jour-là" in past.text
    assert f'value="{earlier.isoformat()}"' in past.text

    register = await world.api("GET", register_url.removeprefix(f"/t/{A}") + "?lang=fr", as_=s.teacher, tenant=A)
    assert register.status_code == 200, register.text
    assert "est corrigé par le directeur" in register.text
    assert 'id="save-register"' not in register.text

    # A day in the future is brought back to today; another teacher's lessons never show.
    future = today() + timedelta(days=7)
    ahead = await world.api("GET", "/attendance/", as_=s.teacher, tenant=A, params={"day": future.isoformat()})
    assert future.isoformat() not in ahead.text.replace(f'max="{today().isoformat()}"', "")
    other = await Setup(world).build()
    mine = await world.api("GET", "/attendance/", as_=other.teacher, tenant=A, params={"day": earlier.isoformat()})
    assert f'data-slot="{s.slots[0]}"' not in mine.text and f'data-slot="{other.slots[0]}"' in mine.text


async def test_the_week_of_lessons_leads_to_each_days_register(world):
    s = await Setup(world).build()
    home = await world.api("GET", "/attendance/?lang=fr", as_=s.teacher, tenant=A)
    assert f'href="/t/{A}/attendance/week?day={today().isoformat()}"' in home.text

    week = await world.api("GET", "/attendance/week?lang=fr", as_=s.teacher, tenant=A)
    assert week.status_code == 200, week.text
    assert "Mes registres de la semaine" in week.text
    for slot in s.slots:
        assert f'href="/t/{A}/attendance/sessions/{slot}/{today().isoformat()}"' in week.text
    assert 'rel="next"' not in week.text  # no week after the current one

    earlier = today() - timedelta(days=7)
    before = await world.api("GET", "/attendance/week", as_=s.teacher, tenant=A, params={"day": earlier.isoformat()})
    assert before.status_code == 200
    assert f'href="/t/{A}/attendance/sessions/{s.slots[0]}/{earlier.isoformat()}"' in before.text
    assert f"/attendance/sessions/{s.slots[0]}/{today().isoformat()}" not in before.text
    assert 'rel="next"' in before.text

    # Another teacher's week does not list these lessons; a family has no week of registers.
    other = await Setup(world).build()
    theirs = await world.api("GET", "/attendance/week", as_=other.teacher, tenant=A)
    assert f'data-slot="{s.slots[0]}"' not in theirs.text and f'data-slot="{other.slots[0]}"' in theirs.text
    assert (await world.api("GET", "/attendance/week", as_=s.guardians[0], tenant=A)).status_code == 403


async def test_the_teachers_home_page_leads_to_the_week_of_registers(world):
    s = await Setup(world).build()
    home = await world.api("GET", "/?lang=fr", as_=s.teacher, tenant=A)
    assert home.status_code == 200
    assert f'href="/t/{A}/attendance/week"' in home.text and "Mes registres de la semaine" in home.text
    family = await world.api("GET", "/?lang=fr", as_=s.guardians[0], tenant=A)
    assert "/attendance/week" not in family.text
