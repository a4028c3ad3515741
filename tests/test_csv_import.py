"""CSV import of pupils and guardians: the pure parser, then the all-or-nothing HTTP import on both backends."""

from __future__ import annotations

import secrets
from datetime import date

import pytest

from core.school import csv_import
from core.school.csv_import import parse_students_csv
from core.school.pupil_rows import MAX_ROWS
from core.sql import SQL, in_

TODAY = date(2026, 1, 15)
HOME = "lycee-ibn-batouta"
FOREIGN = "lycee-moulay-youssef"  # another region
DIRECTOR = f"director.{HOME}@test.ma"
PATH = "/api/v1/school/import/students"
HEADER = "code_massar;nom;prenom;date_naissance;sexe;classe;tuteur_email;tuteur_nom;lien"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def code() -> str:
    """A pupil code unlikely to collide with any other test's."""
    return f"K{secrets.randbelow(10**9):09d}"


def born(age: int = 15) -> str:
    """A birth date (DD/MM/YYYY) for a pupil of about ``age``."""
    return f"14/03/{date.today().year - age}"


def csv_bytes(*lines: str, header: str = HEADER) -> bytes:
    return ("\r\n".join([header, *lines]) + "\r\n").encode()


def where(errors) -> set[tuple[int, str]]:
    return {(e.row, e.column) for e in errors}


# -- the pure parser ----------------------------------------------------------------------------


def test_bom_semicolons_and_french_headers():
    data = (
        "\ufeffCode Massar;Nom;Prénom;Nom_AR;Prenom_ar;Date de naissance;Sexe;Classe;Tuteur_Email;Tuteur_nom;Lien\r\n"
        "k123456789;Alaoui;Sara;العلوي;سارة;12/05/2010;f;TC-1;Parent@Example.MA;Mme Alaoui;Mère\r\n"
    ).encode()
    rows, errors = parse_students_csv(data, today=TODAY)
    assert errors == []
    [row] = rows
    assert row.row == 2
    assert row.national_code == "K123456789"
    assert (row.last_name, row.first_name, row.last_name_ar, row.first_name_ar) == ("Alaoui", "Sara", "العلوي", "سارة")
    assert row.birth_date == date(2010, 5, 12)
    assert row.gender == "F"
    assert row.class_name == "TC-1"
    assert row.guardian_email == "parent@example.ma"
    assert row.guardian_relation == "mother"


def test_commas_english_headers_quotes_and_blank_lines():
    data = (
        b"National_Code,Last_Name,First_Name,Birth_Date,Gender,Class,Guardian_Email,Guardian_Name\n"
        b"\n"
        b'A000000001,"Ben Ali, junior",Omar,2011-09-01,M,TC-1,,\n'
        b",,,,,,,\n"
        b"A000000002,Idrissi,Nora,,,TC-1,p@x.ma,Parent\n"
    )
    rows, errors = parse_students_csv(data, today=TODAY)
    assert errors == []
    assert [r.row for r in rows] == [3, 5]  # line numbers in the file, blank lines counted but skipped
    assert rows[0].last_name == "Ben Ali, junior"
    assert rows[0].guardian_email == "" and rows[0].guardian_relation == ""
    assert rows[1].birth_date is None
    assert rows[1].guardian_relation == "guardian"  # the default when a guardian is given


