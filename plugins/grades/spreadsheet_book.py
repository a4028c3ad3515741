"""Writing a sheet's Massar workbook and reading a filled-in one back, cell by cell. Pure."""

from __future__ import annotations

import hmac
import io
import math
import re
import unicodedata
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import column_index_from_string, get_column_letter

from core.plugin_api import school
from plugins.grades.spreadsheet_layout import (
    ABSENT_WORDS,
    BLANK,
    CODE_COLUMN,
    CODE_LABEL,
    DIGITS,
    EXCUSED_WORDS,
    FILE,
    FIRST_ROW,
    HEADER_FIELDS,
    HEADER_ROW,
    IDENTITY_RE,
    IDENTITY_SHEET,
    KNOWN_COLUMNS,
    LATIN_COLUMN,
    LATIN_LABEL,
    LEGEND,
    MARK_COLUMNS,
    MARK_LABELS,
    MAX_ROWS,
    MAX_UNZIPPED_BYTES,
    MAX_ZIP_ENTRIES,
    NAME_COLUMN,
    NAME_LABEL,
    NUMBER_COLUMN,
    NUMBER_LABEL,
    NUMBER_RE,
    SHEET_TITLE,
    VERSIONS_RE,
    WARNING,
    CellError,
    CellMark,
    ParsedRow,
    Pupil,
    SheetIdentity,
    SheetInfo,
    Upload,
    _mark_value,
    _number,
    semester_label,
    sign,
    versions_text,
)


def build_template(info: SheetInfo, pupils: Sequence[Pupil], marks: Mapping[int, Mapping[int, CellMark]]) -> bytes:
    """The Massar-layout workbook of a sheet: its header block, its pupils and their current marks.

    ``marks`` maps a position (1–3) to each pupil's stored mark (by student id).
    """
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = SHEET_TITLE
    ws.sheet_view.rightToLeft = True
    bold = Font(bold=True)
    title = Font(bold=True, size=13)
    thin = Side(style="thin", color="808080")
    boxed = Border(left=thin, right=thin, top=thin, bottom=thin)
    header_fill = PatternFill("solid", fgColor="D9E1F2")
    entry_fill = PatternFill("solid", fgColor="FFF9DB")
    centred = Alignment(horizontal="center", vertical="center", wrap_text=True)

    ws["C1"] = "المملكة المغربية / Royaume du Maroc"
    ws["C2"] = (
        "وزارة التربية الوطنية والتعليم الأولي والرياضة / "
        "Ministère de l'Éducation nationale, du Préscolaire et des Sports"
    )
    ws["C3"] = "ورقة نقط المراقبة المستمرة / Relevé des notes du contrôle continu"
    for ref in ("C1", "C2", "C3"):
        ws[ref].font = title
    values = {
        "academy": info.academy,
        "directorate": info.directorate,
        "school": info.school,
        "level": info.level,
        "class": info.class_name,
        "teacher": info.teacher,
        "semester": semester_label(info.semester),
        "subject": info.subject,
        "year": info.year,
    }
    for name, (row, label) in HEADER_FIELDS.items():
        ws[f"C{row}"] = label
        ws[f"C{row}"].font = bold
        ws[f"D{row}"] = values[name]
    ws["C14"] = LEGEND
    ws["C15"] = WARNING
    ws["C15"].font = Font(italic=True, color="9C0006")

    by_position = {c.position: c for c in info.columns}
    headers = {
        NUMBER_COLUMN: NUMBER_LABEL,
        CODE_COLUMN: CODE_LABEL,
        NAME_COLUMN: NAME_LABEL,
        LATIN_COLUMN: LATIN_LABEL,
        **{MARK_COLUMNS[p]: MARK_LABELS[p] for p in MARK_COLUMNS},
    }
    for column, label in headers.items():
        cell = ws[f"{column}{HEADER_ROW}"]
        cell.value = label
        cell.font = bold
        cell.fill = header_fill
        cell.alignment = centred
        cell.border = boxed
    for position, column in MARK_COLUMNS.items():
        known = by_position.get(position)
        if known is not None and known.max_score != 20:
            ws[f"{column}{HEADER_ROW - 1}"] = f"/ {_number(known.max_score)}"
    ws.row_dimensions[HEADER_ROW].height = 32

    for index, pupil in enumerate(pupils, start=1):
        row = FIRST_ROW + index - 1
        ws[f"{NUMBER_COLUMN}{row}"] = index
        ws[f"{CODE_COLUMN}{row}"] = pupil.code
        ws[f"{NAME_COLUMN}{row}"] = pupil.name
        ws[f"{LATIN_COLUMN}{row}"] = pupil.name_latin
        for column in (NUMBER_COLUMN, CODE_COLUMN, NAME_COLUMN, LATIN_COLUMN):
            ws[f"{column}{row}"].border = boxed
        for position, column in MARK_COLUMNS.items():
            cell = ws[f"{column}{row}"]
            cell.value = _mark_value(marks.get(position, {}).get(pupil.student_id))
            cell.number_format = "0.00"
            cell.alignment = centred
            cell.border = boxed
            cell.fill = entry_fill
    widths = {"A": 2, "B": 6, "C": 34, "D": 34, "E": 26, "F": 2, "G": 16, "H": 2, "I": 16, "J": 2, "K": 16}
    for column, width in widths.items():
        ws.column_dimensions[column].width = width
    ws.freeze_panes = f"A{FIRST_ROW}"

    hidden = wb.create_sheet(IDENTITY_SHEET)
    hidden.sheet_state = "veryHidden"
    identity = info.identity.text()
    versions = versions_text({c.position: (c.assessment_id, c.version) for c in info.columns})
    hidden["A1"] = identity
    hidden["A2"] = versions
    hidden["A3"] = sign(info.identity.secret, identity, versions)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# -- parsing an upload (pure) ------------------------------------------------------------------


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        text = repr(value)
    elif isinstance(value, datetime):
        text = value.date().isoformat() if value.time() == time() else value.isoformat(sep=" ")
    else:
        text = str(value)
    return text if len(text) <= 120 else text[:119] + "…"


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _word(text: str) -> str:
    return unicodedata.normalize("NFC", re.sub(r"\s+", "", text)).casefold()


