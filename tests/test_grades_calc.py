"""Grade calculations: the pure functions, and the set-based semester close checked against them."""

from __future__ import annotations

import asyncio
import json
import random
import secrets
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from core.school.rules import CoefficientRow, effective_coefficients
from core.scope import Scope
from plugins.grades import calc
from plugins.grades.calc import MarkIn, Stats
from plugins.grades.close import CloseStats, TermAlreadyClosed, close_term, compute_results

SCHOOL = "lycee-ibn-batouta"
OTHER_SCHOOL = "lycee-moulay-youssef"
LEVEL, TRACK = "1BAC", "SE"
#: Subjects of the test class and how many assessments each has (INFO has no coefficient at 1BAC SE).
SUBJECTS = {"MATH": 3, "PC": 2, "FRA": 2, "ARA": 1, "INFO": 1}
#: Stored averages are NUMERIC(6, 3), shares NUMERIC(5, 4).
AVG_TOL = 0.0005 + 1e-9
SHARE_TOL = 0.00005 + 1e-9


# --------------------------------------------------------------------------- pure: subject average


def test_one_assessment_only_is_its_normalised_score():
    assert calc.subject_average([MarkIn(score=13.5)]) == 13.5
    assert calc.subject_average([MarkIn(score=7, max_score=10)]) == 14.0
    assert calc.subject_average([MarkIn(score=30, max_score=40, weight=3)]) == 15.0


def test_weighted_mean_on_twenty():
    marks = [MarkIn(score=12), MarkIn(score=8, max_score=10, weight=2), MarkIn(score=10, max_score=40, weight=0.5)]
    expected = (12 * 1 + 16 * 2 + 5 * 0.5) / 3.5
    assert calc.subject_average(marks) == pytest.approx(expected, abs=1e-12)


def test_absent_counts_as_zero_or_is_ignored():
    marks = [MarkIn(score=16), MarkIn(score=None, status="absent")]
    assert calc.subject_average(marks, "zero", "ignore") == 8.0
    assert calc.subject_average(marks, "ignore", "ignore") == 16.0
    # a score left on an absent mark does not count: the status decides
    assert calc.subject_average([MarkIn(score=16), MarkIn(score=18, status="absent")], "zero", "ignore") == 8.0


def test_excused_is_ignored_or_counts_as_zero():
    marks = [MarkIn(score=14, weight=2), MarkIn(score=None, status="excused")]
    assert calc.subject_average(marks, "zero", "ignore") == 14.0
    assert calc.subject_average(marks, "zero", "zero") == pytest.approx(28 / 3)


