"""The Massar spreadsheet round trip: the pure template builder and parser, then download/upload over HTTP."""

from __future__ import annotations

import dataclasses
import io
import secrets
import zipfile
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from litestar import Router
from openpyxl import Workbook, load_workbook

from core.app import create_app
from core.storage import XLSX
from plugins.grades.spreadsheet import SPREADSHEET_ROUTES
from plugins.grades.spreadsheet_book import build_template, parse_upload, read_mark, read_upload
from plugins.grades.spreadsheet_layout import FILE, IDENTITY_SHEET, CellMark, Column, Pupil, SheetIdentity, SheetInfo
from tests.conftest import new_client

HOME = "lycee-ibn-batouta"
TEACHER = f"teacher.{HOME}@test.ma"
DIRECTOR = f"director.{HOME}@test.ma"
OTHER_TEACHER = f"xlsx-other-teacher.{HOME}@test.ma"
ROUTE = "/api/v1/grades/sheets/{sheet_id:int}/xlsx"
SECRET = "k" * 48

IDENTITY = SheetIdentity(7, 42, "MATH", 3, 99, secret=SECRET, class_name="TC-2", subject="MATH", semester=1)
INFO = SheetInfo(
    identity=IDENTITY,
    academy="الدار البيضاء سطات / Casablanca-Settat",
    directorate="أنفا / Anfa",
    school="ثانوية ابن بطوطة / Lycée Ibn Batouta",
    level="الجذع المشترك / Tronc commun",
    class_name="TC-2",
    teacher="Prof Test",
    semester=1,
    subject="الرياضيات / Mathématiques",
    year="2026-2027",
    columns=(Column(1, 501, 3), Column(2, 502, 0)),
)
PUPILS = [
    Pupil(1, "A000000001", "العلوي سارة", "Alaoui Sara"),
    Pupil(2, "A000000002", "بناني عمر", "Bennani Omar"),
    Pupil(3, "A000000003", "شرايبي نورة", "Chraibi Nora"),
]
MARKS = {1: {1: CellMark(Decimal("12.50")), 2: CellMark(None, "absent"), 3: CellMark(None, "excused")}}


def template(**changes: Any) -> bytes:
    return build_template(dataclasses.replace(INFO, **changes) if changes else INFO, PUPILS, MARKS)


def edit(data: bytes, change: Callable[[Any, Any], None]) -> bytes:
    """Open a workbook, let ``change(sheet, workbook)`` edit it, and save it again."""
    wb = load_workbook(io.BytesIO(data))
    change(wb["Notes"], wb)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def put(cells: dict[str, Any]) -> Callable[[Any, Any], None]:
    def change(ws: Any, wb: Any) -> None:
        for ref, value in cells.items():
            ws[ref] = value

    return change


def cells_of(errors: list[Any]) -> set[str]:
    return {e.cell if hasattr(e, "cell") else e["cell"] for e in errors}


# -- the pure layer ---------------------------------------------------------------------------


