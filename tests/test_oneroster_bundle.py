"""Reading bundles and the pure correspondences, away from HTTP and the database."""

from __future__ import annotations

import io
import zipfile

from core.school.rules import PUPIL_CODE_RE
from tenants.oneroster import mapping
from tenants.oneroster.bundle import MAX_MEMBERS, read_bundle
from tenants.oneroster.exporter import pack
from tenants.oneroster.spec import MANIFEST_FILES, SPECS_11, SPECS_12
from tests.test_oneroster import edfi_files, minimal_files, replace, unzip, zip_files


def test_levels_and_ceds_grades_correspond_both_ways() -> None:
    assert mapping.level_of(["09"]) == "3AC"
    assert mapping.level_of(["9"]) == "3AC"
    assert mapping.level_of(["KG", "10"]) == "TC"
    assert mapping.level_of(["2bac"]) == "2BAC"
    assert mapping.level_of(["KG", "13", "PS"]) is None
    for level, grade in mapping.LEVEL_GRADES.items():
        assert mapping.level_of([grade]) == level


def test_provisional_codes_are_pupil_codes_stable_per_source() -> None:
    code = mapping.provisional_code(7, "604863")
    assert PUPIL_CODE_RE.match(code) and code.startswith("X")
    assert code == mapping.provisional_code(7, "604863")
    assert code != mapping.provisional_code(8, "604863") != mapping.provisional_code(7, "604863", 1)


def test_identifiers_names_and_slugs() -> None:
    assert mapping.pupil_code("", ["{Local:863}", "{Massar:j130012345}"]) == "J130012345"
    assert mapping.pupil_code("K123456789", []) == "K123456789"
    assert mapping.pupil_code("863", ["{Local:863}"]) is None
    assert mapping.split_name("Fatima Zahra Amrani") == ("Fatima", "Zahra Amrani")
    assert mapping.slugify("Lycée Grand Bend — ISD") == "lycee-grand-bend-isd"
    assert mapping.subject_code("Algèbre I / 9e") == "ALGEBRE-I-9E"
    assert mapping.year_label("2027") == "2026-2027" and mapping.ended_year("2026-2027") == "2027"


def test_the_11_and_12_headers_follow_the_sheet() -> None:
    assert SPECS_12["users"].header[3:5] == ("enabledUser", "username")
    assert len(SPECS_12["users"].header) == 22
    assert SPECS_11["users"].header[3:6] == ("enabledUser", "orgSourcedIds", "role")
    assert "roles" not in SPECS_11
    assert SPECS_11["lineItems"].header[9] == "gradingPeriodSourcedId"
    assert SPECS_11["results"].header[-1] == "comment"


def test_the_edfi_bundle_needs_the_tolerant_mode() -> None:
    data = zip_files(edfi_files())
    bundle, issues = read_bundle(data)
    assert bundle is not None and bundle.version == "1.1"
    assert {k: len(v) for k, v in bundle.rows.items()} == {
        "orgs": 2,
        "academicSessions": 3,
        "courses": 2,
        "classes": 2,
        "users": 10,
        "enrollments": 24,
        "demographics": 8,
    }
    assert all(i.severity == "warning" for i in issues)
    strict, problems = read_bundle(data, tolerant=False)
    assert strict is None
    assert [(p.file, p.row) for p in problems if p.severity == "error"] == [("users.csv", 10), ("users.csv", 11)]


def test_a_bom_and_a_single_folder_are_accepted() -> None:
    files = minimal_files()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(f"export-2026/{name}", b"\xef\xbb\xbf" + text.encode("utf-8"))
    bundle, issues = read_bundle(buffer.getvalue())
    assert bundle is not None, issues
    assert len(bundle.rows["users"]) == 4