def test_nothing_that_counts_gives_none():
    assert calc.subject_average([]) is None
    assert calc.subject_average([MarkIn(score=None)]) is None  # not entered yet
    assert calc.subject_average([MarkIn(score=None, status="excused")] * 2, "zero", "ignore") is None
    assert calc.subject_average([MarkIn(score=None, status="absent")], "ignore", "ignore") is None
    assert calc.subject_average([MarkIn(score=12, weight=0)]) is None
    assert calc.subject_average([MarkIn(score=12, max_score=0)]) is None
    # only excused absences, counted as zero: an average of 0, not None
    assert calc.subject_average([MarkIn(score=None, status="excused")], "zero", "zero") == 0.0


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="absent_counts_as"):
        calc.subject_average([MarkIn(score=1)], "half", "ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="excused_counts_as"):
        calc.subject_average([MarkIn(score=1)], "zero", "maybe")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- pure: general and annual averages


def test_general_average_weights_by_coefficient():
    assert calc.general_average([(12.0, 4), (8.0, 2), (15.0, 1)]) == pytest.approx((48 + 16 + 15) / 7)


def test_subject_with_no_marks_neither_adds_nor_divides():
    with_gap = calc.general_average([(12.0, 4), (None, 5), (8.0, 2)])
    assert with_gap == pytest.approx((48 + 16) / 6)
    assert calc.general_average([(None, 3), (None, 2)]) is None
    assert calc.general_average([]) is None


def test_coefficient_zero_neither_adds_nor_divides():
    assert calc.general_average([(12.0, 4), (20.0, 0)]) == 12.0
    assert calc.general_average([(12.0, 0), (3.0, 0)]) is None


def test_annual_average_is_the_mean_of_available_terms():
    assert calc.annual_average([12.0, 14.0]) == 13.0
    assert calc.annual_average([None, 14.5]) == 14.5
    assert calc.annual_average([None, None]) is None
    assert calc.annual_average([]) is None


# --------------------------------------------------------------------------- pure: ranks


def test_competition_ranking_with_ties():
    ranks = calc.rank_with_ties({"a": 15.0, "b": 12.5, "c": 12.5, "d": 11.0, "e": None, "f": 18.0})
    assert ranks == {"f": 1, "a": 2, "b": 3, "c": 3, "d": 5, "e": None}


def test_all_tied_and_empty():
    assert calc.rank_with_ties({1: 10.0, 2: 10.0, 3: 10.0}) == {1: 1, 2: 1, 3: 1}
    assert calc.rank_with_ties({}) == {}
    assert calc.rank_with_ties({"x": None}) == {"x": None}


def test_floating_point_noise_does_not_split_a_tie():
    noisy = 0.1 + 0.2  # 0.30000000000000004
    assert noisy != 0.3
    assert calc.rank_with_ties({"a": noisy * 10, "b": 3.0, "c": 2.0}) == {"a": 1, "b": 1, "c": 3}


# --------------------------------------------------------------------------- pure: statistics and rounding


def test_class_statistics():
    stats = calc.class_statistics([8.0, 10.0, 12.0, 20.0, None])
    assert stats == Stats(
        count=4,
        mean=12.5,
        median=11.0,
        minimum=8.0,
        maximum=20.0,
        pass_share=0.75,
        distribution=(0, 0, 0, 0, 1, 1, 1, 0, 0, 1),
    )
    odd = calc.class_statistics([3.0, 1.0, 2.0])
    assert odd.median == 2.0 and odd.count == 3 and odd.pass_share == 0.0


def test_statistics_of_nothing():
    stats = calc.class_statistics([None, None])
    assert stats.count == 0 and stats.mean is None and stats.median is None and stats.pass_share is None
    assert stats.minimum is None and stats.maximum is None and stats.distribution == (0,) * 10


def test_band_edges():
    assert calc.band(0.0) == 0 and calc.band(1.99) == 0 and calc.band(2.0) == 1
    assert calc.band(9.99) == 4 and calc.band(10.0) == 5  # 10 opens the band [10, 12) and passes
    assert calc.band(17.999) == 8 and calc.band(18.0) == 9
    assert calc.band(20.0) == 9  # [18, 20] is closed
    assert calc.band(-1.0) == 0 and calc.band(25.0) == 9  # out of range lands in the end bands
    assert calc.band(10 - 1e-12) == 5  # float noise below 10 is 10
    stats = calc.class_statistics([10.0, 9.999, 20.0, 18.0, 0.0])
    assert stats.distribution == (1, 0, 0, 0, 1, 1, 0, 0, 0, 2)
    assert stats.pass_share == pytest.approx(3 / 5)


def test_pass_mark_is_inclusive_and_noise_tolerant():
    assert calc.class_statistics([10.0]).pass_share == 1.0
    assert calc.class_statistics([9.99]).pass_share == 0.0
    assert calc.class_statistics([(0.1 + 0.2) / 0.3 * 10 - 1e-13]).pass_share == 1.0


def test_rounding_only_for_display():
    average = calc.general_average([(12.344, 1), (12.346, 1)])
    assert average == pytest.approx(12.345)  # full precision kept
    assert calc.for_display(average) == Decimal("12.35")
    assert calc.for_display(9.995) == Decimal("10.00")
    assert calc.for_display(14.666666666666666) == Decimal("14.67")
    assert calc.for_display(None) is None


# --------------------------------------------------------------------------- database: set-up


_DATA: dict[str, dict[str, Any]] = {}


async def _post(world, path: str, body: dict[str, Any]) -> int:
    response = await world.api("POST", path, as_=f"director.{SCHOOL}@test.ma", tenant=SCHOOL, json=body)
    assert response.status_code in (200, 201), f"{path}: {response.text}"
    return int(response.json()["id"])


async def _new_class(world, pupils: int) -> tuple[int, list[int]]:
    """A class of ours with pupils, through the API."""
    class_id = await _post(
        world,
        "/api/v1/school/classes",
        {"name": f"GR-CALC-{secrets.token_hex(4)}", "level_code": LEVEL, "track_code": TRACK},
    )
    ids = []
    for n in range(pupils):
        code = "G" + "".join(secrets.choice("0123456789") for _ in range(9))
        ids.append(
            await _post(
                world,
                "/api/v1/school/students",
                {"national_code": code, "first_name": f"Calc{n}", "last_name": "Grades", "class_id": class_id},
            )
        )
    return class_id, ids


async def _term_id(world) -> int:
    return int(await world.sql("SELECT id FROM term WHERE tenant_id IS NULL ORDER BY id LIMIT 1"))


def _random_plan(rng: random.Random, pupils: int) -> list[dict[tuple[str, int], tuple[Decimal | None, str] | None]]:
    """Per pupil, per (subject, position): (score, status), or None for no mark row."""
    plan = []
    for _ in range(pupils):
        marks: dict[tuple[str, int], tuple[Decimal | None, str] | None] = {}
        for subject, count in SUBJECTS.items():
            for position in range(1, count + 1):
                draw = rng.random()
                if draw < 0.08:
                    marks[(subject, position)] = (None, "absent")
                elif draw < 0.15:
                    marks[(subject, position)] = (None, "excused")
                elif draw < 0.19:
                    marks[(subject, position)] = (None, "present")  # not entered yet
                elif draw < 0.21:
                    marks[(subject, position)] = None  # no row at all
                else:
                    marks[(subject, position)] = (Decimal(rng.randrange(0, 81)) / 4, "present")  # on /20, scaled later
        plan.append(marks)
    return plan


async def _data(world) -> dict[str, Any]:
    """Our class, pupils, sheets, assessments and marks (made once per world)."""
    if world.backend in _DATA:
        return _DATA[world.backend]
    rng = random.Random(20260907)
    class_id, pupils = await _new_class(world, 12)
    school = await world.services.tenants.by_slug(SCHOOL)
    cols = school.scope_columns()
    scope = [cols["region_id"], cols["province_id"], cols["school_id"]]
    term_id = await _term_id(world)
    teacher = world.objects[SCHOOL]["teacher_id"]
    plan = _random_plan(rng, len(pupils))
    plan[6] = dict(plan[1])  # pupil 6 ties with pupil 1
    plan[2].update({("FRA", 1): (None, "excused"), ("FRA", 2): (None, "excused")})  # FRA: excused only
    plan[3].update({("PC", 1): None, ("PC", 2): None})  # no mark at all in PC
    plan[4].update({("ARA", 1): (Decimal(15), "present")})  # one assessment only
    plan[7] = dict.fromkeys(plan[7])  # enrolled, no marks at all
    plan[8].update({("MATH", 1): (Decimal(10), "present"), ("MATH", 2): None, ("MATH", 3): None})
    now = datetime.now(UTC)
    db = world.services.db
    async with db.scoped(Scope.everything()):
        for subject, count in SUBJECTS.items():
            sheet = await db.fetchval(
                "INSERT INTO grade_sheet (region_id, province_id, school_id, class_id, subject_code, term_id, "
                "teacher_id, state) VALUES ({}, {}, {}, {}, {}, {}, {}, 'validated') RETURNING id",
                *scope,
                class_id,
                subject,
                term_id,
                teacher,
            )
            for position in range(1, count + 1):
                max_score = Decimal(rng.choice([20, 10, 40]))
                weight = Decimal(str(rng.choice([1, 2, 0.5])))
                if subject == "MATH" and position == 1:
                    max_score, weight = Decimal(20), Decimal(1)
                assessment = await db.fetchval(
                    "INSERT INTO grade_assessment (region_id, province_id, school_id, sheet_id, class_id, "
                    "subject_code, term_id, kind, position, title, scheduled_on, max_score, weight, version, "
                    "created_at) VALUES ({}, {}, {}, {}, {}, {}, {}, 'cc', {}, {}, {}, {}, {}, 0, {}) RETURNING id",
                    *scope,
                    sheet,
                    class_id,
                    subject,
                    term_id,
                    position,
                    f"CC{position}",
                    date(2026, 11, position),
                    max_score,
                    weight,
                    now,
                )
                rows = []
                for pupil, marks in zip(pupils, plan, strict=True):
                    mark = marks.get((subject, position))
                    if mark is None:
                        continue
                    score, status = mark
                    scaled = None if score is None else (score * max_score / 20).quantize(Decimal("0.01"))
                    rows.append((*scope, assessment, pupil, scaled, status, now))
                await db.executemany(
                    "INSERT INTO grade_mark (region_id, province_id, school_id, assessment_id, student_id, score, "
                    "status, updated_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {})",
                    rows,
                )
        # pupil 8 has left the class: results, but no rank and not in the statistics
        await db.execute(
            "UPDATE enrolment SET ends_on = {}, status = 'moved' WHERE student_id = {} AND ends_on IS NULL",
            date(2026, 12, 1),
            pupils[8],
        )
    data = {"class_id": class_id, "pupils": pupils, "school": school, "term_id": term_id}
    _DATA[world.backend] = data
    return data


# --------------------------------------------------------------------------- database: reference and results


async def _expected(world, data: dict[str, Any]) -> dict[str, Any]:
    """What plugins.grades.calc says about our class, from the rows in the database."""
    school = data["school"]
    db = world.services.db
    async with db.scoped(Scope.everything(), write=False):
        marks = await db.fetch(
            "SELECT m.student_id, a.subject_code, a.max_score, a.weight, m.score, m.status FROM grade_mark m "
            "JOIN grade_assessment a ON a.id = m.assessment_id WHERE a.term_id = {} AND a.class_id = {}",
            data["term_id"],
            data["class_id"],
        )
        policy = await db.fetchrow(
            "SELECT absent_counts_as, excused_counts_as FROM grade_policy WHERE tenant_id = {}", school.region_id
        ) or await db.fetchrow("SELECT absent_counts_as, excused_counts_as FROM grade_policy WHERE tenant_id IS NULL")
        coefficient_rows = await db.fetch(
            "SELECT tenant_id, subject_code, coefficient, weekly_hours FROM subject_coefficient "
            "WHERE level_code = {} AND COALESCE(track_code, '') = {}",
            LEVEL,
            TRACK,
        )
        enrolled = {
            r["student_id"]
            for r in await db.fetch(
                "SELECT student_id FROM enrolment WHERE class_id = {} AND ends_on IS NULL", data["class_id"]
            )
        }
    assert policy is not None
    rules = [
        CoefficientRow(r["tenant_id"], r["subject_code"], float(r["coefficient"]), float(r["weekly_hours"]))
        for r in coefficient_rows
    ]
    coefficients = {s: c for s, (c, _) in effective_coefficients(rules, school.region_id, school.school_id).items()}
    by_pupil: dict[int, dict[str, list[MarkIn]]] = {}
    for m in marks:
        by_pupil.setdefault(m["student_id"], {}).setdefault(m["subject_code"], []).append(
            MarkIn(
                score=None if m["score"] is None else float(m["score"]),
                max_score=float(m["max_score"]),
                weight=float(m["weight"]),
                status=m["status"],
            )
        )
    subject: dict[tuple[int, str], tuple[float | None, float]] = {}
    general: dict[int, float | None] = {}
    for pupil, subjects in by_pupil.items():
        pairs = []
        for code, items in subjects.items():
            average = calc.subject_average(items, policy["absent_counts_as"], policy["excused_counts_as"])
            coefficient = coefficients.get(code, 0.0)
            subject[(pupil, code)] = (average, coefficient)
            pairs.append((average, coefficient))
        general[pupil] = calc.general_average(pairs)
    ranked_values = {p: v for p, v in general.items() if p in enrolled}
    ranks = calc.rank_with_ties(ranked_values)
    stats = {
        code: calc.class_statistics(v for (p, c), (v, _) in subject.items() if c == code and p in enrolled)
        for code in {c for (p, c) in subject if p in enrolled}
    }
    stats[""] = calc.class_statistics(ranked_values.values())
    return {
        "subject": subject,
        "general": general,
        "ranks": {p: ranks.get(p) for p in general},
        "ranked": sum(1 for v in ranked_values.values() if v is not None),
        "stats": stats,
        "coefficients": coefficients,
        "policy": dict(policy),
    }


def _f(value: Any) -> float | None:
    return None if value is None else float(value)


async def _actual(world, data: dict[str, Any]) -> dict[str, Any]:
    """What the close wrote for our class."""
    db = world.services.db
    pupils = data["pupils"]
    marks = ", ".join("{}" for _ in pupils)
    async with db.scoped(Scope.everything(), write=False):
        subject_rows = await db.fetch(
            "SELECT student_id, class_id, subject_code, average, coefficient FROM grade_subject_result "
            f"WHERE term_id = {{}} AND student_id IN ({marks})",
            data["term_id"],
            *pupils,
        )
        general_rows = await db.fetch(
            "SELECT student_id, class_id, average, rank, ranked FROM grade_general_result "
            f"WHERE term_id = {{}} AND student_id IN ({marks})",
            data["term_id"],
            *pupils,
        )
        stats_rows = await db.fetch(
            'SELECT subject_code, "count", mean, median, minimum, maximum, pass_share, distribution '
            "FROM grade_class_stats WHERE term_id = {} AND class_id = {}",
            data["term_id"],
            data["class_id"],
        )
    assert {r["class_id"] for r in subject_rows} | {r["class_id"] for r in general_rows} == {data["class_id"]}
    stats = {}
    for r in stats_rows:
        distribution = r["distribution"]
        if isinstance(distribution, str):
            distribution = json.loads(distribution)
        stats[r["subject_code"]] = Stats(
            count=r["count"],
            mean=_f(r["mean"]),
            median=_f(r["median"]),
            minimum=_f(r["minimum"]),
            maximum=_f(r["maximum"]),
            pass_share=_f(r["pass_share"]),
            distribution=tuple(distribution),
        )
    return {
        "subject": {
            (r["student_id"], r["subject_code"]): (_f(r["average"]), float(r["coefficient"])) for r in subject_rows
        },
        "general": {r["student_id"]: _f(r["average"]) for r in general_rows},
        "ranks": {r["student_id"]: r["rank"] for r in general_rows},
        "ranked": {r["ranked"] for r in general_rows},
        "stats": stats,
    }


def _close(a: float | None, b: float | None, tol: float = AVG_TOL) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and abs(a - b) <= tol)