def test_template_has_the_massar_layout_in_arabic_and_french_right_to_left():
    wb = load_workbook(io.BytesIO(template()))
    ws = wb["Notes"]
    assert ws.sheet_view.rightToLeft is True
    assert wb.sheetnames == ["Notes", IDENTITY_SHEET]
    assert wb[IDENTITY_SHEET].sheet_state == "veryHidden"
    labels = {ws[f"C{row}"].value: ws[f"D{row}"].value for row in range(1, 17)}
    assert labels["الأكاديمية / Académie"] == INFO.academy
    assert labels["المديرية / Direction provinciale"] == INFO.directorate
    assert labels["المؤسسة / Établissement"] == INFO.school
    assert labels["المستوى / Niveau"] == INFO.level
    assert labels["القسم / Classe"] == "TC-2"
    assert labels["الأستاذ(ة) / Enseignant(e)"] == "Prof Test"
    assert labels["الدورة / Semestre"] == "الدورة الأولى / Semestre 1"
    assert labels["المادة / Matière"] == INFO.subject
    assert ws["C17"].value == "رقم التلميذ / Code élève"
    assert ws["D17"].value == "الاسم الكامل / Nom complet"
    assert (ws["G17"].value, ws["I17"].value, ws["K17"].value) == (
        "الفرض 1 / Contrôle 1",
        "الفرض 2 / Contrôle 2",
        "الفرض 3 / Contrôle 3",
    )
    assert [ws[f"C{r}"].value for r in (18, 19, 20)] == ["A000000001", "A000000002", "A000000003"]
    assert [ws[f"D{r}"].value for r in (18, 19, 20)] == ["العلوي سارة", "بناني عمر", "شرايبي نورة"]
    assert ws["E18"].value == "Alaoui Sara"
    assert [ws[f"G{r}"].value for r in (18, 19, 20)] == [12.5, "غ", "م"]
    assert ws["I18"].value is None and ws["K18"].value is None
    assert ws["C21"].value is None
    identity = wb[IDENTITY_SHEET]
    assert identity["A1"].value == "madrasa:7:42:MATH:3:99"
    assert identity["A2"].value == "1=501.3;2=502.0"
    assert len(identity["A3"].value) == 64


def test_the_template_reads_back_as_it_was_built():
    parsed = read_upload(template(), IDENTITY)
    assert parsed.errors == [] and not parsed.fatal
    assert parsed.versions == {1: (501, 3), 2: (502, 0)}
    assert parsed.identity == IDENTITY
    assert [(r.row, r.code) for r in parsed.rows] == [(18, "A000000001"), (19, "A000000002"), (20, "A000000003")]
    assert parsed.rows[0].marks == {1: CellMark(Decimal("12.50")), 2: CellMark(), 3: CellMark()}
    assert parsed.rows[1].marks[1] == CellMark(None, "absent")
    assert parsed.rows[2].marks[1] == CellMark(None, "excused")


def test_the_mark_vocabulary():
    assert read_mark(None) == CellMark()
    assert read_mark("  ") == CellMark()
    assert read_mark(15) == CellMark(Decimal("15.00"))
    assert read_mark(12.25) == CellMark(Decimal("12.25"))
    assert read_mark("12,5") == CellMark(Decimal("12.50"))
    assert read_mark(" 7.75 ") == CellMark(Decimal("7.75"))
    assert read_mark("١٢٫٥") == CellMark(Decimal("12.50"))
    assert read_mark("12.500") == CellMark(Decimal("12.50"))
    assert read_mark(20) == CellMark(Decimal("20.00"))
    assert read_mark(0) == CellMark(Decimal("0.00"))
    for word in ("غ", "ABS", "abs", "Absent", "غائب"):
        assert read_mark(word) == CellMark(None, "absent"), word
    for word in ("م", "EXC", "Excusé", "مبرر"):
        assert read_mark(word) == CellMark(None, "excused"), word
    assert "above the maximum" in read_mark(21)
    assert "above the maximum" in read_mark("20,01")
    assert "above the maximum" in read_mark(11, Decimal(10))
    assert "negative" in read_mark(-1)
    assert "negative" in read_mark("-0,5")
    assert "decimals" in read_mark(12.345)
    assert "decimals" in read_mark("12,345")
    assert "not a mark" in read_mark("abc")
    assert "not a mark" in read_mark("12/20")
    assert "date" in read_mark(datetime(2026, 5, 12))
    assert "TRUE/FALSE" in read_mark(True)
    assert "formula" in read_mark("=A1+2")