def test_structural_refusals() -> None:
    files = minimal_files()
    many = {**files, **{f"x{n}.csv": "a\n" for n in range(MAX_MEMBERS)}}
    assert "at most" in read_bundle(zip_files(many))[1][0].message
    utf16 = {**files, "orgs.csv": files["orgs.csv"].encode("utf-16")}
    assert any("UTF-16" in i.message for i in read_bundle(zip_files(utf16))[1])
    quoted = replace(files, "orgs.csv", "Direction Test", '"Direction "Test')
    assert any(i.file == "orgs.csv" and "not a valid CSV" in i.message for i in read_bundle(zip_files(quoted))[1])
    cells = replace(files, "roles.csv", "r1,,,u-t1,primary,teacher,,,school-1,", "r1,,,u-t1,primary,teacher,school-1")
    assert any("cells where the header has" in i.message for i in read_bundle(zip_files(cells))[1])
    filled = replace(files, "orgs.csv", "dist-1,,,", "dist-1,active,2026-01-01T00:00:00.000Z,")
    bundle, issues = read_bundle(zip_files(filled))
    assert bundle is not None and any(i.severity == "warning" and "bulk mode" in i.message for i in issues)
    assert read_bundle(zip_files(filled), tolerant=False)[0] is None
    missing_row = replace(files, "manifest.csv", "file.scoreScales,absent\n", "")
    bundle, issues = read_bundle(zip_files(missing_row))
    assert bundle is not None and any(i.column == "file.scoreScales" and "read as absent" in i.message for i in issues)


def test_the_export_package_lists_every_manifest_row_and_spec_headers() -> None:
    data = pack({"orgs": [{"sourcedId": "a", "name": "A", "type": "school"}]})
    files = unzip(data)
    manifest = {r["propertyName"]: r["value"] for r in files["manifest"]}
    assert [k.removeprefix("file.") for k in manifest if k.startswith("file.")] == list(MANIFEST_FILES)
    assert manifest["file.orgs"] == "bulk" and manifest["file.users"] == "absent"
    header = list(files["orgs"][0].keys())
    assert tuple(header[:7]) == SPECS_12["orgs"].header and header[7:] == ["metadata.nameAr", "metadata.nameEn"]
    bundle, issues = read_bundle(data)
    assert bundle is not None, issues


def test_a_version_mismatch_between_manifest_and_users_is_named() -> None:
    files = edfi_files()
    manifest = files["manifest.csv"].replace(b"oneroster.version,1.1", b"oneroster.version,1.2")
    relabelled = {**files, "manifest.csv": manifest.replace(b"manifest.version,1\n", b"manifest.version,1.0\n")}
    bundle, issues = read_bundle(zip_files(relabelled))
    assert bundle is None
    users = [i for i in issues if i.file == "users.csv" and i.severity == "error"]
    assert users and "must say oneroster.version 1.1" in users[0].message
    files12 = minimal_files()
    relabelled = replace(files12, "manifest.csv", "oneroster.version,1.2", "oneroster.version,1.1")
    relabelled = replace(relabelled, "manifest.csv", "file.lineItemLearningObjectiveIds,absent\n", "")
    bundle, issues = read_bundle(zip_files(relabelled))
    assert bundle is None
    assert any("unknown file roles for OneRoster 1.1" in i.message for i in issues)


def test_every_report_message_has_french_and_arabic_translations() -> None:
    """The report page shows issues in the reader's language: every message template is in the catalogues."""
    import ast
    from pathlib import Path

    from babel.messages.pofile import read_po

    root = Path(__file__).parent.parent
    templates: set[str] = set()
    package = root / "tenants" / "oneroster"
    for path in (package / "bundle.py", package / "importer.py", *sorted((package / "importing").glob("*.py"))):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "tr" and node.args:
                if isinstance(node.args[0], ast.Constant):
                    templates.add(node.args[0].value)
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "template" for t in node.targets
            ):
                values = [node.value.body, node.value.orelse] if isinstance(node.value, ast.IfExp) else [node.value]
                templates |= {v.value for v in values if isinstance(v, ast.Constant)}
    assert len(templates) > 90
    for lang in ("fr", "ar"):
        path = root / "admin_ui" / "locale" / lang / "LC_MESSAGES" / "exchange.po"
        with path.open("rb") as handle:
            catalogue = read_po(handle)
        missing = [t for t in templates if not (catalogue.get(t) and catalogue.get(t).string)]
        assert not missing, (lang, missing[:5])