def _assert_agree(expected: dict[str, Any], actual: dict[str, Any]) -> None:
    assert set(actual["subject"]) == set(expected["subject"])
    for key, (average, coefficient) in expected["subject"].items():
        got_average, got_coefficient = actual["subject"][key]
        assert _close(got_average, average), (key, got_average, average)
        assert got_coefficient == coefficient, key
    assert set(actual["general"]) == set(expected["general"])
    for pupil, average in expected["general"].items():
        assert _close(actual["general"][pupil], average), (pupil, actual["general"][pupil], average)
    assert actual["ranks"] == expected["ranks"]
    assert actual["ranked"] == {expected["ranked"]}
    assert set(actual["stats"]) == set(expected["stats"])
    for code, want in expected["stats"].items():
        got = actual["stats"][code]
        assert got.count == want.count, code
        assert got.distribution == want.distribution, code
        for name in ("mean", "median", "minimum", "maximum"):
            assert _close(getattr(got, name), getattr(want, name)), (code, name, got, want)
        assert _close(got.pass_share, want.pass_share, SHARE_TOL), (code, got, want)


async def _compute(world, data: dict[str, Any]) -> CloseStats:
    async with world.services.db.scoped(Scope.everything()):
        return await compute_results(world.services.db, school_ids=[data["school"].id], term_id=data["term_id"])