def test_every_bad_cell_is_reported_with_its_place():
    data = edit(
        template(),
        put(
            {
                "C18": "12345",  # not a pupil code
                "G19": "abc",
                "I19": 21,
                "K19": 12.345,
                "I20": -2,
                "G22": 11,  # marks without a code
                "H20": 14,  # a mark in the gap column
            }
        ),
    )
    rows, errors = parse_upload(data, IDENTITY)
    assert cells_of(errors) == {"C18", "G19", "I19", "K19", "I20", "H20", "C22"}
    by_cell = {e.cell: e for e in errors}
    assert by_cell["C18"].row == 18 and by_cell["C18"].column == "C" and by_cell["C18"].value == "12345"
    assert "pupil code" in by_cell["C18"].message
    assert by_cell["G19"].value == "abc" and "not a mark" in by_cell["G19"].message
    assert by_cell["I19"].value == "21" and "above the maximum" in by_cell["I19"].message
    assert by_cell["K19"].value == "12.345" and "decimals" in by_cell["K19"].message
    assert "negative" in by_cell["I20"].message
    assert "nothing is read from column H" in by_cell["H20"].message
    assert "missing" in by_cell["C22"].message
    assert [e.row for e in errors] == sorted(e.row for e in errors)
    assert len(rows) == 4  # every pupil row comes back; a bad cell reads blank
    assert rows[1].marks[1] == CellMark()


def test_a_pupil_twice_is_a_duplicate():
    data = edit(template(), put({"C21": "a000000002", "G21": 9}))
    _, errors = parse_upload(data, IDENTITY)
    assert [(e.cell, e.message) for e in errors] == [("C21", "the pupil appears twice: duplicate of row 19")]


def test_a_lower_maximum_is_applied_per_column():
    data = edit(template(), put({"G19": 11, "I19": 11}))
    _, errors = parse_upload(data, IDENTITY, {1: Decimal(20), 2: Decimal(10)})
    assert [(e.cell, "between 0 and 10" in e.message) for e in errors] == [("I19", True)]


@pytest.mark.parametrize(
    ("field", "value", "cell", "words"),
    [
        ("class_id", 43, "D9", "another class (TC-2)"),
        ("subject_code", "PC", "D12", "another subject"),
        ("term_id", 4, "D11", "another semester"),
        ("teacher_id", 98, "D10", "another teacher"),
        ("school_id", 8, "D7", "another school"),
    ],
)
def test_a_template_of_another_sheet_is_one_clear_error(field, value, cell, words):
    expected = dataclasses.replace(IDENTITY, **{field: value})
    rows, errors = parse_upload(template(), expected)
    assert rows == []
    assert len(errors) == 1
    assert errors[0].cell == cell
    assert words in errors[0].message and "download the template of this sheet" in errors[0].message


def test_a_forged_identity_is_refused():
    def forge(ws: Any, wb: Any) -> None:
        wb[IDENTITY_SHEET]["A1"] = "madrasa:7:43:MATH:3:99"

    rows, errors = parse_upload(edit(template(), forge), dataclasses.replace(IDENTITY, class_id=43))
    assert rows == [] and len(errors) == 1 and "altered" in errors[0].message

    def older(ws: Any, wb: Any) -> None:
        wb[IDENTITY_SHEET]["A2"] = "1=501.9;2=502.0"  # claim a newer version to overwrite someone's marks

    assert "altered" in parse_upload(edit(template(), older), IDENTITY)[1][0].message
    # another deployment's key signs another identity
    assert "altered" in parse_upload(template(), dataclasses.replace(IDENTITY, secret="x" * 48))[1][0].message


def test_a_workbook_without_identity_is_refused():
    wb = Workbook()
    wb.active["C18"] = "A000000001"
    out = io.BytesIO()
    wb.save(out)
    rows, errors = parse_upload(out.getvalue(), IDENTITY)
    assert rows == [] and [(e.row, e.column) for e in errors] == [(0, FILE)]
    assert "not a madrasa template" in errors[0].message


