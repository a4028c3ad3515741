"""The rows of onboarding files — pure, no database: header names, checks of each row, error codes.

* :func:`map_header` maps the header row onto a kind's canonical columns (accepting French names,
  case- and accent-insensitively), reporting missing and doubled columns.
* ``check_school``, ``check_staff`` and ``check_student`` validate one data row cell by cell and
  return the typed row (a failed cell left empty) with *every* error of the row. A pupil row is
  checked by :func:`core.school.pupil_rows.check_pupil`, the check a director's import uses too.

Errors are :class:`CellError`: the 1-based line (the header is line 1; 0 for the file as a whole),
the column, the offending value, an English message, and a stable ``code`` with the ``params``
formatted into the message: pages translate ``MESSAGES[code]`` (a msgid) with those values.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Literal

import msgspec

from core.school import pupil_rows
from core.school.pupil_rows import (
    FILE,
    NAME_MAX,
    PUPIL_COLUMNS,
    CellError,
    Cells,
    GuardianCell,
    check_pupil,
    fold,
    header_key,
    problem_maker,
)
from core.school.pupil_rows import PupilRow as StudentRow
from core.school.rules import STAFF_NUMBER_RE
from core.tenancy import SLUG_RE

__all__ = [
    "COLUMNS",
    "FILE",
    "KINDS",
    "MESSAGES",
    "REQUIRED",
    "CellError",
    "GuardianCell",
    "SchoolRow",
    "StaffRow",
    "StudentRow",
    "check_school",
    "check_staff",
    "check_student",
    "map_header",
    "problem",
    "slug_for",
    "translated",
]

Kind = Literal["schools", "staff", "students"]
KINDS: tuple[str, ...] = ("schools", "staff", "students")
ADDRESS_MAX = 300
SCHOOL_CODE_RE = re.compile(r"^[0-9A-Z]{4,12}$")

#: Canonical column → accepted header names, per kind (see :func:`header_key` for the folding).
COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "schools": {
        "code": ("code", "school_code", "code_etablissement", "code_ecole", "code_gresa"),
        "name_ar": ("name_ar", "nom_ar", "arabic_name", "nom_arabe"),
        "name_fr": ("name_fr", "nom_fr", "nom", "name", "nom_francais"),
        "name_en": ("name_en", "nom_en", "english_name"),
        "cycle": ("cycle", "type", "niveau"),
        "province": ("province", "direction", "direction_provinciale", "province_code"),
        "address": ("address", "adresse"),
        "slug": ("slug", "identifiant"),
    },
    "staff": {
        "school": ("school", "school_code", "ecole", "etablissement", "code_etablissement"),
        "email": ("email", "e_mail", "courriel"),
        "full_name": ("full_name", "nom_complet", "name", "nom"),
        "full_name_ar": ("full_name_ar", "nom_complet_ar", "nom_ar"),
        "role": ("role", "fonction"),
        "staff_number": ("staff_number", "matricule", "ppr", "numero_de_somme", "som"),
        "locale": ("locale", "langue", "language"),
    },
    "students": PUPIL_COLUMNS,
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "schools": ("code", "name_ar", "name_fr", "cycle", "province"),
    "staff": ("school", "email", "full_name", "role"),
    "students": ("school", "national_code", "last_name", "first_name"),
}
CYCLES = {
    "primaire": "primaire",
    "primary": "primaire",
    "ecole": "primaire",
    "ابتدائي": "primaire",
    "college": "college",
    "middle": "college",
    "secondaire_collegial": "college",
    "اعدادي": "college",
    "lycee": "lycee",
    "high": "lycee",
    "secondaire_qualifiant": "lycee",
    "ثانوي": "lycee",
}
STAFF_ROLES = {
    "teacher": "teacher",
    "enseignant": "teacher",
    "enseignante": "teacher",
    "professeur": "teacher",
    "director": "school_director",
    "school_director": "school_director",
    "directeur": "school_director",
    "directrice": "school_director",
}

#: Every error's code → its message id (English, with ``{named}`` values); pages translate it.
MESSAGES: dict[str, str] = {
    **pupil_rows.MESSAGES,
    "bad_xlsx": "this zip archive is not a readable XLSX workbook",
    "xlsx_too_big": "the workbook unpacks to more than {limit} MiB: save it as “CSV UTF-8” or split it",
    "xlsx_packed": "the workbook is packed suspiciously tightly ({name}): it was not opened",
    "too_large": "the file is larger than {limit} MiB: split it",
    "school_code": "a school code is 4 to 12 letters or digits",
    "cycle": "must be primaire, collège or lycée",
    "slug": "lower-case letters, digits and dashes, 1–80 characters",
    "role": "must be teacher or director (enseignant, directeur)",
    "staff_number": "a national staff number is 5 to 10 digits",
    "staff_number_required": "required for a teacher",
    "locale": "must be ar, fr or en",
    "same_slug": "the same slug as row {first}",
    "same_number": "the same number as row {first}",
    "slug_taken": "this slug is taken: give another one",
    "province_foreign": "this province belongs to another region",
    "province_unknown": "no such province in this region",
    "school_code_foreign": "a school of another region has this code",
    "school_differs": "this school exists with other details: {fields}",
    "school_foreign": "the school {school} belongs to another region",
    "school_unknown": "no school {school} (by code or slug) in this region",
    "no_class": "no class of this name in the school for {year}",
    "enrolled_elsewhere": "already enrolled at another school ({school})",
    "pupil_differs": "already registered in this school with other details",
    "pupil_other_region": "already registered in another region",
    "guardian_name_required": "required for a guardian not yet known to the region (a new one, or one from elsewhere)",
    "number_taken": "this staff number belongs to someone else",
    "other_number": "this person already has another staff number",
    "commit_failed": "nothing was written: the import failed unexpectedly; try again or contact support",
    "preview_failed": "the file could not be checked: try again or contact support",
}

#: An error with its code and values (the English message is formatted from :data:`MESSAGES`).
problem = problem_maker(MESSAGES)


def translated(error: CellError) -> str:
    """The error's message in the current request's language."""
    from core.i18n import gettext_

    msgid = MESSAGES.get(error.code)
    return gettext_(msgid, **error.params) if msgid else error.message


def map_header(kind: str, line: int, header: list[str]) -> tuple[dict[str, int], list[CellError]]:
    """Column positions of a kind's canonical columns, and the header's errors."""
    return pupil_rows.map_header(COLUMNS[kind], REQUIRED[kind], line, header)


class SchoolRow(msgspec.Struct, frozen=True, kw_only=True):
    """A school of a schools file."""

    line: int
    code: str
    name_ar: str
    name_fr: str
    name_en: str
    cycle: str
    province: str
    address: str
    slug: str


class StaffRow(msgspec.Struct, frozen=True, kw_only=True):
    """A staff member of a staff file."""

    line: int
    school: str
    email: str
    full_name: str
    full_name_ar: str
    role: str
    staff_number: str
    locale: str


def slug_for(name_fr: str, code: str) -> str:
    """A school's default slug: its French name and code, ASCII, dashed (``lycee-al-farabi-14105x``)."""
    words = re.sub(r"[^0-9a-z]+", "-", fold(name_fr)).strip("-")
    base = f"{words[:60].strip('-')}-{code.lower()}".strip("-")
    return base[:80].strip("-")