def test_every_error_is_reported_with_row_and_column():
    data = csv_bytes(
        "K000000001;Alaoui;Sara;12/05/2010;F;TC-1;;;",  # good
        "X12;;Ali;2010.05.12;Z;;not-an-email;;oncle",
        "K000000003;Bennani;;31/02/2010;M;TC-1;;;",
        "K000000004;Tazi;Amine;01/01/2025;M;TC-1;;Mme Tazi;",  # aged 1, guardian name without e-mail
        "K000000005;" + "N" * 101 + ";Ok;1990-01-01;F;TC-1;;;",
    )
    rows, errors = parse_students_csv(data, today=TODAY)
    assert where(errors) == {
        (3, "national_code"),
        (3, "last_name"),
        (3, "birth_date"),
        (3, "gender"),
        (3, "class"),
        (3, "guardian_email"),
        (3, "guardian_relation"),
        (4, "first_name"),
        (4, "birth_date"),
        (5, "birth_date"),
        (5, "guardian_email"),
        (6, "last_name"),
        (6, "birth_date"),
    }
    by_key = {(e.row, e.column): e for e in errors}
    assert "pupil code" in by_key[3, "national_code"].message
    assert by_key[3, "birth_date"].value == "2010.05.12"
    assert "no such day" in by_key[4, "birth_date"].message
    assert "implausible" in by_key[5, "birth_date"].message
    assert [e.row for e in errors] == sorted(e.row for e in errors)
    assert len(rows) == 5  # every data row comes back; only an error-free file may be imported


def test_missing_required_column_is_one_error_and_no_rows():
    data = b"code_massar;nom;prenom;sexe\nK000000001;Alaoui;Sara;F\n"
    rows, errors = parse_students_csv(data, today=TODAY)
    assert rows == []
    assert len(errors) == 1
    assert (errors[0].row, errors[0].column) == (1, "class")
    assert "classe" in errors[0].message


def test_a_column_given_twice_is_refused():
    data = b"code_massar;national_code;nom;prenom;classe\nK000000001;K000000001;A;B;TC-1\n"
    rows, errors = parse_students_csv(data, today=TODAY)
    assert rows == [] and where(errors) == {(1, "national_code")}


def test_latin1_is_refused_with_one_clear_error():
    data = "code_massar;nom;prénom;classe\nK000000001;Amrani;Hélène;TC-1\n".encode("latin-1")
    rows, errors = parse_students_csv(data, today=TODAY)
    assert rows == []
    assert len(errors) == 1
    assert (errors[0].row, errors[0].column) == (0, "file")
    assert "UTF-8" in errors[0].message


def test_utf16_is_refused():
    rows, errors = parse_students_csv("code_massar;nom;prenom;classe\n".encode("utf-16"), today=TODAY)
    assert rows == [] and [(e.row, e.column) for e in errors] == [(0, "file")]


def test_too_many_rows_is_one_error():
    lines = [f"K{n:09d};Nom;Prenom;;;TC-1;;;" for n in range(MAX_ROWS + 1)]
    rows, errors = parse_students_csv(csv_bytes(*lines), today=TODAY)
    assert rows == []
    assert len(errors) == 1 and errors[0].column == "file"
    assert str(MAX_ROWS) in errors[0].message


def test_duplicates_in_the_file_are_errors_after_the_first():
    data = csv_bytes(
        "K000000001;A;B;;;TC-1;;;",
        "K000000002;C;D;;;TC-1;;;",
        "k000000001;E;F;;;TC-1;;;",
        " K000000001 ;G;H;;;TC-1;;;",
    )
    rows, errors = parse_students_csv(data, today=TODAY)
    assert where(errors) == {(4, "national_code"), (5, "national_code")}
    assert all("row 2" in e.message for e in errors)
    assert [r.national_code for r in rows] == ["K000000001", "K000000002", "K000000001", "K000000001"]


def test_empty_file_and_header_only_are_errors():
    assert where(parse_students_csv(b"", today=TODAY)[1]) == {(0, "file")}
    assert where(parse_students_csv(HEADER.encode() + b"\n", today=TODAY)[1]) == {(0, "file")}


# -- over HTTP, on SQLite and PostgreSQL --------------------------------------------------------


async def upload(world, data: bytes, *, as_: str = DIRECTOR, dry_run: str | None = None, content_type="text/csv"):
    kwargs = {"files": {"file": ("eleves.csv", data, content_type)}}
    if dry_run is not None:
        kwargs["data"] = {"dry_run": dry_run}
    return await world.api("POST", PATH, as_=as_, tenant=HOME, **kwargs)