async def _set_region_policy(world, region_id: int, absent: str | None, excused: str | None) -> None:
    """Set (or, with ``None``, remove) the region's policy row."""
    db = world.services.db
    async with db.transaction():
        await db.execute("DELETE FROM grade_policy WHERE tenant_id = {}", region_id)
        if absent is not None:
            await db.execute(
                "INSERT INTO grade_policy (tenant_id, required_cc, absent_counts_as, excused_counts_as) "
                "VALUES ({}, 3, {}, {})",
                region_id,
                absent,
                excused,
            )


# --------------------------------------------------------------------------- database: tests


async def test_close_agrees_with_calc_on_random_data_under_both_policies(world):
    data = await _data(world)
    region_id = data["school"].region_id
    saved = await world.services.db.fetchrow(
        "SELECT absent_counts_as, excused_counts_as FROM grade_policy WHERE tenant_id = {}", region_id
    )
    try:
        await _set_region_policy(world, region_id, None, None)  # the national policy: absent 0, excused ignored
        stats = await _compute(world, data)
        expected = await _expected(world, data)
        assert expected["policy"] == {"absent_counts_as": "zero", "excused_counts_as": "ignore"}
        _assert_agree(expected, await _actual(world, data))
        assert stats.subject_results >= len(expected["subject"]) and stats.general_results >= len(expected["general"])
        assert stats.class_stats >= len(expected["stats"]) and stats.schools == 1 and stats.seconds >= 0

        # the edge cases are really there
        pupils = data["pupils"]
        assert expected["coefficients"]["MATH"] > 0 and expected["coefficients"].get("INFO", 0.0) == 0.0
        assert expected["subject"][(pupils[2], "FRA")][0] is None  # excused only, ignored
        assert (pupils[3], "PC") not in expected["subject"]  # no mark in the subject
        assert expected["subject"][(pupils[4], "ARA")][0] == 15.0  # one assessment only
        assert pupils[7] not in expected["general"]  # no marks at all
        assert expected["ranks"][pupils[1]] == expected["ranks"][pupils[6]] is not None  # a tie
        assert expected["ranks"][pupils[8]] is None and expected["general"][pupils[8]] is not None  # left the class
        assert expected["stats"][""].count == expected["ranked"]

        # the region's own policy: absences ignored, excused absences count as zero
        await _set_region_policy(world, region_id, "ignore", "zero")
        await _compute(world, data)
        other = await _expected(world, data)
        assert other["policy"] == {"absent_counts_as": "ignore", "excused_counts_as": "zero"}
        assert other["subject"][(pupils[2], "FRA")][0] == 0.0
        assert other["general"] != expected["general"]
        _assert_agree(other, await _actual(world, data))
    finally:
        if saved is None:
            await _set_region_policy(world, region_id, None, None)
        else:
            await _set_region_policy(world, region_id, saved["absent_counts_as"], saved["excused_counts_as"])


