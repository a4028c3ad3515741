"""OneRoster marks go through the grades module's own service (``madrasa_gradebook_write``/``_read``).

An imported mark is saved like a grid save: the assessment's version moves on (a teacher's save with the
old ETag gets 409) and the change is in the audit log. Where the grades module is off for the school, the
import and the export leave lineItems and results out and say so.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import World
from tests.test_oneroster import ADMIN, Target, build_target, post_bundle, replace, unzip, zip_files
from tests.test_oneroster_hardening import gradebook_files, new_region, tag


@pytest.fixture
async def deployment(world: World, tmp_path: Path) -> AsyncIterator[Target]:
    """An empty deployment of its own, on the world's backend."""
    target = await build_target(world.backend, tmp_path)
    try:
        yield target
    finally:
        await target.close()


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


async def test_an_imported_mark_bumps_the_grid_version_and_is_audited(deployment: Target) -> None:
    t = tag()
    region, admin = await new_region(deployment, t)
    files = gradebook_files(t, [("res-1", "u-p1")])
    done = await post_bundle(deployment.call, zip_files(files), as_=admin, tenant=region)
    assert done.status_code == 201, done.text
    assert done.json()["counts"]["results"]["created"] == 1
    school = f"sch-{t}"
    director = await deployment.add_person(f"director-{t}@{t}.test", "school_director", school)
    assessment = await deployment.sql(
        "SELECT a.id FROM grade_assessment a JOIN tenant s ON s.id = a.school_id WHERE s.slug = {}", school
    )
    url = f"/api/v1/grades/assessments/{assessment}/marks"
    grid = await deployment.call("GET", url, as_=director, tenant=school)
    assert grid.status_code == 200, grid.text
    old_etag = grid.headers["etag"]
    pupil = grid.json()["marks"][0]["student_id"]
    assert grid.json()["marks"][0]["score"] == 12.5

    changed = await post_bundle(
        deployment.call, zip_files(replace(files, "results.csv", ",12.5,", ",14,")), as_=admin, tenant=region
    )
    assert changed.status_code == 201, changed.text
    assert changed.json()["counts"]["results"]["updated"] == 1

    # The teacher's grid moved on: a save with the ETag read before the import is refused, nothing is lost.
    stale = await deployment.call(
        "PUT",
        url,
        as_=director,
        tenant=school,
        headers={"If-Match": old_etag},
        json={"marks": [{"student_id": pupil, "score": 9}]},
    )
    assert stale.status_code == 409, stale.text
    fresh = await deployment.call("GET", url, as_=director, tenant=school)
    assert fresh.headers["etag"] != old_etag
    assert fresh.json()["marks"][0]["score"] == 14.0
    # A save with the current ETag goes through.
    saved = await deployment.call(
        "PUT",
        url,
        as_=director,
        tenant=school,
        headers={"If-Match": fresh.headers["etag"]},
        json={"marks": [{"student_id": pupil, "score": 15}]},
    )
    assert saved.status_code == 200, saved.text

    # The imported change is audited exactly as a grid save: who, which assessment, before and after, why.
    person = await deployment.sql("SELECT id FROM person WHERE email = {}", admin)
    audited = await deployment.rows(
        "SELECT actor_id, before, after, reason FROM audit_log WHERE action = 'marks.change' AND object_id = {} "
        "ORDER BY id",
        str(assessment),
    )
    assert len(audited) == 2, audited
    first = audited[0]
    assert first["actor_id"] == person
    assert _json(first["before"]) == {str(pupil): "12.50"}
    assert _json(first["after"]) == {str(pupil): "14.00"}
    assert first["reason"] == "OneRoster import"

    # The same bundle again is no change: the version stays.
    version = await deployment.sql("SELECT version FROM grade_assessment WHERE id = {}", assessment)
    again = await post_bundle(
        deployment.call, zip_files(replace(files, "results.csv", ",12.5,", ",15,")), as_=admin, tenant=region
    )
    assert again.status_code == 201, again.text
    assert again.json()["counts"].get("results", {}).get("updated", 0) == 0
    assert await deployment.sql("SELECT version FROM grade_assessment WHERE id = {}", assessment) == version


async def test_with_grades_off_the_school_s_marks_are_left_out_and_said_so(deployment: Target) -> None:
    t = tag()
    region, admin = await new_region(deployment, t)
    files = gradebook_files(t, [("res-1", "u-p1")])
    first = await post_bundle(deployment.call, zip_files(files), as_=admin, tenant=region)
    assert first.status_code == 201, first.text
    school = f"sch-{t}"
    switched = await deployment.call(
        "PUT",
        f"/api/v1/tenants/{school}/modules/grades",
        as_=ADMIN,
        tenant="platform",
        json={"enabled": False, "reason": "no marks here"},
    )
    assert switched.status_code in (200, 204), switched.text
    deployment.services.modules.invalidate()

    # The export leaves lineItems and results out, and its manifest says why.
    exported = await deployment.call("GET", "/api/v1/oneroster/export", as_=admin, tenant=region)
    assert exported.status_code == 200, exported.text
    files_out = unzip(exported.content)
    assert "lineItems" not in files_out and "results" not in files_out
    manifest = {r["propertyName"]: r["value"] for r in files_out["manifest"]}
    assert manifest["file.results"] == "absent"
    assert manifest["source.note"] == f"the grades module is off for {school}: lineItems and results left out"

    # An import with a changed mark keeps the rest, leaves the marks as they are and warns once.
    changed = replace(files, "results.csv", ",12.5,", ",14,")
    response = await post_bundle(deployment.call, zip_files(changed), as_=admin, tenant=region)
    assert response.status_code == 201, response.text
    report = response.json()
    assert [(w["file"], w["message"]) for w in report["warnings"]] == [
        ("lineItems.csv", f"the grades module is off for {school}")
    ]
    assert "results" not in report["counts"] and "lineItems" not in report["counts"]
    scores = await deployment.rows(
        "SELECT m.score FROM grade_mark m JOIN tenant s ON s.id = m.school_id WHERE s.slug = {}", school
    )
    assert [float(r["score"]) for r in scores] == [12.5]
    # Its export read back: the note is no unknown manifest property.
    read_back = await post_bundle(deployment.call, exported.content, as_=admin, tenant=region)
    assert read_back.status_code == 201, read_back.text
    assert not [w for w in read_back.json()["warnings"] if "manifest" in w["file"]], read_back.json()["warnings"]