async def students(world) -> int:
    return await world.sql("SELECT COUNT(*) FROM student")


async def registered(world, *codes: str) -> int:
    return await world.sql(SQL("SELECT COUNT(*) FROM student WHERE national_code IN {}", in_(codes)))


async def test_good_file_is_imported_into_the_class(world):
    codes = [code(), code(), code()]
    data = csv_bytes(
        f"{codes[0]};Alaoui;Sara;{born()};F;TEST-1;;;",
        f"{codes[1]};Bennani;Omar;{born(16)};M;TEST-1;;;",
        f"{codes[2].lower()};Chraibi;Nora;;;test-1;;;",
    )
    response = await upload(world, data)
    assert response.status_code == 201, response.text
    assert response.json() == {
        "ok": True,
        "rows": 3,
        "errors": [],
        "created": 3,
        "guardians_linked": 0,
        "guardians_invited": 0,
        "dry_run": False,
    }
    class_id = world.objects[HOME]["class_id"]
    enrolled = await world.sql(
        "SELECT COUNT(*) FROM enrolment e JOIN student s ON s.id = e.student_id "
        "WHERE s.national_code IN ({}, {}, {}) AND e.class_id = {} AND e.ends_on IS NULL AND s.school_id = {}",
        *codes,
        class_id,
        world.ids[HOME],
    )
    assert enrolled == 3
    classes = await world.api("GET", "/api/v1/school/classes", as_=DIRECTOR, tenant=HOME)
    assert {c["name"] for c in classes.json()} >= {"TEST-1"}


async def test_bad_rows_write_nothing_and_every_bad_row_is_reported(world):
    taken = code()
    created = await world.api(
        "POST",
        "/api/v1/school/students",
        as_=f"director.{FOREIGN}@test.ma",
        tenant=FOREIGN,
        json={"national_code": taken, "first_name": "Elsewhere", "last_name": "Pupil"},
    )
    assert created.status_code == 201, created.text
    good = [code(), code()]
    guardian = f"parent.{good[0].lower()}@test.ma"
    data = csv_bytes(
        f"{good[0]};Alaoui;Sara;{born()};F;TEST-1;{guardian};Mme Alaoui;mère",
        "12345;Bennani;Omar;;M;TEST-1;;;",
        f"{code()};Chraibi;Nora;2010.05.12;F;TEST-1;;;",
        f"{code()};Daoudi;Ali;;M;NO-SUCH-CLASS;;;",
        f"{taken};Elfassi;Rim;;F;TEST-1;;;",
        f"{good[1]};Fassi;Yasmine;;F;TEST-1;;;",
    )
    before = await students(world)
    response = await upload(world, data)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["ok"] is False and body["rows"] == 6
    found = {(e["row"], e["column"]) for e in body["errors"]}
    assert found == {(3, "national_code"), (4, "birth_date"), (5, "class"), (6, "national_code")}
    messages = {(e["row"], e["column"]): e["message"] for e in body["errors"]}
    assert "already registered (in this or another school)" in messages[6, "national_code"]
    assert "NO-SUCH-CLASS" in messages[5, "class"]
    # the good rows were not written either
    assert await students(world) == before
    assert await registered(world, *good) == 0
    assert await world.sql("SELECT COUNT(*) FROM person WHERE email = {}", guardian) == 0


async def test_dry_run_validates_and_writes_nothing(world):
    codes = [code(), code()]
    data = csv_bytes(*(f"{c};Nom;Prenom;{born()};F;TEST-1;;;" for c in codes))
    before = await students(world)
    response = await upload(world, data, dry_run="true")
    assert response.status_code == 200, response.text
    assert response.json()["ok"] is True and response.json()["dry_run"] is True
    assert response.json()["rows"] == 2 and response.json()["created"] == 0
    assert await students(world) == before
    bad = await upload(world, csv_bytes(f"{codes[0]};Nom;Prenom;;X;TEST-1;;;"), dry_run="true")
    assert bad.status_code == 422 and {e["column"] for e in bad.json()["errors"]} == {"gender"}