async def test_changing_a_coefficient_changes_the_general_average(world):
    data = await _data(world)
    school = data["school"]
    await _compute(world, data)
    before = await _actual(world, data)
    db = world.services.db
    existing = await db.fetchval(
        "SELECT COUNT(*) FROM subject_coefficient WHERE tenant_id = {} AND level_code = {} AND track_code = {} "
        "AND subject_code = 'MATH'",
        school.id,
        LEVEL,
        TRACK,
    )
    assert existing == 0
    async with db.transaction():
        await db.execute(
            "INSERT INTO subject_coefficient (tenant_id, level_code, track_code, subject_code, coefficient, "
            "weekly_hours) VALUES ({}, {}, {}, 'MATH', {}, {})",
            school.id,
            LEVEL,
            TRACK,
            Decimal(12),
            Decimal(4),
        )
    try:
        await _compute(world, data)
        expected = await _expected(world, data)
        assert expected["coefficients"]["MATH"] == 12.0
        after = await _actual(world, data)
        _assert_agree(expected, after)
        assert all(after["subject"][k][1] == 12.0 for k in after["subject"] if k[1] == "MATH")
        changed = [p for p in before["general"] if before["general"][p] != after["general"][p]]
        assert changed, "a heavier MATH must move some general average"
    finally:
        async with db.transaction():
            await db.execute(
                "DELETE FROM subject_coefficient WHERE tenant_id = {} AND level_code = {} AND track_code = {} "
                "AND subject_code = 'MATH'",
                school.id,
                LEVEL,
                TRACK,
            )
    await _compute(world, data)
    assert (await _actual(world, data))["general"] == before["general"]


