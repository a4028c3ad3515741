"""Demo data: attendance taken in the demo teacher's lessons of the last school days, with a few absences.

The demo pupil (``student@madrasa.demo``) misses one lesson, so the family pages show an absence to
justify; a few classmates are absent or late elsewhere.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from core.plugin_api import SYSTEM_CLOCK, Scope
from plugins.attendance import common, service

DEMO_TEACHER = "teacher@madrasa.demo"
DEMO_PUPIL = "student@madrasa.demo"


async def load(db: Any, tenants: dict[str, int]) -> None:
    """Registers of the demo teacher's lessons over the last ten school days (once, with the demo)."""
    rng = random.Random(5)
    today = SYSTEM_CLOCK.today()
    now = SYSTEM_CLOCK.utcnow()
    async with db.scoped(Scope.everything()):
        teacher = await db.fetchval("SELECT id FROM person WHERE email = {}", DEMO_TEACHER)
        pupil = await db.fetchval(
            "SELECT s.id FROM student s JOIN person p ON p.id = s.person_id WHERE p.email = {}", DEMO_PUPIL
        )
        if teacher is None:
            return
        slots = await db.fetch(
            "SELECT id, class_id, weekday, starts_at, ends_at, valid_from, valid_to, region_id, province_id, "
            "school_id, teacher_id FROM timetable_slot WHERE teacher_id = {} ORDER BY id",
            teacher,
        )
        if not slots:
            return
        cal = await service.calendar(db, slots[0]["region_id"], today)
        # The last ten school days before today (the end of the year, in the summer).
        year_start, year_end = cal["year"]["starts_on"], cal["year"]["ends_on"]
        days = service.school_days(cal, year_start, min(today, year_end + timedelta(days=1)) - timedelta(days=1))[-10:]
        pupil_marked = False
        for day in days:
            for slot in slots:
                if slot["weekday"] != day.isoweekday():
                    continue
                if not slot["valid_from"] <= day <= slot["valid_to"]:
                    continue
                length = common.slot_minutes(slot["starts_at"], slot["ends_at"])
                session = await db.fetchrow(
                    "INSERT INTO attendance_session (region_id, province_id, school_id, slot_id, class_id, on_date, "
                    "minutes, teacher_id, taken_by, taken_at, updated_at, version) "
                    "VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, 1) RETURNING id",
                    slot["region_id"],
                    slot["province_id"],
                    slot["school_id"],
                    slot["id"],
                    slot["class_id"],
                    day,
                    length,
                    teacher,
                    teacher,
                    now,
                    now,
                )
                roster = [r["id"] for r in await service.roster(db, slot["class_id"], day)]
                chosen = rng.sample(roster, min(len(roster), rng.choice((0, 1, 1, 2))))
                if pupil in roster and not pupil_marked:
                    chosen = [pupil, *[c for c in chosen if c != pupil]]
                    pupil_marked = True
                for position, sid in enumerate(chosen):
                    late = position > 0 and rng.random() < 0.3
                    await db.execute(
                        "INSERT INTO attendance_mark (region_id, province_id, school_id, session_id, class_id, "
                        "student_id, on_date, kind, minutes, justified) "
                        "VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
                        slot["region_id"],
                        slot["province_id"],
                        slot["school_id"],
                        session["id"],
                        slot["class_id"],
                        sid,
                        day,
                        "late" if late else "absent",
                        rng.choice((5, 10, 15)) if late else length,
                        False,
                    )