def test_moved_columns_are_refused():
    def shift(ws: Any, wb: Any) -> None:
        ws.delete_cols(8)  # column H removed: I moves to H, K to J

    rows, errors = parse_upload(edit(template(), shift), IDENTITY)
    assert rows == [] and cells_of(errors) == {"I17", "K17"}
    assert "keep the template's layout" in errors[0].message


@pytest.mark.parametrize(
    "data",
    [b"", b"not a workbook", b"PK\x03\x04broken zip", b"%PDF-1.4\n"],
    ids=["empty", "text", "bad-zip", "pdf"],
)
def test_not_an_xlsx_is_one_clear_error(data):
    rows, errors = parse_upload(data, IDENTITY)
    assert rows == [] and len(errors) == 1
    assert (errors[0].row, errors[0].column, errors[0].cell) == (0, FILE, "")


def test_a_zip_that_is_not_a_workbook_is_one_clear_error():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("word/document.xml", "<w/>")
    rows, errors = parse_upload(out.getvalue(), IDENTITY)
    assert rows == [] and len(errors) == 1 and "not an .xlsx workbook" in errors[0].message


# -- over HTTP, on SQLite and PostgreSQL ------------------------------------------------------


@pytest.fixture(scope="session")
async def xlsx(world):
    """Call the app with the spreadsheet routes (mounted here too while the plugin does not mount them yet)."""
    app = create_app(world.settings, services=world.services)
    if not any(route.path == ROUTE for route in app.litestar.routes):
        app.litestar.register(
            Router(path="/", route_handlers=list(SPREADSHEET_ROUTES), opt={"plugin": "grades", "module": "grades"})
        )
    client = new_client(app)

    async def call(method: str, path: str, *, as_: str = TEACHER, **kwargs: Any) -> Any:
        headers = {"authorization": f"Bearer {await world.token(as_)}"}
        return await client.request(method, f"/t/{HOME}{path}", headers=headers, **kwargs)

    yield call
    await client.aclose()


def code() -> str:
    return f"X{secrets.randbelow(10**9):09d}"


@dataclasses.dataclass
class Klass:
    name: str
    class_id: int
    codes: list[str]
    students: list[int]
    assessments: list[int]
    sheet_id: int


async def second_term(world) -> tuple[int, date]:
    """The second semester that applies to the school: its region's own when the region set its terms.

    Other tests may give the region its own terms (the national ones then no longer apply) or close
    the first semester; the second one is left alone.
    """
    school = await world.services.tenants.by_slug(HOME)
    term_id = await world.sql("SELECT id FROM term WHERE number = 2 AND tenant_id = {}", school.region_id)
    if term_id is None:
        term_id = await world.sql("SELECT id FROM term WHERE number = 2 AND tenant_id IS NULL ORDER BY id LIMIT 1")
    starts_on = await world.sql("SELECT starts_on FROM term WHERE id = {}", term_id)
    return int(term_id), starts_on if isinstance(starts_on, date) else date.fromisoformat(str(starts_on)[:10])


async def make_class(world, pupils: int = 3, ccs: int = 3) -> Klass:
    """A class of this school taught MATH by the seeded teacher, with pupils and ``ccs`` continuous assessments."""

    async def post(path: str, body: dict[str, Any], actor: str = DIRECTOR) -> int:
        response = await world.api("POST", path, as_=actor, tenant=HOME, json=body)
        assert response.status_code in (200, 201), f"{path}: {response.text}"
        return int(response.json()["id"])

    name = f"XL-{secrets.token_hex(3)}"
    class_id = await post("/api/v1/school/classes", {"name": name, "level_code": "TC", "track_code": "TCS"})
    codes, students = [], []
    for first, last in [("Amal", "Alpha"), ("Badr", "Bravo"), ("Chaimae", "Charlie"), ("Driss", "Delta")][:pupils]:
        codes.append(code())
        students.append(
            await post(
                "/api/v1/school/students",
                {"national_code": codes[-1], "first_name": first, "last_name": last, "class_id": class_id},
            )
        )
    teacher = world.objects[HOME]["teacher_id"]
    await post("/api/v1/school/assignments", {"teacher_id": teacher, "class_id": class_id, "subject_code": "MATH"})
    term_id, starts_on = await second_term(world)
    assessments = []
    for n in range(1, ccs + 1):
        body = {
            "class_id": class_id,
            "subject_code": "MATH",
            "term_id": term_id,
            "scheduled_on": (starts_on + timedelta(days=7 * n)).isoformat(),
            "title": f"Contrôle {n}",
        }
        assessments.append(await post("/api/v1/grades/assessments", body, TEACHER))
    sheet_id = await world.sql("SELECT sheet_id FROM grade_assessment WHERE id = {}", assessments[0])
    return Klass(name, class_id, codes, students, assessments, int(sheet_id))