async def test_oversized_file_is_413(world):
    before = await students(world)
    too_big = HEADER.encode() + b"\n" + b"a" * world.settings.max_upload_bytes
    response = await upload(world, too_big)
    assert response.status_code == 413
    assert await students(world) == before


async def test_png_declared_as_csv_is_415(world):
    response = await upload(world, PNG, content_type="text/csv")
    assert response.status_code == 415, response.text


async def test_a_teacher_cannot_import(world):
    before = await students(world)
    data = csv_bytes(f"{code()};Nom;Prenom;;;TEST-1;;;")
    response = await upload(world, data, as_=f"teacher.{HOME}@test.ma")
    assert response.status_code == 403
    assert await students(world) == before


def mails_to(world, email: str) -> list:
    return [m for m in world.services.mailer.sent if m.to == email]


async def accept_all(world, email: str) -> None:
    for mail in mails_to(world, email):
        token = mail.link.rsplit("/", 1)[-1]
        accepted = await world.api("POST", "/api/v1/guardian-invitations/accept", json={"token": token})
        assert accepted.status_code == 200, accepted.text


async def test_one_guardian_email_on_two_rows_is_one_person(world):
    """A new address is invited (one mail per pupil, after the commit); accepting makes one person of it."""
    codes = [code(), code()]
    guardian = f"parent.{codes[0].lower()}@test.ma"
    data = csv_bytes(
        f"{codes[0]};Alaoui;Sara;{born()};F;TEST-1;{guardian};Mme Alaoui;mère",
        f"{codes[1]};Alaoui;Adam;{born(12)};M;TEST-1;{guardian.upper()};;mere",
    )
    response = await upload(world, data)
    assert response.status_code == 201, response.text
    assert (response.json()["guardians_linked"], response.json()["guardians_invited"]) == (0, 2)
    assert await world.sql("SELECT COUNT(*) FROM person WHERE email = {}", guardian) == 0
    assert len(mails_to(world, guardian)) == 2
    await accept_all(world, guardian)
    assert await world.sql("SELECT COUNT(*) FROM person WHERE email = {}", guardian) == 1
    children = await world.sql(
        "SELECT COUNT(DISTINCT g.student_id) FROM guardianship g JOIN person p ON p.id = g.person_id "
        "WHERE p.email = {} AND g.relation = 'mother'",
        guardian,
    )
    assert children == 2


async def test_an_account_elsewhere_is_invited_not_linked(world):
    """Another region's teacher named in the file gets an invitation, no parent role and no pupil until it accepts;
    the report reads the same as for a new address."""
    teacher = await world.add_person(f"csv.far.{secrets.token_hex(3)}@test.ma", "teacher", FOREIGN)
    pupil = code()
    data = csv_bytes(f"{pupil};Alaoui;Sara;{born()};F;TEST-1;{teacher};Mme Alaoui;mère")
    response = await upload(world, data)
    assert response.status_code == 201, response.text
    assert (response.json()["guardians_linked"], response.json()["guardians_invited"]) == (0, 1)
    assert "id" not in str(response.json()["errors"])
    guardianships = "SELECT COUNT(*) FROM guardianship g JOIN person p ON p.id = g.person_id WHERE p.email = {}"
    parent_roles = (
        "SELECT COUNT(*) FROM membership m JOIN person p ON p.id = m.person_id WHERE p.email = {} AND m.role = 'parent'"
    )
    assert await world.sql(guardianships, teacher) == 0
    assert await world.sql(parent_roles, teacher) == 0
    await accept_all(world, teacher)
    assert await world.sql(guardianships, teacher) == 1
    assert await world.sql(parent_roles, teacher) == 1


