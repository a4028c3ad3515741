"""The OneRoster admin pages: the form (labelled, in three languages), the report, the download, refusals."""

from __future__ import annotations

import io
import zipfile

from tests.conftest import World
from tests.test_oneroster import REGION, minimal_files, replace, world_counts, zip_files

DIRECTOR = "director.lycee-ibn-batouta@test.ma"
SCHOOL = "lycee-ibn-batouta"


async def test_the_page_has_a_labelled_upload_form_and_a_download_link(world: World) -> None:
    response = await world.api("GET", "/admin/oneroster/", as_="region.casa@madrasa.demo", tenant=REGION)
    assert response.status_code == 200, response.text
    html = response.text
    assert '<label for="oneroster-file">' in html and 'id="oneroster-file"' in html
    assert '<label for="oneroster-dry-run" class="checkbox">' in html and 'name="csrf_token"' in html
    assert f'href="/t/{REGION}/admin/oneroster/export"' in html
    assert 'enctype="multipart/form-data"' in html


async def test_the_page_speaks_arabic_and_french(world: World) -> None:
    for lang, title, direction in (("ar", "تبادل OneRoster", 'dir="rtl"'), ("fr", "Échange OneRoster", 'dir="ltr"')):
        response = await world.api(
            "GET", f"/admin/oneroster/?lang={lang}", as_="region.casa@madrasa.demo", tenant=REGION
        )
        assert response.status_code == 200
        assert title in response.text and direction in response.text


async def test_a_check_only_upload_shows_the_report_and_writes_nothing(world: World) -> None:
    before = await world_counts(world)
    response = await world.api(
        "POST",
        "/admin/oneroster/import?lang=en",
        as_="region.casa@madrasa.demo",
        tenant=REGION,
        files={"file": ("bundle.zip", zip_files(minimal_files()), "application/zip")},
        data={"dry_run": "true"},
    )
    assert response.status_code == 200, response.text
    assert "The bundle is sound: nothing was written." in response.text
    assert '<th scope="row">Pupils</th><td>2</td>' in response.text
    assert await world_counts(world) == before


async def test_a_broken_upload_lists_file_row_column_and_message(world: World) -> None:
    files = replace(minimal_files(), "roles.csv", "primary,teacher", "primary,headmaster")
    response = await world.api(
        "POST",
        "/admin/oneroster/import?lang=fr",
        as_="region.casa@madrasa.demo",
        tenant=REGION,
        files={"file": ("bundle.zip", zip_files(files), "application/zip")},
    )
    assert response.status_code == 422
    assert "Rien n&#39;a été importé" in response.text or "Rien n'a été importé" in response.text
    assert "<td>roles.csv</td><td>2</td><td>role</td>" in response.text
    assert "n&#39;est pas l&#39;une des valeurs" in response.text or "n'est pas l'une des valeurs" in response.text
    arabic = await world.api(
        "POST",
        "/admin/oneroster/import?lang=ar",
        as_="region.casa@madrasa.demo",
        tenant=REGION,
        files={"file": ("bundle.zip", zip_files(files), "application/zip")},
    )
    assert arabic.status_code == 422 and "ليست من القيم" in arabic.text


async def test_the_form_without_a_file_and_with_a_huge_file_shows_field_errors(world: World) -> None:
    response = await world.api(
        "POST", "/admin/oneroster/import?lang=en", as_=DIRECTOR, tenant=SCHOOL, data={"dry_run": "true"}
    )
    assert response.status_code == 400
    assert 'aria-invalid="true"' in response.text and "Choose a OneRoster bundle (.zip)." in response.text
    huge = b"PK" + b"x" * (world.settings.max_upload_bytes + 1)
    response = await world.api(
        "POST",
        "/admin/oneroster/import?lang=en",
        as_=DIRECTOR,
        tenant=SCHOOL,
        files={"file": ("big.zip", huge, "application/zip")},
    )
    assert response.status_code == 413
    assert "The file is too large." in response.text


async def test_the_download_is_the_schools_bundle(world: World) -> None:
    response = await world.api("GET", "/admin/oneroster/export", as_=DIRECTOR, tenant=SCHOOL)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert "manifest.csv" in archive.namelist() and "users.csv" in archive.namelist()


async def test_pages_refuse_other_tenants_and_other_roles(world: World) -> None:
    for actor, tenant in (
        ("region.casa@madrasa.demo", "rabat-sale-kenitra"),
        (DIRECTOR, "lycee-moulay-youssef"),
        ("teacher.lycee-ibn-batouta@test.ma", SCHOOL),
    ):
        for path in ("/admin/oneroster/", "/admin/oneroster/export"):
            response = await world.api("GET", path, as_=actor, tenant=tenant)
            assert response.status_code == 403, (actor, tenant, path)
    response = await world.api(
        "POST",
        "/admin/oneroster/import",
        as_=DIRECTOR,
        tenant="lycee-moulay-youssef",
        files={"file": ("bundle.zip", zip_files(minimal_files()), "application/zip")},
    )
    assert response.status_code == 403
