"""Files through the API: tenant-prefixed keys, size and type limits, authorised downloads."""

from __future__ import annotations

from tests.isolation.neighbours import other_family

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
DIRECTOR = "director.lycee-ibn-batouta@test.ma"
SCHOOL = "lycee-ibn-batouta"


async def upload(world, name, data, content_type, actor=DIRECTOR, tenant=SCHOOL, category="attachments"):
    return await world.api(
        "POST",
        "/api/v1/files",
        as_=actor,
        tenant=tenant,
        files={"file": (name, data, content_type)},
        data={"category": category},
    )


async def test_upload_and_download_round_trip(world):
    response = await upload(world, "تقرير ../../etc/passwd.png", PNG, "image/png")
    assert response.status_code == 201, response.text
    body = response.json()
    key = await world.sql("SELECT key FROM stored_file WHERE id = {}", body["id"])
    assert key.startswith(f"t/{world.ids[SCHOOL]}/attachments/")
    assert ".." not in key and key.endswith("passwd.png")
    got = await world.api("GET", f"/api/v1/files/{body['id']}", as_=DIRECTOR, tenant=SCHOOL)
    assert got.status_code == 200 and got.content == PNG
    assert got.headers["content-type"] == "image/png"
    assert got.headers["x-content-type-options"] == "nosniff"
    # the region above may read it; a teacher of the same school too (files.read)
    assert (await world.api("GET", f"/api/v1/files/{body['id']}", as_="region.casa@madrasa.demo")).status_code == 200


async def test_other_region_cannot_download(world):
    file_id = world.files[SCHOOL]
    for actor, tenant in (
        ("region.rabat@madrasa.demo", None),
        ("director.lycee-moulay-youssef@test.ma", "lycee-moulay-youssef"),
    ):
        response = await world.api("GET", f"/api/v1/files/{file_id}", as_=actor, tenant=tenant)
        assert response.status_code == 404


async def test_oversized_upload_is_413_and_nothing_is_stored(world):
    before = await world.sql("SELECT COUNT(*) FROM stored_file")
    too_big = b"%PDF-1.4\n" + b"0" * world.settings.max_upload_bytes
    response = await upload(world, "big.pdf", too_big, "application/pdf")
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await world.sql("SELECT COUNT(*) FROM stored_file") == before


async def test_wrong_type_is_415_and_nothing_is_stored(world):
    before = await world.sql("SELECT COUNT(*) FROM stored_file")
    for name, data, content_type in (
        ("x.exe", b"MZ\x90\x00", "application/x-msdownload"),
        ("fake.pdf", PNG, "application/pdf"),
    ):
        response = await upload(world, name, data, content_type)
        assert response.status_code == 415, response.text
    assert await world.sql("SELECT COUNT(*) FROM stored_file") == before


async def test_bad_category_is_400(world):
    response = await upload(world, "x.png", PNG, "image/png", category="../other")
    assert response.status_code == 400


async def test_upload_needs_a_tenant(world):
    response = await world.api(
        "POST", "/api/v1/files", as_="region.casa@madrasa.demo", files={"file": ("x.png", PNG, "image/png")}
    )
    assert response.status_code == 404


# -- who may read a file: uploader, addressees, the tenant's managers ---------------------------

PDF = b"%PDF-1.4\n% medical certificate\n"
FAMILY = f"guardian.{SCHOOL}@test.ma"  # the seeded pupil's guardian
TEACHER = f"teacher.{SCHOOL}@test.ma"


async def status(world, file_id, actor, tenant=SCHOOL):
    """The download's and the metadata's status codes for an actor."""
    got = await world.api("GET", f"/api/v1/files/{file_id}", as_=actor, tenant=tenant)
    info = await world.api("GET", f"/api/v1/files/{file_id}/info", as_=actor, tenant=tenant)
    return got.status_code, info.status_code


async def test_a_familys_upload_is_read_by_it_and_the_managers_only(world):
    """The probe's finding: another family of the same school guessed the id of a medical PDF."""
    other = await other_family(world)
    response = await upload(world, "certificat.pdf", PDF, "application/pdf", actor=FAMILY)
    assert response.status_code == 201, response.text
    file_id = response.json()["id"]
    assert await status(world, file_id, FAMILY) == (200, 200)  # the uploader
    assert await status(world, file_id, DIRECTOR) == (200, 200)  # the school's manager
    assert await status(world, file_id, "region.casa@madrasa.demo", None) == (200, 200)
    assert await status(world, file_id, other) == (404, 404)  # same school, other family
    assert await status(world, file_id, TEACHER) == (404, 404)  # staff without the permission
    for neighbour in range(file_id - 2, file_id + 3):  # guessing ids is useless
        if neighbour != file_id:
            got = await world.api("GET", f"/api/v1/files/{neighbour}", as_=other, tenant=SCHOOL)
            assert got.status_code == 404


async def test_addressees_read_a_file_others_do_not(world):
    other = await other_family(world)
    guardian = world.objects[SCHOOL]["guardian_id"]
    teacher = world.objects[SCHOOL]["teacher_id"]
    response = await world.api(
        "POST",
        "/api/v1/files",
        as_=DIRECTOR,
        tenant=SCHOOL,
        files={"file": ("convocation.pdf", PDF, "application/pdf")},
        data={"readers": f"{guardian}, {teacher}"},
    )
    assert response.status_code == 201, response.text
    file_id = response.json()["id"]
    assert await status(world, file_id, FAMILY) == (200, 200)
    assert await status(world, file_id, TEACHER) == (200, 200)
    assert await status(world, file_id, other) == (404, 404)
    assert await world.sql("SELECT COUNT(*) FROM stored_file_reader WHERE file_id = {}", file_id) == 2


async def test_the_seeded_file_is_not_readable_by_a_teacher(world):
    assert await status(world, world.files[SCHOOL], TEACHER) == (404, 404)
    assert await status(world, world.files[SCHOOL], DIRECTOR) == (200, 200)


async def test_bad_addressees_are_400_and_nothing_is_stored(world):
    before = await world.sql("SELECT COUNT(*) FROM stored_file")
    for readers in ("12; 13", "999999", "-1", ",".join(str(i) for i in range(1, 60))):
        response = await world.api(
            "POST",
            "/api/v1/files",
            as_=DIRECTOR,
            tenant=SCHOOL,
            files={"file": ("x.pdf", PDF, "application/pdf")},
            data={"readers": readers},
        )
        assert response.status_code == 400, (readers, response.text)
    assert await world.sql("SELECT COUNT(*) FROM stored_file") == before