async def _result_ids(world, data: dict[str, Any]) -> dict[tuple[str, Any], int]:
    """The ids of the stored results of our pupils (subject rows by pupil × subject, general rows by pupil)."""
    db = world.services.db
    marks = ", ".join("{}" for _ in data["pupils"])
    async with db.scoped(Scope.everything(), write=False):
        subject = await db.fetch(
            "SELECT id, student_id, subject_code FROM grade_subject_result "
            f"WHERE term_id = {{}} AND student_id IN ({marks})",
            data["term_id"],
            *data["pupils"],
        )
        general = await db.fetch(
            f"SELECT id, student_id FROM grade_general_result WHERE term_id = {{}} AND student_id IN ({marks})",
            data["term_id"],
            *data["pupils"],
        )
    ids = {("subject", (r["student_id"], r["subject_code"])): r["id"] for r in subject}
    ids.update({("general", r["student_id"]): r["id"] for r in general})
    return ids


async def test_a_reclose_after_corrections_replaces_only_what_changed(world):
    data = await _data(world)
    pupils, term_id = data["pupils"], data["term_id"]
    db = world.services.db
    await _compute(world, data)
    before_ids = await _result_ids(world, data)
    async with db.scoped(Scope.everything(), write=False):
        changed = await db.fetchrow(
            "SELECT m.id, m.score FROM grade_mark m JOIN grade_assessment a ON a.id = m.assessment_id "
            "WHERE m.student_id = {} AND a.subject_code = 'MATH' AND a.term_id = {} AND m.score IS NOT NULL "
            "ORDER BY a.position LIMIT 1",
            pupils[0],
            term_id,
        )
        removed = await db.fetch(
            "SELECT m.* FROM grade_mark m JOIN grade_assessment a ON a.id = m.assessment_id "
            "WHERE m.student_id = {} AND a.subject_code = 'ARA' AND a.term_id = {}",
            pupils[5],
            term_id,
        )
    assert changed is not None and removed
    new_score = Decimal("0.00") if Decimal(str(changed["score"])) > 0 else Decimal("1.00")
    try:
        async with db.scoped(Scope.everything()):
            await db.execute("UPDATE grade_mark SET score = {} WHERE id = {}", new_score, changed["id"])
            ids = ", ".join("{}" for _ in removed)
            await db.execute(f"DELETE FROM grade_mark WHERE id IN ({ids})", *(r["id"] for r in removed))
        stats = await _compute(world, data)
        expected = await _expected(world, data)
        actual = await _actual(world, data)
        _assert_agree(expected, actual)
        assert (pupils[5], "ARA") not in actual["subject"]  # the pupil's ARA marks are gone, and so is the result
        assert stats.subject_results >= len(expected["subject"])
        after_ids = await _result_ids(world, data)
        assert ("subject", (pupils[5], "ARA")) not in after_ids
        if world.backend == "postgres":
            # a re-close rewrites only what changed: other pupils' subject rows keep their id
            kept = [k for k in after_ids if k[0] == "subject" and k[1][0] not in (pupils[0], pupils[5])]
            assert kept and all(after_ids[k] == before_ids[k] for k in kept)
            assert after_ids[("subject", (pupils[0], "MATH"))] != before_ids[("subject", (pupils[0], "MATH"))]
    finally:
        async with db.scoped(Scope.everything()):
            await db.execute("UPDATE grade_mark SET score = {} WHERE id = {}", changed["score"], changed["id"])
            columns = [c for c in removed[0] if c != "id"]
            await db.executemany(
                f"INSERT INTO grade_mark ({', '.join(columns)}) VALUES ({', '.join('{}' for _ in columns)})",
                [[r[c] for c in columns] for r in removed],
            )
    await _compute(world, data)
    _assert_agree(await _expected(world, data), await _actual(world, data))


