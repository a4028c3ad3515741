"""The calendar and coefficients: national rules, a region's own dates and holidays, overrides."""

from __future__ import annotations

REGION = "casablanca-settat"
OTHER_REGION = "rabat-sale-kenitra"
SCHOOL = "lycee-ibn-batouta"
OTHER_SCHOOL = "lycee-moulay-youssef"


async def test_national_calendar_applies_by_default(world):
    response = await world.api("GET", "/api/v1/calendar", as_=f"teacher.{OTHER_SCHOOL}@test.ma", tenant=OTHER_SCHOOL)
    body = response.json()
    assert body["year"] == "2026-2027"
    assert [t["number"] for t in body["terms"]] == [1, 2]
    assert {t["source"] for t in body["terms"]} == {"national"}
    assert any(h["name_fr"] == "Marche verte" for h in body["holidays"])


async def test_region_sets_its_own_terms_and_holidays(world):
    admin = "region.casa@madrasa.demo"
    terms = {"terms": [["2026-09-14", "2027-01-31"], ["2027-02-08", "2027-06-30"]]}
    name = f"Moussem {world.backend}"
    try:
        response = await world.api("PUT", "/api/v1/calendar/terms", as_=admin, tenant=REGION, json=terms)
        assert response.status_code == 200, response.text
        response = await world.api(
            "POST",
            "/api/v1/calendar/holidays",
            as_=admin,
            tenant=REGION,
            json={"name_fr": name, "starts_on": "2026-10-12", "ends_on": "2026-10-13"},
        )
        assert response.status_code == 201
        mine = (await world.api("GET", "/api/v1/calendar", as_=f"teacher.{SCHOOL}@test.ma", tenant=SCHOOL)).json()
        assert mine["terms"][0]["starts_on"] == "2026-09-14" and mine["terms"][0]["source"] == "region"
        assert any(h["name_fr"] == name and h["source"] == "region" for h in mine["holidays"])
        theirs = (
            await world.api("GET", "/api/v1/calendar", as_=f"teacher.{OTHER_SCHOOL}@test.ma", tenant=OTHER_SCHOOL)
        ).json()
        assert theirs["terms"][0]["source"] == "national"
        assert not any(h["name_fr"] == name for h in theirs["holidays"])
    finally:
        # Other tests of this worker schedule assessments in the national terms: give them back.
        db = world.services.db
        async with db.transaction():
            await db.execute("DELETE FROM term WHERE tenant_id = {}", world.ids[REGION])
            await db.execute("DELETE FROM holiday WHERE tenant_id = {} AND name_fr = {}", world.ids[REGION], name)


async def test_calendar_validation_and_authority(world):
    admin = "region.casa@madrasa.demo"
    outside = await world.api(
        "PUT", "/api/v1/calendar/terms", as_=admin, tenant=REGION, json={"terms": [["2026-08-01", "2027-01-31"]]}
    )
    assert outside.status_code == 400 and "terms" in outside.json()["detail"]
    overlapping = await world.api(
        "PUT",
        "/api/v1/calendar/terms",
        as_=admin,
        tenant=REGION,
        json={"terms": [["2026-09-14", "2027-01-31"], ["2027-01-20", "2027-06-30"]]},
    )
    assert overlapping.status_code == 400
    other = await world.api(
        "PUT", "/api/v1/calendar/terms", as_=admin, tenant=OTHER_REGION, json={"terms": [["2026-09-14", "2027-01-31"]]}
    )
    assert other.status_code == 403
    director = await world.api(
        "POST",
        "/api/v1/calendar/holidays",
        as_=f"director.{SCHOOL}@test.ma",
        tenant=SCHOOL,
        json={"name_fr": "X", "starts_on": "2026-10-12", "ends_on": "2026-10-12"},
    )
    assert director.status_code == 403


async def test_coefficients_school_override_beats_region_beats_national(world):
    def math(rows):
        return next(r["coefficient"] for r in rows if r["subject_code"] == "MATH")

    query = {"level": "2BAC", "track": "SM"}
    national = (
        await world.api("GET", "/api/v1/coefficients", as_=f"teacher.{SCHOOL}@test.ma", tenant=SCHOOL, params=query)
    ).json()
    assert math(national) == 7
    region = await world.api(
        "PUT",
        "/api/v1/coefficients",
        as_="region.casa@madrasa.demo",
        tenant=REGION,
        json={"level_code": "2BAC", "track_code": "SM", "subject_code": "MATH", "coefficient": 8, "weekly_hours": 9},
    )
    assert region.status_code == 200 and math(region.json()) == 8
    school = await world.api(
        "PUT",
        "/api/v1/coefficients",
        as_=f"director.{SCHOOL}@test.ma",
        tenant=SCHOOL,
        json={"level_code": "2BAC", "track_code": "SM", "subject_code": "MATH", "coefficient": 9, "weekly_hours": 9},
    )
    assert school.status_code == 200 and math(school.json()) == 9
    neighbour = (
        await world.api(
            "GET",
            "/api/v1/coefficients",
            as_="teacher.college-al-khawarizmi@test.ma",
            tenant="college-al-khawarizmi",
            params=query,
        )
    ).json()
    assert math(neighbour) == 8  # same region, no school override
    elsewhere = (
        await world.api(
            "GET", "/api/v1/coefficients", as_=f"teacher.{OTHER_SCHOOL}@test.ma", tenant=OTHER_SCHOOL, params=query
        )
    ).json()
    assert math(elsewhere) == 7
    unknown = await world.api(
        "PUT",
        "/api/v1/coefficients",
        as_=f"director.{SCHOOL}@test.ma",
        tenant=SCHOOL,
        json={"level_code": "2BAC", "track_code": "SM", "subject_code": "ACT", "coefficient": 1, "weekly_hours": 1},
    )
    assert unknown.status_code == 400
    negative = await world.api(
        "PUT",
        "/api/v1/coefficients",
        as_=f"director.{SCHOOL}@test.ma",
        tenant=SCHOOL,
        json={"level_code": "2BAC", "subject_code": "MATH", "coefficient": -1, "weekly_hours": 1},
    )
    assert negative.status_code == 400 and negative.json()["errors"][0]["field"] == "coefficient"
