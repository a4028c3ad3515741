"""Onboarding schools: a file of a region's schools, checked in Python (a few thousand rows at most).

A school already present with the same details is ``unchanged``; one with other details is an
error. New schools are created through :func:`tenants.service.create_node` with their profile.
"""

from __future__ import annotations

from typing import IO

from core.db import scope_sql
from core.sql import SQL
from tenants import service as tenant_service
from tenants.onboarding_context import (
    MAX_ROWS,
    SAMPLE_ROWS,
    Actor,
    ErrorLog,
    Progress,
    Report,
    SampleRow,
    load_tree,
    make_report,
    now,
)
from tenants.onboarding_files import FileProblem, file_error
from tenants.onboarding_rows import FILE, SchoolRow, check_school, problem
from tenants.onboarding_staging import HeaderProblem, read_records


async def schools(
    actor: Actor, stream: IO[bytes], *, write: bool, progress: Progress | None, sink: IO[bytes] | None = None
) -> Report:
    db = actor.db
    errors = ErrorLog(sink)
    try:
        _, columns, records = read_records(stream, "schools")
        rows: list[SchoolRow] = []
        for line, cells in records:
            if len(rows) >= MAX_ROWS["schools"]:
                raise file_error("too_many_rows", row=line, limit=MAX_ROWS["schools"])
            row, problems = check_school(line, cells, columns)
            errors.extend(problems)
            rows.append(row)
    except FileProblem as exc:
        errors.add(exc.error)
        return make_report("schools", errors)
    except HeaderProblem as exc:
        errors.extend(exc.errors)
        return make_report("schools", errors)
    if not rows:
        errors.add(problem(0, FILE, "", "only_header"))
        return make_report("schools", errors, rows=0)
    tree = await load_tree(db, actor.region)
    profiles = {
        int(r["school_id"]): r
        for r in await db.fetch(
            SQL("SELECT school_id, cycle, address FROM school_profile WHERE {}", scope_sql(actor.scope))
        )
    }
    slugs = {r["slug"] for r in await db.fetch("SELECT slug FROM tenant")}
    seen_code: dict[str, int] = {}
    seen_slug: dict[str, int] = {}
    status: dict[int, str] = {}
    for row in rows:
        state = "new"
        province = None
        if row.province:
            province = tree.provinces.get(row.province.lower()) or tree.provinces.get(row.province.upper())
            if province is None:
                foreign = (
                    row.province.lower() in tree.foreign_provinces or row.province.upper() in tree.foreign_provinces
                )
                code = "province_foreign" if foreign else "province_unknown"
                errors.add(problem(row.line, "province", row.province, code))
        if row.code:
            if row.code in seen_code:
                errors.add(problem(row.line, "code", row.code, "duplicate_row", first=seen_code[row.code]))
            seen_code.setdefault(row.code, row.line)
            if row.code in tree.foreign_schools:
                errors.add(problem(row.line, "code", row.code, "school_code_foreign"))
            elif (found := tree.schools.get(row.code)) is not None:
                existing = tree.school_rows[found[0]]
                profile = profiles.get(found[0], {})
                differs = [
                    name
                    for name, mine, theirs in (
                        ("name_ar", row.name_ar, existing["name_ar"]),
                        ("name_fr", row.name_fr, existing["name_fr"]),
                        ("province", province, found[1]),
                        ("cycle", row.cycle, profile.get("cycle")),
                        ("address", row.address, profile.get("address", row.address)),
                    )
                    if mine and mine != theirs
                ]
                if differs:
                    errors.add(problem(row.line, "code", row.code, "school_differs", fields=", ".join(differs)))
                else:
                    state = "unchanged"
        if state == "new" and row.slug:
            if row.slug in seen_slug:
                errors.add(problem(row.line, "slug", row.slug, "same_slug", first=seen_slug[row.slug]))
            elif row.slug in slugs:
                errors.add(problem(row.line, "slug", row.slug, "slug_taken"))
            seen_slug.setdefault(row.slug, row.line)
        status[row.line] = state
    bad = {e.row for e in errors.listed}
    sample = [
        SampleRow(r.line, r.code, r.name_fr, "error" if r.line in bad else status[r.line]) for r in rows[:SAMPLE_ROWS]
    ]
    new = [r for r in rows if status[r.line] == "new"]
    unchanged = len(rows) - len(new)
    if errors.count or not write:
        return make_report(
            "schools", errors, rows=len(rows), created={"schools": len(new)}, unchanged=unchanged, sample=sample
        )
    ctx = actor.request_context()
    for done, row in enumerate(new, start=1):
        province_id = tree.provinces.get(row.province.lower()) or tree.provinces[row.province.upper()]
        parent = await actor.services.tenants.by_id(province_id)
        assert parent is not None
        node = await tenant_service.create_node(
            ctx,
            parent,
            kind="school",
            slug=row.slug,
            code=row.code,
            name_ar=row.name_ar,
            name_fr=row.name_fr,
            name_en=row.name_en,
            default_locale=actor.region.default_locale,
        )
        await db.execute(
            "INSERT INTO school_profile (region_id, province_id, school_id, cycle, address, updated_at) "
            "VALUES ({}, {}, {}, {}, {}, {})",
            actor.region.id,
            province_id,
            node.id,
            row.cycle,
            row.address,
            now(),
        )
        if progress and done % 100 == 0:
            await progress(done, len(new), "schools")
    return make_report(
        "schools",
        errors,
        rows=len(rows),
        created={"schools": len(new)},
        unchanged=unchanged,
        sample=sample,
        committed=True,
    )


# -- pupils and guardians -----------------------------------------------------------------------
