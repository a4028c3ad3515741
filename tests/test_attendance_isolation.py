"""The isolation suite's two checks, on the attendance routes alone (every actor, foreign prefix and foreign ids).

``tests/test_isolation.py`` runs them on every route of the app; this file keeps the attendance
module's answer visible on its own, with the samples of ``tests/isolation/attendance.py``.
"""

from __future__ import annotations

import pytest

from tests.test_isolation import ACTORS, CREATES_AT_HOME, FOREIGN, HOME, QUERIES, call, protected_routes


def attendance_routes(world):
    return [r for r in protected_routes(world) if "attendance" in r[1]]


async def test_the_attendance_routes_are_enumerated(world):
    paths = {p for _, p, _ in attendance_routes(world)}
    assert "/api/v1/attendance/sessions/{slot_id:int}/{on_date:date}" in paths
    assert "/attendance/pupils/{student_id:int}/justify" in paths
    assert len(paths) >= 20


@pytest.mark.parametrize("actor", ACTORS)
async def test_foreign_prefix_is_refused_on_attendance_routes(world, actor):
    failures = []
    for method, path, _ in attendance_routes(world):
        response = await call(world, method, path, actor, FOREIGN)
        if response.status_code not in (403, 404):
            failures.append(f"{method} {path}: {response.status_code} {response.text[:120]}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("actor", ACTORS)
async def test_foreign_ids_are_refused_on_attendance_routes(world, actor):
    failures = []
    for method, path, _ in attendance_routes(world):
        if "{" not in path and method == "GET" and (method, path) not in QUERIES:
            continue
        if (method, path) in CREATES_AT_HOME:
            continue
        response = await call(world, method, path, actor, HOME)
        if response.status_code not in (403, 404):
            failures.append(f"{method} {path}: {response.status_code} {response.text[:120]}")
    assert not failures, "\n".join(failures)


async def test_foreign_justification_is_untouched(world):
    from tests.isolation.attendance import foreign_values

    jid = (await foreign_values(world))["justification_id"]
    assert await world.sql("SELECT state FROM attendance_justification WHERE id = {}", jid) == "pending"
    assert await world.sql("SELECT COUNT(*) FROM attendance_reason WHERE code = 'intrus'") == 0