async def test_a_guardian_known_to_the_school_is_linked_at_once(world):
    """A parent of another pupil of the school is within its reach: linked at once, no mail."""
    first, second = code(), code()
    guardian = f"known.{first.lower()}@test.ma"
    await upload(world, csv_bytes(f"{first};Alaoui;Sara;{born()};F;TEST-1;{guardian};Mme Alaoui;mère"))
    await accept_all(world, guardian)
    sent = len(mails_to(world, guardian))
    response = await upload(world, csv_bytes(f"{second};Alaoui;Adam;{born(12)};M;TEST-1;{guardian};;mère"))
    assert response.status_code == 201, response.text
    assert (response.json()["guardians_linked"], response.json()["guardians_invited"]) == (1, 0)
    assert len(mails_to(world, guardian)) == sent
    children = await world.sql(
        "SELECT COUNT(*) FROM guardianship g JOIN person p ON p.id = g.person_id WHERE p.email = {}", guardian
    )
    assert children == 2


async def test_a_refused_import_invites_nobody(world):
    guardian = f"rolled.{secrets.token_hex(3)}@test.ma"
    data = csv_bytes(f"{code()};Alaoui;Sara;{born()};F;TEST-1;{guardian};Mme Alaoui;mère", "12345;Bad;Code;;;TEST-1;;;")
    response = await upload(world, data)
    assert response.status_code == 422
    assert mails_to(world, guardian) == []
    assert await world.sql("SELECT COUNT(*) FROM guardian_invitation WHERE email = {}", guardian) == 0


async def test_a_new_guardian_needs_a_name(world):
    data = csv_bytes(f"{code()};Nom;Prenom;;;TEST-1;nobody.{secrets.token_hex(4)}@test.ma;;")
    response = await upload(world, data)
    assert response.status_code == 422
    assert {(e["row"], e["column"]) for e in response.json()["errors"]} == {(2, "guardian_name")}


async def test_a_nameless_guardian_reads_the_same_whether_or_not_the_address_has_an_account(world):
    """An account elsewhere is "not yet known to the school" like a new address: the check tells nothing."""
    teacher = await world.add_person(f"csv.nameless.{secrets.token_hex(3)}@test.ma", "teacher", FOREIGN)
    answers = []
    for email in (teacher, f"nobody.{secrets.token_hex(4)}@test.ma"):
        response = await upload(world, csv_bytes(f"{code()};Nom;Prenom;;;TEST-1;{email};;"), dry_run="true")
        assert response.status_code == 422
        answers.append([(e["row"], e["column"], e["message"]) for e in response.json()["errors"]])
    assert answers[0] == answers[1]


async def test_a_failure_while_writing_rolls_everything_back(world, monkeypatch):
    """A code registered between the check and the insert (simulated): 409, and no row of the file stays."""
    fresh = code()
    checks = csv_import.check_staged_pupils

    async def blind_to_taken_codes(db, scope, errors, year, how, reach):
        differs = await checks(db, scope, errors, year, how, reach)
        errors.listed = [e for e in errors.listed if e.code != "code_taken"]
        return differs

    monkeypatch.setattr(csv_import, "check_staged_pupils", blind_to_taken_codes)
    seeded = await world.sql("SELECT national_code FROM student WHERE id = {}", world.objects[HOME]["student_id"])
    data = csv_bytes(f"{fresh};Nom;Prenom;;;TEST-1;;;", f"{seeded};Deja;Inscrit;;;TEST-1;;;")
    before = await students(world)
    response = await upload(world, data)
    assert response.status_code == 409, response.text
    assert "Nothing was imported" in response.json()["detail"]
    assert await students(world) == before
    assert await registered(world, fresh) == 0


@pytest.mark.parametrize("value", ["maybe", "2"])
async def test_bad_dry_run_flag_is_400(world, value):
    response = await upload(world, csv_bytes(f"{code()};Nom;Prenom;;;TEST-1;;;"), dry_run=value)
    assert response.status_code == 400