async def download(xlsx, sheet_id: int, as_: str = TEACHER) -> bytes:
    response = await xlsx("GET", f"/api/v1/grades/sheets/{sheet_id}/xlsx", as_=as_)
    assert response.status_code == 200, response.text
    return response.content


async def upload(xlsx, sheet_id: int, data: bytes, *, as_: str = TEACHER, content_type: str = XLSX) -> Any:
    files = {"file": ("notes.xlsx", data, content_type)}
    return await xlsx("POST", f"/api/v1/grades/sheets/{sheet_id}/xlsx", as_=as_, files=files)


def rows_by_code(data: bytes) -> dict[str, int]:
    ws = load_workbook(io.BytesIO(data))["Notes"]
    return {ws[f"C{r}"].value: r for r in range(18, ws.max_row + 1) if ws[f"C{r}"].value}


async def state(world, klass: Klass) -> dict[str, Any]:
    """Marks and versions of the class's assessments, and their audit rows."""
    grids = {}
    for aid in klass.assessments:
        response = await world.api("GET", f"/api/v1/grades/assessments/{aid}/marks", as_=TEACHER, tenant=HOME)
        assert response.status_code == 200, response.text
        body = response.json()
        grids[aid] = (body["version"], {m["national_code"]: (m["score"], m["status"]) for m in body["marks"]})
    marks = ", ".join("{}" for _ in klass.assessments)
    audit = await world.sql(
        f"SELECT COUNT(*) FROM audit_log WHERE object_type = 'assessment' AND object_id IN ({marks})",
        *(str(a) for a in klass.assessments),
    )
    rows = await world.sql(f"SELECT COUNT(*) FROM grade_mark WHERE assessment_id IN ({marks})", *klass.assessments)
    return {"grids": grids, "audit": audit, "rows": rows}


async def test_download_of_the_seeded_sheet(world, xlsx):
    objects = world.objects[HOME]
    response = await xlsx("GET", f"/api/v1/grades/sheets/{objects['sheet_id']}/xlsx")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(XLSX)
    assert 'filename="massar-TEST-1-MATH-S1.xlsx"' in response.headers["content-disposition"]
    assert response.headers["content-disposition"].startswith("attachment;")
    wb = load_workbook(io.BytesIO(response.content))
    ws = wb["Notes"]
    assert ws.sheet_view.rightToLeft is True
    school = await world.services.tenants.by_slug(HOME)
    assert school.name_fr in ws["D7"].value
    assert ws["D9"].value == "TEST-1"
    assert "Semestre 1" in ws["D11"].value
    assert ws["C17"].value == "رقم التلميذ / Code élève" and ws["G17"].value == "الفرض 1 / Contrôle 1"
    seeded = await world.sql("SELECT national_code FROM student WHERE id = {}", objects["student_id"])
    assert seeded in rows_by_code(response.content)
    assert min(rows_by_code(response.content).values()) == 18
    identity = wb[IDENTITY_SHEET]["A1"].value
    assert identity == (
        f"madrasa:{world.ids[HOME]}:{objects['class_id']}:MATH:{objects['term_id']}:{objects['teacher_id']}"
    )
    director = await xlsx("GET", f"/api/v1/grades/sheets/{objects['sheet_id']}/xlsx", as_=DIRECTOR)
    assert director.status_code == 200


