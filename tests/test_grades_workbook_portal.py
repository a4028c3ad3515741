"""The Massar workbook in the portal: a teacher downloads it from the sheet and grid pages with the session,
uploads it filled in through a multipart form, and reads the cell-by-cell report in the page."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po

from core.i18n import locale_var
from core.storage import XLSX
from plugins.grades.spreadsheet_book import parse_upload
from plugins.grades.workbook_messages import TEMPLATES, translated
from tests.test_spreadsheet import (
    DIRECTOR,
    HOME,
    IDENTITY,
    OTHER_TEACHER,
    TEACHER,
    Klass,
    edit,
    make_class,
    put,
    rows_by_code,
    template,
)

OTHER_SCHOOL = "college-al-khawarizmi"
ROOT = Path(__file__).resolve().parents[1]


async def page(world: Any, method: str, path: str, as_: str = TEACHER, tenant: str = HOME, **kwargs: Any) -> Any:
    separator = "&" if "?" in path else "?"
    return await world.api(method, f"{path}{separator}lang=fr", as_=as_, tenant=tenant, **kwargs)


async def upload(world: Any, klass: Klass, data: bytes, as_: str = TEACHER, **fields: str) -> Any:
    cookie_csrf = (await world.web_session(as_))[1]
    return await page(
        world,
        "POST",
        f"/grades/sheets/{klass.sheet_id}/workbook",
        as_=as_,
        data={"csrf_token": cookie_csrf, **fields},
        files={"file": ("notes.xlsx", data, XLSX)},
    )


async def grid(world: Any, assessment_id: int) -> dict[str, tuple[Any, str]]:
    response = await world.api("GET", f"/api/v1/grades/assessments/{assessment_id}/marks", as_=TEACHER, tenant=HOME)
    assert response.status_code == 200, response.text
    return {m["national_code"]: (m["score"], m["status"]) for m in response.json()["marks"]}


async def test_the_sheet_and_grid_pages_offer_the_workbook_to_download_with_the_session(world):
    klass = await make_class(world)
    sheet = await page(world, "GET", f"/grades/sheets/{klass.sheet_id}")
    assert sheet.status_code == 200, sheet.text
    link = f'href="/t/{HOME}/grades/sheets/{klass.sheet_id}/workbook"'
    assert link in sheet.text and "Classeur Massar" in sheet.text
    assert 'enctype="multipart/form-data"' in sheet.text and 'name="csrf_token"' in sheet.text
    cc1 = await page(world, "GET", f"/grades/assessments/{klass.assessments[0]}")
    assert cc1.status_code == 200 and link in cc1.text

    download = await page(world, "GET", f"/grades/sheets/{klass.sheet_id}/workbook")
    assert download.status_code == 200, download.text
    assert download.headers["content-type"].startswith(XLSX)
    assert download.headers["content-disposition"].startswith("attachment;")
    assert set(rows_by_code(download.content)) == set(klass.codes)


async def test_a_filled_workbook_is_saved_and_reported_in_the_page(world):
    klass = await make_class(world)
    blank = (await page(world, "GET", f"/grades/sheets/{klass.sheet_id}/workbook")).content
    at = rows_by_code(blank)
    a, b, c = (at[code] for code in klass.codes)
    filled = edit(blank, put({f"G{a}": 14.5, f"G{b}": "9,25", f"G{c}": "غ", f"I{a}": 17}))
    response = await upload(world, klass, filled)
    assert response.status_code == 200, response.text
    assert 'id="workbook-report"' in response.text and 'class="notice"' in response.text
    assert "4 notes modifiées" in response.text
    cc1 = await grid(world, klass.assessments[0])
    assert cc1[klass.codes[0]] == (14.5, "present")
    assert cc1[klass.codes[1]] == (9.25, "present")
    assert cc1[klass.codes[2]] == (None, "absent")
    assert (await grid(world, klass.assessments[1]))[klass.codes[0]] == (17, "present")


async def test_bad_cells_are_listed_in_the_page_and_nothing_is_written(world):
    klass = await make_class(world)
    blank = (await page(world, "GET", f"/grades/sheets/{klass.sheet_id}/workbook")).content
    at = rows_by_code(blank)
    a, b = at[klass.codes[0]], at[klass.codes[1]]
    bad = edit(blank, put({f"G{a}": 12, f"G{b}": 25, f"I{a}": "douze"}))
    response = await upload(world, klass, bad)
    assert response.status_code == 422, response.text
    assert "2 problème(s) dans le fichier" in response.text
    # The problems read in the page's language.
    assert "au-dessus du maximum : une note est comprise entre 0 et 20" in response.text
    assert "pas une note : écrivez un nombre de 0 à 20" in response.text
    cells = re.findall(r'<tr class="cell-error" data-cell="([A-Z]+\d+)">', response.text)
    assert sorted(cells) == sorted([f"G{b}", f"I{a}"])
    # The form is offered again on the report page.
    assert f'action="/t/{HOME}/grades/sheets/{klass.sheet_id}/workbook"' in response.text
    assert all(score is None for score, _ in (await grid(world, klass.assessments[0])).values())


async def test_an_upload_without_a_file_or_not_a_workbook_is_an_error_in_the_page(world):
    klass = await make_class(world, ccs=1)
    empty = await page(
        world,
        "POST",
        f"/grades/sheets/{klass.sheet_id}/workbook",
        data={"csrf_token": (await world.web_session(TEACHER))[1]},
        files={"other": ("x.txt", b"x", "text/plain")},
    )
    assert empty.status_code == 400 and 'id="workbook-error"' in empty.text
    assert "Choisissez le classeur rempli" in empty.text
    not_xlsx = await upload(world, klass, b"%PDF-1.4 not a workbook")
    assert not_xlsx.status_code == 415 and 'id="workbook-error"' in not_xlsx.text


async def test_only_the_subjects_teacher_and_the_director_use_the_workbook(world):
    klass = await make_class(world, ccs=1)
    if OTHER_TEACHER not in world.passwords:
        await world.add_person(OTHER_TEACHER, "teacher", HOME)
    path = f"/grades/sheets/{klass.sheet_id}/workbook"
    assert (await page(world, "GET", path, as_=DIRECTOR)).status_code == 200
    assert (await page(world, "GET", path, as_=OTHER_TEACHER)).status_code == 403
    blank = (await page(world, "GET", path)).content
    refused = await upload(world, klass, blank, as_=OTHER_TEACHER)
    assert refused.status_code == 403
    assert (await page(world, "GET", path, as_=f"guardian.{HOME}@test.ma")).status_code == 403
    # A sheet of another school, from that school's portal: not found.
    foreign = await page(world, "GET", path, as_=f"director.{OTHER_SCHOOL}@test.ma", tenant=OTHER_SCHOOL)
    assert foreign.status_code == 404


@pytest.mark.parametrize("locale", ["ar", "fr"])
def test_every_workbook_message_is_translated(locale):
    messages: dict[str, str] = {}
    for path in sorted((ROOT / "plugins" / "grades" / "locale" / locale / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as handle:
            messages.update({m.id: m.string for m in read_po(handle) if m.id and m.string})
    with (ROOT / "core" / "locale" / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        messages.update({m.id: m.string for m in read_po(handle) if m.id and m.string})
    missing = [t for t in TEMPLATES if not messages.get(t)]
    assert not missing, missing
    for template_ in TEMPLATES:  # every placeholder survives the translation
        assert set(re.findall(r"\{(\w+)\}", template_)) == set(re.findall(r"\{(\w+)\}", messages[template_]))


def test_the_parsers_messages_are_found_and_translated():
    rows = {3: 18, 4: 19}
    bad = edit(
        template(),
        put({f"G{rows[3]}": 25, f"I{rows[3]}": "douze", f"K{rows[3]}": "=1+1", f"G{rows[4]}": -2, "N18": "x"}),
    )
    _, errors = parse_upload(bad, IDENTITY)
    assert len(errors) == 5
    token = locale_var.set("fr")
    try:
        shown = [translated(e.message) for e in errors]
    finally:
        locale_var.reset(token)
    assert all(text != e.message for text, e in zip(shown, errors, strict=True)), shown
    assert "une formule : tapez la note elle-même" in shown
    assert "négative : une note est comprise entre 0 et 20" in shown
    assert translated("something no template knows") == "something no template knows"


async def test_a_submitted_sheet_refuses_the_teachers_upload_in_the_pages_language(world):
    klass = await make_class(world, ccs=1)
    blank = (await page(world, "GET", f"/grades/sheets/{klass.sheet_id}/workbook")).content
    at = rows_by_code(blank)
    submitted = await world.api("POST", f"/api/v1/grades/sheets/{klass.sheet_id}/submit", as_=TEACHER, tenant=HOME)
    assert submitted.status_code == 200, submitted.text
    response = await upload(world, klass, edit(blank, put({f"G{at[klass.codes[0]]}": 12})))
    assert response.status_code == 423, response.text
    assert "Les notes sont soumises : demandez à la direction de les rouvrir." in response.text
    assert all(score is None for score, _ in (await grid(world, klass.assessments[0])).values())