def read_mark(value: Any, max_score: Decimal = Decimal(20)) -> CellMark | str:
    """A mark cell's value as a :class:`CellMark`, or why it is not one."""
    limit = f"{_number(max_score)}"
    if _empty(value):
        return BLANK
    if isinstance(value, bool):
        return "TRUE/FALSE is not a mark: type a number, غ/ABS or م/EXC"
    if isinstance(value, (datetime, date, time, timedelta)):
        return "a date or time, not a mark (the spreadsheet turned what was typed into a date): type 12,5 or 12.5"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "not a number"
        number = Decimal(repr(value))
    elif isinstance(value, (int, Decimal)):
        number = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.startswith("="):
            return "a formula: type the mark itself"
        word = _word(text)
        if word in ABSENT_WORDS:
            return CellMark(None, "absent")
        if word in EXCUSED_WORDS:
            return CellMark(None, "excused")
        text = text.translate(DIGITS).replace(" ", "").replace("\u00a0", "")
        if not NUMBER_RE.match(text):
            return (
                f"not a mark: write a number from 0 to {limit} (12,5 or 12.5), "
                "غ or ABS for an absent pupil, م or EXC for an excused absence, or leave it empty"
            )
        number = Decimal(text.replace(",", "."))
    else:
        return "not a mark"
    try:
        exponent = number.normalize().as_tuple().exponent
    except InvalidOperation:
        return "not a number"
    if number < 0:
        return f"negative: a mark is between 0 and {limit}"
    if number > max_score:
        return f"above the maximum: a mark is between 0 and {limit}"
    if isinstance(exponent, int) and exponent < -2:
        return "too many decimals: at most two (e.g. 12.25)"
    return CellMark(number.quantize(Decimal("0.01")), "present")


def _file_error(message: str, value: str = "") -> CellError:
    return CellError(0, FILE, "", value, message)


def _check_archive(data: bytes) -> CellError | None:
    if not data:
        return _file_error("the file is empty: upload the .xlsx workbook")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
            names = {e.filename for e in entries}
    except (zipfile.BadZipFile, ValueError, OSError):
        return _file_error(
            "not an .xlsx workbook (the file is not a valid Excel archive): save it as “Excel workbook (.xlsx)”"
        )
    if len(entries) > MAX_ZIP_ENTRIES or sum(e.file_size for e in entries) > MAX_UNZIPPED_BYTES:
        return _file_error("the workbook is far too large once unpacked to be a mark sheet")
    if "xl/workbook.xml" not in names:
        return _file_error(
            "not an .xlsx workbook (it may be an .ods or .docx file): save it as “Excel workbook (.xlsx)”"
        )
    return None