async def test_round_trip_saves_the_marks_and_the_same_file_again_changes_nothing(world, xlsx):
    klass = await make_class(world)
    blank = await download(xlsx, klass.sheet_id)
    at = rows_by_code(blank)
    a, b, c = (at[code] for code in klass.codes)
    filled = edit(
        blank,
        put(
            {
                f"G{a}": 12.5,
                f"I{a}": "14,25",
                f"K{a}": "غ",
                f"G{b}": 20,
                f"I{b}": "ABS",
                f"K{b}": 8,
                f"G{c}": 0,
                f"I{c}": "EXC",
            }
        ),
    )
    response = await upload(xlsx, klass.sheet_id, filled)
    assert response.status_code == 200, response.text
    assert response.json() == {"ok": True, "changed": 3, "unchanged": 0, "marks": 8, "rows": 3, "errors": []}
    after = await state(world, klass)
    cc1, cc2, cc3 = (after["grids"][aid] for aid in klass.assessments)
    x, y, z = klass.codes
    assert cc1 == (1, {x: (12.5, "present"), y: (20.0, "present"), z: (0.0, "present")})
    assert cc2 == (1, {x: (14.25, "present"), y: (None, "absent"), z: (None, "excused")})
    assert cc3 == (1, {x: (None, "absent"), y: (8.0, "present"), z: (None, "present")})
    assert after["audit"] == 0  # first entries are inserts; save_grid audits changes of existing marks

    again = await upload(xlsx, klass.sheet_id, filled)
    assert again.status_code == 200, again.text
    assert again.json() == {"ok": True, "changed": 0, "unchanged": 3, "marks": 0, "rows": 3, "errors": []}
    assert await state(world, klass) == after  # same marks, versions, audit rows and mark rows

    # the file downloaded now shows the saved marks and also uploads as "nothing changed", by the director too
    fresh = await download(xlsx, klass.sheet_id)
    ws = load_workbook(io.BytesIO(fresh))["Notes"]
    assert (ws[f"G{a}"].value, ws[f"I{a}"].value, ws[f"K{a}"].value) == (12.5, 14.25, "غ")
    assert (ws[f"I{b}"].value, ws[f"I{c}"].value, ws[f"K{c}"].value) == ("غ", "م", None)
    by_director = await upload(xlsx, klass.sheet_id, fresh, as_=DIRECTOR)
    assert by_director.status_code == 200 and by_director.json()["changed"] == 0
    assert await state(world, klass) == after

    # a later correction of one mark saves that grid only (audited, as a change of a stored mark)
    corrected = await upload(xlsx, klass.sheet_id, edit(fresh, put({f"G{a}": "13,75"})))
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["changed"] == 1 and corrected.json()["unchanged"] == 2 and corrected.json()["marks"] == 1
    final = await state(world, klass)
    assert final["grids"][klass.assessments[0]] == (2, {**cc1[1], x: (13.75, "present")})
    assert final["grids"][klass.assessments[1]] == cc2 and final["grids"][klass.assessments[2]] == cc3
    assert final["audit"] == 1