async def test_closing_twice_is_a_conflict(world):
    data = await _data(world)
    db = world.services.db
    school_id, term_id = data["school"].id, data["term_id"]
    already = await world.sql(
        "SELECT COUNT(*) FROM grade_term_close WHERE school_id = {} AND term_id = {}", school_id, term_id
    )
    try:
        if not already:
            async with db.scoped(Scope.everything()):
                stats = await close_term(db, school_ids=[school_id], term_id=term_id, actor_id=None)
            assert stats.general_results > 0 and stats.ranked > 0
            row = await world.sql(
                "SELECT COUNT(*) FROM grade_term_close WHERE school_id = {} AND term_id = {}", school_id, term_id
            )
            assert row == 1
        with pytest.raises(TermAlreadyClosed) as info:
            async with db.scoped(Scope.everything()):
                await close_term(db, school_ids=[school_id], term_id=term_id, actor_id=None)
        assert info.value.status_code == 409 and str(term_id) in info.value.detail
        assert (
            await world.sql(
                "SELECT COUNT(*) FROM grade_term_close WHERE school_id = {} AND term_id = {}", school_id, term_id
            )
            == 1
        )
    finally:
        if not already:  # unlock what this test locked, so later tests can still enter marks
            async with db.scoped(Scope.everything()):
                await db.execute(
                    "DELETE FROM grade_term_close WHERE school_id = {} AND term_id = {}", school_id, term_id
                )


async def test_close_needs_a_transaction_a_school_and_the_scope(world):
    data = await _data(world)
    db = world.services.db
    school_id, term_id = data["school"].id, data["term_id"]
    with pytest.raises(RuntimeError):
        await compute_results(db, school_ids=[school_id], term_id=term_id)
    with pytest.raises(ValueError):
        async with db.scoped(Scope.everything()):
            await compute_results(db, school_ids=[data["school"].region_id], term_id=term_id)
    other = world.ids[OTHER_SCHOOL]
    with pytest.raises(PermissionError):
        async with db.scoped(Scope(nodes=frozenset({other}))):
            await compute_results(db, school_ids=[school_id], term_id=term_id)


@pytest.mark.postgres_only
async def test_concurrent_computations_for_a_school_take_turns(world):
    data = await _data(world)

    async def compute() -> CloseStats:
        return await _compute(world, data)

    first, second = await asyncio.gather(compute(), compute())
    assert first.general_results == second.general_results > 0
    _assert_agree(await _expected(world, data), await _actual(world, data))