def _identity_of(wb: Any, expected: SheetIdentity) -> tuple[SheetIdentity | None, dict[int, tuple[int, int]], str]:
    """The file's signed identity and versions, or why it cannot be trusted."""
    if IDENTITY_SHEET not in wb.sheetnames:
        return (
            None,
            {},
            (
                "this workbook is not a madrasa template of this sheet (its hidden identity is missing): "
                "download the template of this sheet and fill it in"
            ),
        )
    cells = wb[IDENTITY_SHEET]
    identity, versions, signature = (str(cells[f"A{n}"].value or "").strip() for n in (1, 2, 3))
    good = sign(expected.secret, identity, versions) if expected.secret else ""
    match = IDENTITY_RE.match(identity)
    if not good or not hmac.compare_digest(good, signature) or not match or not VERSIONS_RE.match(versions):
        return (
            None,
            {},
            (
                "the template's identity was altered (its signature does not match): "
                "download a fresh template of this sheet"
            ),
        )
    school_id, class_id, subject, term_id, teacher_id = match.groups()
    found = SheetIdentity(int(school_id), int(class_id), subject, int(term_id), int(teacher_id))
    parsed: dict[int, tuple[int, int]] = {}
    for item in filter(None, versions.split(";")):
        position, rest = item.split("=")
        aid, version = rest.split(".")
        parsed[int(position)] = (int(aid), int(version))
    return found, parsed, ""


def _mismatch(found: SheetIdentity, expected: SheetIdentity, header: Mapping[str, Any]) -> CellError | None:
    """One error naming how the file's sheet differs from the expected one, at the header cell showing it."""
    differences = []

    def shown(name: str) -> str:
        value = _shown(header.get(name))
        return f" ({value})" if value else ""

    if found.school_id != expected.school_id:
        differences.append(("school", f"another school{shown('school')}"))
    if found.class_id != expected.class_id:
        differences.append(("class", f"another class{shown('class')}"))
    if found.subject_code != expected.subject_code:
        differences.append(("subject", f"another subject ({found.subject_code})"))
    if found.term_id != expected.term_id:
        differences.append(("semester", f"another semester{shown('semester')}"))
    if found.teacher_id != expected.teacher_id:
        differences.append(("teacher", f"another teacher{shown('teacher')}"))
    if not differences:
        return None
    this = " ".join(
        part
        for part in (
            expected.class_name,
            expected.subject or expected.subject_code,
            f"S{expected.semester}" if expected.semester else "",
            f"({expected.teacher})" if expected.teacher else "",
        )
        if part
    )
    first, _ = differences[0]
    row = HEADER_FIELDS[first][0]
    message = (
        "this file is the template of "
        + " and ".join(text for _, text in differences)
        + (f", not of this sheet ({this})" if this else ", not of this sheet")
        + ": download the template of this sheet"
    )
    return CellError(row, "D", f"D{row}", _shown(header.get(first)), message)


def _unreadable(exc: Exception) -> CellError:
    return _file_error(f"the workbook cannot be read ({type(exc).__name__}): save it again as .xlsx and retry")


