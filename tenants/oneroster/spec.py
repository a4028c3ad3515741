"""The OneRoster CSV binding as data: files, header rows, required columns, vocabularies, references.

Source: docs/oneroster-csv.md (OneRoster 1.2.1 CSV binding, with the 1.1 header rows seen in real files).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from core.csv_cells import formula_start

COMMON = ("sourcedId", "status", "dateLastModified")
MODES = ("absent", "bulk", "delta")
SOURCED_ID_RE = re.compile(r"^[0-9A-Za-z._/@-]{1,255}$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
YEAR_RE = re.compile(r"^\d{4}$")
#: Manifest rows every package carries (``file.*`` rows are listed in :data:`MANIFEST_FILES`).
MANIFEST_HEADER = ("propertyName", "value")
#: What an export says it left out (e.g. marks where the grades module is off); read back without a warning.
MANIFEST_NOTE = "source.note"
MANIFEST_OPTIONAL = ("source.systemName", "source.systemCode", MANIFEST_NOTE)
#: Every ``file.*`` row of a 1.2 manifest, in the order the export writes them.
MANIFEST_FILES = (
    "academicSessions",
    "categories",
    "classes",
    "classResources",
    "courses",
    "courseResources",
    "demographics",
    "enrollments",
    "lineItemLearningObjectiveIds",
    "lineItems",
    "lineItemScoreScales",
    "orgs",
    "resources",
    "resultLearningObjectiveIds",
    "results",
    "resultScoreScales",
    "roles",
    "scoreScales",
    "userProfiles",
    "userResources",
    "users",
)
#: Files that exist only in 1.2 (a 1.1 manifest has no row for them).
ONLY_12 = frozenset(
    {
        "lineItemLearningObjectiveIds",
        "lineItemScoreScales",
        "resultLearningObjectiveIds",
        "resultScoreScales",
        "roles",
        "scoreScales",
        "userProfiles",
        "userResources",
    }
)
#: Files whose content madrasa has no place for: read for their presence only, then ignored with a warning.
IGNORED = frozenset(
    {
        "resources",
        "classResources",
        "courseResources",
        "userResources",
        "userProfiles",
        "scoreScales",
        "lineItemScoreScales",
        "resultScoreScales",
        "lineItemLearningObjectiveIds",
        "resultLearningObjectiveIds",
    }
)
#: Gradebook files, written to and read from the grades module when it is on for the school.
GRADEBOOK = frozenset({"categories", "lineItems", "results"})


@dataclass(frozen=True)
class FileSpec:
    """One data file: its header row and the rules of its cells."""

    name: str
    header: tuple[str, ...]
    required: frozenset[str]
    #: column → allowed values, and whether ``ext:`` extensions are allowed
    vocab: dict[str, tuple[frozenset[str], bool]] = field(default_factory=dict)
    dates: frozenset[str] = frozenset()
    years: frozenset[str] = frozenset()
    booleans: frozenset[str] = frozenset()
    lists: frozenset[str] = frozenset()
    numbers: frozenset[str] = frozenset()
    #: column → file its values name (a list column names one per item)
    refs: dict[str, str] = field(default_factory=dict)
    #: columns accepted anywhere among the spec columns and ignored (legacy variants)
    tolerated: frozenset[str] = frozenset()


def _v(*values: str, ext: bool = True) -> tuple[frozenset[str], bool]:
    return frozenset(values), ext


ORG_TYPES = _v("department", "school", "district", "local", "state", "national")
SESSION_TYPES = _v("gradingPeriod", "semester", "schoolYear", "term")
CLASS_TYPES = _v("homeroom", "scheduled")
ROLE_TYPES = _v("primary", "secondary", ext=False)
ROLES = _v(
    "aide",
    "counselor",
    "districtAdministrator",
    "guardian",
    "parent",
    "principal",
    "proctor",
    "relative",
    "siteAdministrator",
    "student",
    "systemAdministrator",
    "teacher",
)
ROLES_11 = _v("administrator", "aide", "guardian", "parent", "proctor", "relative", "student", "teacher")
ENROLMENT_ROLES = _v("administrator", "proctor", "student", "teacher")
SEXES = _v("male", "female", "unspecified", "other")
SCORE_STATUSES = _v("exempt", "fully graded", "not submitted", "partially graded", "submitted")
RACE = frozenset(
    {
        "americanIndianOrAlaskaNative",
        "asian",
        "blackOrAfricanAmerican",
        "nativeHawaiianOrOtherPacificIslander",
        "white",
        "demographicRaceTwoOrMoreRaces",
        "hispanicOrLatinoEthnicity",
    }
)

USERS_12 = (
    *COMMON,
    "enabledUser",
    "username",
    "userIds",
    "givenName",
    "familyName",
    "middleName",
    "identifier",
    "email",
    "sms",
    "phone",
    "agentSourcedIds",
    "grades",
    "password",
    "userMasterIdentifier",
    "preferredGivenName",
    "preferredMiddleName",
    "preferredFamilyName",
    "primaryOrgSourcedId",
    "pronouns",
)
USERS_11 = (
    *COMMON,
    "enabledUser",
    "orgSourcedIds",
    "role",
    "username",
    "userIds",
    "givenName",
    "familyName",
    "middleName",
    "identifier",
    "email",
    "sms",
    "phone",
    "agentSourcedIds",
    "grades",
    "password",
)

SPECS_12: dict[str, FileSpec] = {
    "orgs": FileSpec(
        "orgs",
        (*COMMON, "name", "type", "identifier", "parentSourcedId"),
        frozenset({"sourcedId", "name", "type"}),
        vocab={"type": ORG_TYPES},
        refs={"parentSourcedId": "orgs"},
    ),
    "academicSessions": FileSpec(
        "academicSessions",
        (*COMMON, "title", "type", "startDate", "endDate", "parentSourcedId", "schoolYear"),
        frozenset({"sourcedId", "title", "type", "startDate", "endDate", "schoolYear"}),
        vocab={"type": SESSION_TYPES},
        dates=frozenset({"startDate", "endDate"}),
        years=frozenset({"schoolYear"}),
        refs={"parentSourcedId": "academicSessions"},
    ),
    "courses": FileSpec(
        "courses",
        (*COMMON, "schoolYearSourcedId", "title", "courseCode", "grades", "orgSourcedId", "subjects", "subjectCodes"),
        frozenset({"sourcedId", "title", "orgSourcedId"}),
        lists=frozenset({"grades", "subjects", "subjectCodes"}),
        refs={"schoolYearSourcedId": "academicSessions", "orgSourcedId": "orgs"},
    ),
    "classes": FileSpec(
        "classes",
        (
            *COMMON,
            "title",
            "grades",
            "courseSourcedId",
            "classCode",
            "classType",
            "location",
            "schoolSourcedId",
            "termSourcedIds",
            "subjects",
            "subjectCodes",
            "periods",
        ),
        frozenset({"sourcedId", "title", "courseSourcedId", "classType", "schoolSourcedId", "termSourcedIds"}),
        vocab={"classType": CLASS_TYPES},
        lists=frozenset({"grades", "termSourcedIds", "subjects", "subjectCodes", "periods"}),
        refs={"courseSourcedId": "courses", "schoolSourcedId": "orgs", "termSourcedIds": "academicSessions"},
    ),
    "users": FileSpec(
        "users",
        USERS_12,
        frozenset({"sourcedId", "enabledUser", "username", "givenName", "familyName"}),
        booleans=frozenset({"enabledUser"}),
        lists=frozenset({"userIds", "agentSourcedIds", "grades"}),
        refs={"agentSourcedIds": "users", "primaryOrgSourcedId": "orgs"},
        tolerated=frozenset({"resourceSourcedIds"}),
    ),
    "roles": FileSpec(
        "roles",
        (
            *COMMON,
            "userSourcedId",
            "roleType",
            "role",
            "beginDate",
            "endDate",
            "orgSourcedId",
            "userProfileSourcedId",
        ),
        frozenset({"sourcedId", "userSourcedId", "roleType", "role", "orgSourcedId"}),
        vocab={"roleType": ROLE_TYPES, "role": ROLES},
        dates=frozenset({"beginDate", "endDate"}),
        refs={"userSourcedId": "users", "orgSourcedId": "orgs"},
    ),
    "enrollments": FileSpec(
        "enrollments",
        (*COMMON, "classSourcedId", "schoolSourcedId", "userSourcedId", "role", "primary", "beginDate", "endDate"),
        frozenset({"sourcedId", "classSourcedId", "schoolSourcedId", "userSourcedId", "role"}),
        vocab={"role": ENROLMENT_ROLES},
        dates=frozenset({"beginDate", "endDate"}),
        booleans=frozenset({"primary"}),
        refs={"classSourcedId": "classes", "schoolSourcedId": "orgs", "userSourcedId": "users"},
    ),
    "demographics": FileSpec(
        "demographics",
        (
            *COMMON,
            "birthDate",
            "sex",
            "americanIndianOrAlaskaNative",
            "asian",
            "blackOrAfricanAmerican",
            "nativeHawaiianOrOtherPacificIslander",
            "white",
            "demographicRaceTwoOrMoreRaces",
            "hispanicOrLatinoEthnicity",
            "countryOfBirthCode",
            "stateOfBirthAbbreviation",
            "cityOfBirth",
            "publicSchoolResidenceStatus",
        ),
        frozenset({"sourcedId"}),
        vocab={"sex": SEXES},
        dates=frozenset({"birthDate"}),
        booleans=RACE,
        refs={"sourcedId": "users"},
    ),
    "categories": FileSpec(
        "categories",
        (*COMMON, "title", "weight"),
        frozenset({"sourcedId", "title"}),
        numbers=frozenset({"weight"}),
    ),
    "lineItems": FileSpec(
        "lineItems",
        (
            *COMMON,
            "title",
            "description",
            "assignDate",
            "dueDate",
            "classSourcedId",
            "categorySourcedId",
            "academicSessionSourcedId",
            "resultValueMin",
            "resultValueMax",
            "schoolSourcedId",
        ),
        frozenset(
            {
                "sourcedId",
                "title",
                "assignDate",
                "dueDate",
                "classSourcedId",
                "categorySourcedId",
                "academicSessionSourcedId",
                "schoolSourcedId",
            }
        ),
        dates=frozenset({"assignDate", "dueDate"}),
        numbers=frozenset({"resultValueMin", "resultValueMax"}),
        refs={
            "classSourcedId": "classes",
            "categorySourcedId": "categories",
            "academicSessionSourcedId": "academicSessions",
            "schoolSourcedId": "orgs",
        },
    ),
    "results": FileSpec(
        "results",
        (
            *COMMON,
            "lineItemSourcedId",
            "studentSourcedId",
            "scoreStatus",
            "score",
            "scoreDate",
            "comment",
            "textScore",
            "classSourcedId",
            "inProgress",
            "incomplete",
            "late",
            "missing",
        ),
        frozenset({"sourcedId", "lineItemSourcedId", "studentSourcedId", "scoreStatus", "scoreDate"}),
        vocab={"scoreStatus": SCORE_STATUSES},
        dates=frozenset({"scoreDate"}),
        numbers=frozenset({"score"}),
        booleans=frozenset({"inProgress", "incomplete", "late", "missing"}),
        refs={"lineItemSourcedId": "lineItems", "studentSourcedId": "users", "classSourcedId": "classes"},
    ),
}


def _specs_11() -> dict[str, FileSpec]:
    """The 1.1 differences: users carry orgs and role, gradebook files are shorter, no roles.csv."""
    specs = {name: spec for name, spec in SPECS_12.items() if name != "roles"}
    specs["users"] = FileSpec(
        "users",
        USERS_11,
        frozenset({"sourcedId", "enabledUser", "orgSourcedIds", "role", "username", "givenName", "familyName"}),
        vocab={"role": ROLES_11},
        booleans=frozenset({"enabledUser"}),
        lists=frozenset({"orgSourcedIds", "userIds", "agentSourcedIds", "grades"}),
        refs={"orgSourcedIds": "orgs", "agentSourcedIds": "users"},
    )
    specs["categories"] = FileSpec("categories", (*COMMON, "title"), frozenset({"sourcedId", "title"}))
    line = SPECS_12["lineItems"]
    specs["lineItems"] = FileSpec(
        "lineItems",
        tuple(c if c != "academicSessionSourcedId" else "gradingPeriodSourcedId" for c in line.header[:-1]),
        (line.required - {"academicSessionSourcedId", "schoolSourcedId"}) | {"gradingPeriodSourcedId"},
        dates=line.dates,
        numbers=line.numbers,
        refs={
            "classSourcedId": "classes",
            "categorySourcedId": "categories",
            "gradingPeriodSourcedId": "academicSessions",
        },
    )
    res = SPECS_12["results"]
    specs["results"] = FileSpec(
        "results",
        res.header[: res.header.index("comment") + 1],
        res.required,
        vocab=res.vocab,
        dates=res.dates,
        numbers=res.numbers,
        refs={"lineItemSourcedId": "lineItems", "studentSourcedId": "users"},
    )
    return specs


SPECS_11 = _specs_11()
#: Files this importer reads, in dependency order.
READ_ORDER = (
    "orgs",
    "academicSessions",
    "courses",
    "classes",
    "users",
    "roles",
    "enrollments",
    "demographics",
    "categories",
    "lineItems",
    "results",
)

#: Free-text columns (names, titles, comments) per file; ``metadata.*`` columns are free text too. A cell
#: of one of them starting with ``=``, ``+``, ``-``, ``@`` (or a tab or carriage return) is refused at import,
#: because a spreadsheet opening the file would run it as a formula; the export neutralises such cells.
#: sourcedIds, codes, dates, vocabularies and e-mail addresses are identifiers and pass untouched.
FREE_TEXT: dict[str, frozenset[str]] = {
    "orgs": frozenset({"name"}),
    "academicSessions": frozenset({"title"}),
    "courses": frozenset({"title", "subjects"}),
    "classes": frozenset({"title", "location", "subjects"}),
    "users": frozenset(
        {
            "givenName",
            "familyName",
            "middleName",
            "preferredGivenName",
            "preferredMiddleName",
            "preferredFamilyName",
            "pronouns",
        }
    ),
    "demographics": frozenset({"cityOfBirth"}),
    "categories": frozenset({"title"}),
    "lineItems": frozenset({"title", "description"}),
    "results": frozenset({"comment", "textScore"}),
}
#: Columns the export fills with free text although the binding calls them codes (a class's ``classCode`` is
#: its name in madrasa): neutralised on export like free text; not read on import.
EXPORTED_AS_TEXT: dict[str, frozenset[str]] = {"classes": frozenset({"classCode"})}


#: Extension columns that name a sourcedId, not text.
#: (``metadata.agentRelations`` pairs sourcedIds with a fixed vocabulary: ``guardianSourcedId=mother,…``.)
REFERENCE_EXTENSIONS = frozenset({"metadata.homeroomClass", "metadata.agentRelations"})


def free_text(name: str, column: str) -> bool:
    """Whether a column of a file holds free text (a name, a title, a comment, an extension value)."""
    if column.startswith("metadata."):
        return column not in REFERENCE_EXTENSIONS
    return column in FREE_TEXT.get(name, frozenset())


def csv_safe(value: str) -> str:
    """The cell a spreadsheet shows as text: a formula-like value gets a leading apostrophe."""
    return "'" + value if formula_start(value.lstrip(" ")) else value