def check_school(line: int, cells: list[str], columns: dict[str, int]) -> tuple[SchoolRow, list[CellError]]:
    """Validate one row of a schools file."""
    c = Cells(line, cells, columns, problem)
    code = c.get("code").upper()
    if not code:
        c.fail("code", code, "required")
    elif not SCHOOL_CODE_RE.match(code):
        code = c.fail("code", c.get("code"), "school_code")
    name_ar = c.text("name_ar", 200, required=True)
    name_fr = c.text("name_fr", 200, required=True)
    name_en = c.text("name_en", 200)
    raw_cycle = c.get("cycle")
    cycle = CYCLES.get(header_key(raw_cycle), "")
    if not raw_cycle:
        c.fail("cycle", raw_cycle, "required")
    elif not cycle:
        c.fail("cycle", raw_cycle, "cycle")
    province = c.text("province", 80, required=True)
    address = c.text("address", ADDRESS_MAX)
    slug = c.get("slug").lower()
    if slug and not SLUG_RE.match(slug):
        slug = c.fail("slug", c.get("slug"), "slug")
    if not slug and code and name_fr:
        slug = slug_for(name_fr, code)
    row = SchoolRow(
        line=line,
        code=code,
        name_ar=name_ar,
        name_fr=name_fr,
        name_en=name_en,
        cycle=cycle,
        province=province,
        address=address,
        slug=slug,
    )
    return row, c.errors


def check_staff(line: int, cells: list[str], columns: dict[str, int]) -> tuple[StaffRow, list[CellError]]:
    """Validate one row of a staff file."""
    c = Cells(line, cells, columns, problem)
    school = c.school()
    email = c.email("email", required=True)
    full_name = c.text("full_name", NAME_MAX * 2, required=True)
    full_name_ar = c.text("full_name_ar", NAME_MAX * 2)
    raw_role = c.get("role")
    role = STAFF_ROLES.get(header_key(raw_role), "")
    if not raw_role:
        c.fail("role", raw_role, "required")
    elif not role:
        c.fail("role", raw_role, "role")
    number = c.get("staff_number")
    if number and not STAFF_NUMBER_RE.match(number):
        number = c.fail("staff_number", number, "staff_number")
    elif role == "teacher" and not number and "staff_number" in columns:
        c.fail("staff_number", "", "staff_number_required")
    locale = c.get("locale").lower() or "fr"
    if locale not in ("ar", "fr", "en"):
        locale = c.fail("locale", c.get("locale"), "locale") or "fr"
    row = StaffRow(
        line=line,
        school=school,
        email=email,
        full_name=full_name,
        full_name_ar=full_name_ar,
        role=role,
        staff_number=number,
        locale=locale,
    )
    return row, c.errors


def check_student(
    line: int, cells: list[str], columns: dict[str, int], today: date
) -> tuple[StudentRow, list[CellError]]:
    """Validate one row of a pupils file (pupil, school and up to two guardians): the shared pupil check."""
    return check_pupil(line, cells, columns, today)