async def test_a_broken_file_is_reported_cell_by_cell_and_nothing_is_written(world, xlsx):
    klass = await make_class(world, pupils=4)
    blank = await download(xlsx, klass.sheet_id)
    at = rows_by_code(blank)
    baseline = {f"G{at[c]}": 10 + n for n, c in enumerate(klass.codes)}
    assert (await upload(xlsx, klass.sheet_id, edit(blank, put(baseline)))).status_code == 200
    before = await state(world, klass)
    template = await download(xlsx, klass.sheet_id)
    at = rows_by_code(template)
    first, second, third, fourth = (at[c] for c in klass.codes)
    assert [first, second, third, fourth] == [18, 19, 20, 21]
    stranger = await world.sql("SELECT national_code FROM student WHERE id = {}", world.objects[HOME]["student_id"])

    def breakage(ws: Any, wb: Any) -> None:
        ws.delete_rows(fourth)  # a pupil missing from the file
        ws["C18"] = "K12"  # a wrong code
        ws["G19"] = "abc"  # text in a mark cell
        ws["I19"] = 15  # a valid change, which must not be written either
        ws["I20"] = 21  # 21 on /20
        ws["K20"] = 12.345  # three decimals
        ws["C21"], ws["D21"], ws["G21"] = stranger, "Intrus", 9  # a pupil who is not in the class

    response = await upload(xlsx, klass.sheet_id, edit(template, breakage))
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["ok"] is False and body["changed"] == 0
    errors = {e["cell"]: e for e in body["errors"]}
    assert set(errors) == {"C18", "G19", "I20", "K20", "C21", ""}
    assert "pupil code" in errors["C18"]["message"] and errors["C18"]["value"] == "K12"
    assert errors["G19"]["value"] == "abc" and "not a mark" in errors["G19"]["message"]
    assert errors["I20"]["value"] == "21" and "above the maximum" in errors["I20"]["message"]
    assert errors["K20"]["value"] == "12.345" and "decimals" in errors["K20"]["message"]
    assert errors["C21"]["value"] == stranger and f"not a pupil of {klass.name}" in errors["C21"]["message"]
    missing = errors[""]
    assert (missing["row"], missing["column"]) == (0, "C") and "missing from the file" in missing["message"]
    assert klass.codes[3] in missing["value"]  # the deleted row
    assert klass.codes[0] in missing["value"]  # the row whose code was mistyped
    assert all(e["row"] in (0, 18, 19, 20, 21) for e in body["errors"])
    assert await state(world, klass) == before


async def test_marks_for_a_cc_not_yet_scheduled_are_refused(world, xlsx):
    klass = await make_class(world, pupils=2, ccs=1)
    blank = await download(xlsx, klass.sheet_id)
    at = rows_by_code(blank)
    data = edit(blank, put({f"G{at[klass.codes[0]]}": 12, f"I{at[klass.codes[1]]}": 13}))
    before = await state(world, klass)
    response = await upload(xlsx, klass.sheet_id, data)
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["cell"] == "I17" and "schedule CC2 first" in error["message"]
    assert await state(world, klass) == before
    # once CC2 is scheduled, the same file goes in
    response = await world.api(
        "POST",
        "/api/v1/grades/assessments",
        as_=TEACHER,
        tenant=HOME,
        json={
            "class_id": klass.class_id,
            "subject_code": "MATH",
            "term_id": (await second_term(world))[0],
            "scheduled_on": ((await second_term(world))[1] + timedelta(days=30)).isoformat(),
        },
    )
    assert response.status_code == 201, response.text
    klass.assessments.append(response.json()["id"])
    response = await upload(xlsx, klass.sheet_id, data)
    assert response.status_code == 200, response.text
    assert response.json()["changed"] == 2
    grids = (await state(world, klass))["grids"]
    assert grids[klass.assessments[1]][1][klass.codes[1]] == (13.0, "present")


async def test_the_template_of_another_class_is_refused(world, xlsx):
    first, second = await make_class(world, pupils=2, ccs=1), await make_class(world, pupils=2, ccs=1)
    other = await download(xlsx, second.sheet_id)
    at = rows_by_code(other)
    data = edit(other, put({f"G{at[second.codes[0]]}": 11}))
    before = await state(world, first), await state(world, second)
    response = await upload(xlsx, first.sheet_id, data)
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["cell"] == "D9" and error["value"] == second.name
    assert f"another class ({second.name})" in error["message"] and first.name in error["message"]
    assert (await state(world, first), await state(world, second)) == before


