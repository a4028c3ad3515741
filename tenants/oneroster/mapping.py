"""Pure correspondences between OneRoster vocabularies and madrasa's: grades and levels, org types and tenant
kinds, sex and gender, names, identifiers."""

from __future__ import annotations

import hashlib
import re
import unicodedata

from core.school.rules import PUPIL_CODE_RE

#: Our levels and the CEDS grade codes OneRoster uses (year of schooling after kindergarten).
LEVEL_GRADES: dict[str, str] = {
    "1AP": "01",
    "2AP": "02",
    "3AP": "03",
    "4AP": "04",
    "5AP": "05",
    "6AP": "06",
    "1AC": "07",
    "2AC": "08",
    "3AC": "09",
    "TC": "10",
    "1BAC": "11",
    "2BAC": "12",
}
GRADE_LEVELS: dict[str, str] = {grade: level for level, grade in LEVEL_GRADES.items()}
#: Tenant kinds and OneRoster org types (both directions; ``local`` is read as a district).
KIND_TYPES = {"platform": "national", "region": "state", "province": "district", "school": "school"}
TYPE_KINDS = {
    "national": "platform",
    "state": "region",
    "district": "province",
    "local": "province",
    "school": "school",
}
SEX_GENDER = {"male": "M", "female": "F"}
GENDER_SEX = {"M": "male", "F": "female"}
#: OneRoster roles and the membership they give (``None``: a guardian link, handled apart).
ROLE_MEMBERSHIPS: dict[str, str | None] = {
    "teacher": "teacher",
    "student": "student",
    "principal": "school_director",
    "guardian": None,
    "parent": None,
    "relative": None,
}
GUARDIAN_ROLES = frozenset({"guardian", "parent", "relative"})
PUPIL_ID_TYPES = frozenset({"massar", "national_code", "nationalcode", "pupil"})


def level_of(grades: list[str]) -> str | None:
    """The first of a list of grades that names one of our levels (CEDS ``09`` or our own code ``3AC``)."""
    for grade in grades:
        value = grade.strip()
        if value in GRADE_LEVELS:
            return GRADE_LEVELS[value]
        if value.isdigit() and value.zfill(2) in GRADE_LEVELS:
            return GRADE_LEVELS[value.zfill(2)]
        if value.upper() in LEVEL_GRADES:
            return value.upper()
    return None


def slugify(text: str, limit: int = 60) -> str:
    """A tenant slug from a name: ``Grand Bend ISD`` → ``grand-bend-isd``."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    ascii_text = "".join(c for c in folded if not unicodedata.combining(c) and ord(c) < 128)
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")[:limit].strip("-")
    return slug or "org"


def subject_code(text: str) -> str:
    """A subject code made from a course code: upper-case letters, digits and dashes, at most 16."""
    folded = unicodedata.normalize("NFKD", text.upper())
    code = re.sub(r"[^A-Z0-9-]+", "-", "".join(c for c in folded if ord(c) < 128)).strip("-")
    return code[:16].strip("-") or "SUBJ"


def pupil_code(identifier: str, user_ids: list[str]) -> str | None:
    """The national pupil code a user carries: ``identifier``, or a ``{Massar:…}`` entry of ``userIds``."""
    for entry in user_ids:
        kind, _, value = entry.strip("{}").partition(":")
        if kind.strip().casefold() in PUPIL_ID_TYPES and PUPIL_CODE_RE.match(value.strip().upper()):
            return value.strip().upper()
    if PUPIL_CODE_RE.match(identifier.strip().upper()):
        return identifier.strip().upper()
    return None


def provisional_code(anchor: int, sourced_id: str, attempt: int = 0) -> str:
    """A provisional pupil code (``X`` and nine digits) for a pupil imported without one; stable per source."""
    digest = hashlib.sha256(f"{anchor}:{sourced_id}:{attempt}".encode()).hexdigest()
    return "X" + str(int(digest, 16) % 10**9).zfill(9)


def full_name(given: str, middle: str, family: str) -> str:
    """``given middle family`` without doubled spaces."""
    return " ".join(part for part in (given, middle, family) if part)


def split_name(name: str) -> tuple[str, str]:
    """A full name as (given name, family name): the first word, then the rest."""
    parts = name.split()
    if not parts:
        return "", ""
    if len(parts) == 1:
        return parts[0], parts[0]
    return parts[0], " ".join(parts[1:])


def year_label(school_year: str) -> str:
    """Our school-year label from a OneRoster ``schoolYear`` (the year it ends): ``2027`` → ``2026-2027``."""
    end = int(school_year)
    return f"{end - 1}-{end}"


def ended_year(label: str) -> str:
    """The OneRoster ``schoolYear`` of one of our labels: ``2026-2027`` → ``2027``."""
    return label.split("-")[-1]