def read_upload(data: bytes, expected: SheetIdentity, max_scores: Mapping[int, Decimal] | None = None) -> Upload:
    """Parse and validate an uploaded workbook; see :func:`parse_upload`."""
    problem = _check_archive(data)
    if problem is not None:
        return Upload([], [problem], fatal=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wb = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception as exc:  # openpyxl raises many types for a damaged workbook
        return Upload([], [_unreadable(exc)], fatal=True)
    try:
        return _read_workbook(wb, expected, max_scores or {})
    except Exception as exc:  # a damaged sheet fails while streaming
        return Upload([], [_unreadable(exc)], fatal=True)
    finally:
        wb.close()


def _read_workbook(wb: Any, expected: SheetIdentity, max_scores: Mapping[int, Decimal]) -> Upload:
    found, versions, why = _identity_of(wb, expected)
    if found is None:
        return Upload([], [_file_error(why)], fatal=True)
    sheets = [name for name in wb.sheetnames if name != IDENTITY_SHEET]
    if not sheets:
        return Upload([], [_file_error("the workbook has no mark sheet")], fatal=True)
    ws = wb[SHEET_TITLE] if SHEET_TITLE in sheets else wb[sheets[0]]
    header: dict[str, Any] = {}
    rows_of_header = {row: name for name, (row, _) in HEADER_FIELDS.items()}
    value_index = column_index_from_string("D") - 1
    for number, values in enumerate(ws.iter_rows(min_row=1, max_row=HEADER_ROW - 1, values_only=True), start=1):
        if number in rows_of_header and len(values) > value_index:
            header[rows_of_header[number]] = values[value_index]
    mismatch = _mismatch(found, expected, header)
    if mismatch is not None:
        return Upload([], [mismatch], fatal=True)
    titles = next(iter(ws.iter_rows(min_row=HEADER_ROW, max_row=HEADER_ROW, values_only=True)), ())
    errors: list[CellError] = []
    for column, label in ((CODE_COLUMN, CODE_LABEL), *((MARK_COLUMNS[p], MARK_LABELS[p]) for p in MARK_COLUMNS)):
        index = column_index_from_string(column) - 1
        value = titles[index] if index < len(titles) else None
        if str(value or "").strip() != label:
            message = (
                f"the header of column {column} should read “{label}”: columns or rows were moved, added or "
                "deleted; keep the template's layout (pupils from row 18)"
            )
            errors.append(CellError(HEADER_ROW, column, f"{column}{HEADER_ROW}", _shown(value), message))
    if errors:
        return Upload([], errors, found, versions, fatal=True)
    rows: list[ParsedRow] = []
    first_seen: dict[str, int] = {}
    code_index = column_index_from_string(CODE_COLUMN) - 1
    name_index = column_index_from_string(NAME_COLUMN) - 1
    for number, values in enumerate(ws.iter_rows(min_row=FIRST_ROW, values_only=True), start=FIRST_ROW):
        if all(_empty(v) for v in values):
            continue
        if len(rows) >= MAX_ROWS:
            message = f"more than {MAX_ROWS} pupil rows: this is not one class's mark sheet"
            return Upload([], [_file_error(message)], found, versions, fatal=True)
        parsed, row_errors = _read_row(number, values, code_index, name_index, max_scores)
        errors.extend(row_errors)
        if parsed.code:
            if parsed.code in first_seen:
                message = f"the pupil appears twice: duplicate of row {first_seen[parsed.code]}"
                errors.append(CellError(number, CODE_COLUMN, f"{CODE_COLUMN}{number}", parsed.code, message))
            else:
                first_seen[parsed.code] = number
        rows.append(parsed)
    return Upload(rows, sort_errors(errors), found, versions)


def _read_row(
    number: int, values: tuple[Any, ...], code_index: int, name_index: int, max_scores: Mapping[int, Decimal]
) -> tuple[ParsedRow, list[CellError]]:
    errors: list[CellError] = []

    def fail(column: str, value: Any, message: str) -> None:
        errors.append(CellError(number, column, f"{column}{number}", _shown(value), message))

    raw_code = values[code_index] if code_index < len(values) else None
    code = ""
    marks: dict[int, CellMark] = {}
    for position, column in MARK_COLUMNS.items():
        index = column_index_from_string(column) - 1
        value = values[index] if index < len(values) else None
        mark = read_mark(value, max_scores.get(position, Decimal(20)))
        if isinstance(mark, str):
            fail(column, value, mark)
            marks[position] = BLANK
        else:
            marks[position] = mark
    if _empty(raw_code):
        fail(CODE_COLUMN, raw_code, "the pupil code is missing: every row needs its pupil's code")
    else:
        try:
            code = school.normalise_pupil_code(str(raw_code))
        except ValueError as exc:
            fail(CODE_COLUMN, raw_code, str(exc))
    for index, value in enumerate(values):
        column = get_column_letter(index + 1)
        if column not in KNOWN_COLUMNS and not _empty(value):
            fail(
                column,
                value,
                f"nothing is read from column {column}: marks go in columns G, I and K (Contrôle 1, 2, 3)",
            )
    raw_name = values[name_index] if name_index < len(values) else None
    return ParsedRow(number, code, "" if raw_name is None else str(raw_name).strip(), marks), errors


def sort_errors(errors: list[CellError]) -> list[CellError]:
    """By row, then column."""
    return sorted(errors, key=lambda e: (e.row, len(e.column), e.column))


def parse_upload(
    data: bytes, expected: SheetIdentity, max_scores: Mapping[int, Decimal] | None = None
) -> tuple[list[ParsedRow], list[CellError]]:
    """Parse an uploaded workbook and report every bad cell; pure.

    ``expected`` is the sheet the file must belong to (its ``secret`` checks the signature);
    ``max_scores`` gives the maximum of each position's assessment (20 when not given). A file that
    is not an xlsx workbook, lacks or alters its identity, or belongs to another class, subject,
    semester or teacher gives one error and no rows. Otherwise every pupil row comes back (a bad
    cell reads blank) with every error; a file may be applied only when the error list is empty.
    """
    parsed = read_upload(data, expected, max_scores)
    return parsed.rows, parsed.errors


# -- the database side (inside the caller's scoped transaction) -------------------------------