async def test_a_tampered_identity_is_refused(world, xlsx):
    first, second = await make_class(world, pupils=2, ccs=1), await make_class(world, pupils=2, ccs=1)
    other = await download(xlsx, second.sheet_id)

    def claim_first(ws: Any, wb: Any) -> None:
        identity = wb[IDENTITY_SHEET]
        identity["A1"] = identity["A1"].value.replace(f":{second.class_id}:", f":{first.class_id}:")
        ws["D9"] = first.name
        ws["G18"] = 5

    before = await state(world, first)
    response = await upload(xlsx, first.sheet_id, edit(other, claim_first))
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert (error["row"], error["column"]) == (0, "file") and "altered" in error["message"]
    assert await state(world, first) == before


async def test_a_grid_saved_after_the_download_is_a_conflict(world, xlsx):
    klass = await make_class(world, pupils=2, ccs=1)
    old = await download(xlsx, klass.sheet_id)
    [aid] = klass.assessments
    response = await world.api(
        "PUT",
        f"/api/v1/grades/assessments/{aid}/marks",
        as_=TEACHER,
        tenant=HOME,
        json={"marks": [{"student_id": klass.students[0], "score": 17}]},
        headers={"If-Match": f'"a{aid}.v0"'},
    )
    assert response.status_code == 200, response.text
    before = await state(world, klass)
    at = rows_by_code(old)
    response = await upload(xlsx, klass.sheet_id, edit(old, put({f"G{at[klass.codes[1]]}": 9})))
    assert response.status_code == 409, response.text
    assert "CC1" in response.json()["detail"] and "download a fresh template" in response.json()["detail"]
    assert await state(world, klass) == before


async def test_another_teacher_is_refused(world, xlsx):
    if OTHER_TEACHER not in world.passwords:
        await world.add_person(OTHER_TEACHER, "teacher", HOME)
    klass = await make_class(world, pupils=2, ccs=1)
    data = await download(xlsx, klass.sheet_id)
    at = rows_by_code(data)
    before = await state(world, klass)
    response = await xlsx("GET", f"/api/v1/grades/sheets/{klass.sheet_id}/xlsx", as_=OTHER_TEACHER)
    assert response.status_code == 403
    response = await upload(xlsx, klass.sheet_id, edit(data, put({f"G{at[klass.codes[0]]}": 3})), as_=OTHER_TEACHER)
    assert response.status_code == 403
    assert await state(world, klass) == before


async def test_a_file_that_is_not_a_workbook(world, xlsx):
    klass = await make_class(world, pupils=1, ccs=1)
    before = await state(world, klass)
    pdf = await upload(xlsx, klass.sheet_id, b"%PDF-1.4\n% not a sheet\n", content_type="application/pdf")
    assert pdf.status_code == 415, pdf.text
    csv = await upload(xlsx, klass.sheet_id, b"code;note\nX000000001;12\n", content_type="text/csv")
    assert csv.status_code == 415, csv.text
    broken = await upload(xlsx, klass.sheet_id, b"PK\x03\x04 this zip is broken")
    assert broken.status_code == 422, broken.text
    assert [(e["row"], e["column"]) for e in broken.json()["errors"]] == [(0, "file")]
    big = await upload(xlsx, klass.sheet_id, b"PK\x03\x04" + b"\x00" * world.settings.max_upload_bytes)
    assert big.status_code == 413, big.text
    assert await state(world, klass) == before


async def test_a_sheet_of_another_school_is_not_found(world, xlsx):
    foreign = world.objects["lycee-moulay-youssef"]["sheet_id"]
    response = await xlsx("GET", f"/api/v1/grades/sheets/{foreign}/xlsx")
    assert response.status_code == 404
    response = await upload(xlsx, foreign, template())
    assert response.status_code == 404
