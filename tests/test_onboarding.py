"""Onboarding a region from files: preview, all-or-nothing commit, idempotent re-runs, boundaries, invitations."""

from __future__ import annotations

import csv
import email
import io
import re
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from openpyxl import Workbook

from core.jobs import InProcessQueue
from core.sql import SQL, ident
from tenants import onboarding, onboarding_batches, onboarding_files
from tests.conftest import link_guardian, new_client

FIXTURES = Path(__file__).parent / "fixtures" / "onboarding"
REGION = "casablanca-settat"
ADMIN = "region.casa@madrasa.demo"
FOREIGN_SCHOOL_CODE = "42103C"  # lycee-moulay-youssef, the other region
PLATFORM_ADMIN = "admin@madrasa.demo"
# Onboarding writes schools, pupils, families and staff: it does so in provinces and schools of its own
# (in the home region), so the demo's schools and accounts stay as the other tests expect them.
PROVINCE_A = ("onb-anfa", "149")  # (slug, code)
PROVINCE_B = ("onb-settat", "519")
HOME_SCHOOL = "lycee-onboarding"
HOME_SCHOOL_CODE = "14199Y"
SECOND_SCHOOL = "college-onboarding"
SECOND_SCHOOL_CODE = "51199Z"
#: Pupil codes of this module start with a letter the generator never uses, one per backend.
LETTERS = {"sqlite": "X", "postgres": "Y"}


def letter(world) -> str:
    """The first letter of this module's pupil codes on the world's backend."""
    return LETTERS[world.backend]


def own_guardian(world) -> str:
    """The guardian of the pupil seeded in the module's own school."""
    return f"guardian.{letter(world).lower()}@onboarding.test.ma"


async def own_nodes(world) -> None:
    """Two provinces and two schools of onboarding's own, the first with class TEST-1 and a pupil with a guardian.

    Made once per world, through the tenants and school APIs.
    """
    if HOME_SCHOOL in world.ids:
        return
    nodes = [
        {"parent": REGION, "kind": "province", "slug": PROVINCE_A[0], "code": PROVINCE_A[1], "name_fr": "Onb Anfa"},
        {"parent": REGION, "kind": "province", "slug": PROVINCE_B[0], "code": PROVINCE_B[1], "name_fr": "Onb Settat"},
        {
            "parent": PROVINCE_A[0],
            "kind": "school",
            "slug": HOME_SCHOOL,
            "code": HOME_SCHOOL_CODE,
            "name_fr": "Lycée Onboarding",
            "name_ar": "ثانوية الإدماج",
        },
        {
            "parent": PROVINCE_B[0],
            "kind": "school",
            "slug": SECOND_SCHOOL,
            "code": SECOND_SCHOOL_CODE,
            "name_fr": "Collège Onboarding",
            "name_ar": "إعدادية الإدماج",
        },
    ]
    for body in nodes:
        response = await world.api("POST", "/api/v1/tenants", as_=PLATFORM_ADMIN, tenant="platform", json=body)
        assert response.status_code == 201, response.text
        world.ids[body["slug"]] = int(await world.sql("SELECT id FROM tenant WHERE slug = {}", body["slug"]))
    director = await world.add_person(f"director.{HOME_SCHOOL}@test.ma", "school_director", HOME_SCHOOL)

    async def post(path: str, body: dict) -> int:
        response = await world.api("POST", path, as_=director, tenant=HOME_SCHOOL, json=body)
        assert response.status_code in (200, 201), f"{path}: {response.text}"
        return int(response.json()["id"])

    class_id = await post("/api/v1/school/classes", {"name": "TEST-1", "level_code": "TC", "track_code": "TCS"})
    student_id = await post(
        "/api/v1/school/students",
        {
            "national_code": f"{letter(world)}000000001",
            "first_name": "Pupil1",
            "last_name": "Test",
            "first_name_ar": "تلميذ",
            "last_name_ar": "اختبار",
            "class_id": class_id,
        },
    )
    await link_guardian(world, HOME_SCHOOL, student_id, own_guardian(world), "G")
    world.objects[HOME_SCHOOL] = {"class_id": class_id, "student_id": student_id}


@pytest.fixture(autouse=True)
async def _own_nodes(world) -> None:
    await own_nodes(world)


def schools_file() -> bytes:
    """The schools fixture, in onboarding's own provinces (by slug for the first row, by code for the others)."""
    text = (FIXTURES / "schools.csv").read_text(encoding="utf-8")
    text = text.replace(";casablanca-anfa;", f";{PROVINCE_A[0]};").replace(";511;", f";{PROVINCE_B[1]};")
    return text.replace(";141;", f";{PROVINCE_A[1]};").encode("utf-8")


def upload(world, kind: str, name: str, data: bytes, *, as_: str = ADMIN, tenant: str = REGION):
    return world.api(
        "POST",
        "/api/v1/onboarding/batches",
        as_=as_,
        tenant=tenant,
        data={"kind": kind},
        files={"file": (name, data, "text/csv")},
    )


def commit(world, batch_id: str, *, as_: str = ADMIN, tenant: str = REGION):
    return world.api("POST", f"/api/v1/onboarding/batches/{batch_id}/commit", as_=as_, tenant=tenant)


def errors_of(body: dict) -> set[tuple[int, str]]:
    return {(e["row"], e["column"]) for e in body["report"]["errors"]}


IN_HOME_SCHOOL = "SELECT COUNT(*) FROM student WHERE school_id = {} AND national_code LIKE {}"


async def count(world, sql: str, *args) -> int:
    return int(await world.sql(sql, *args))


# -- schools ---------------------------------------------------------------------------------------


async def test_schools_file_preview_commit_and_rerun(world):
    data = schools_file()
    before = await count(world, "SELECT COUNT(*) FROM tenant")
    response = await upload(world, "schools", "schools.csv", data)
    assert response.status_code == 201, response.text
    batch = response.json()
    assert batch["status"] == "ready" and batch["rows"] == 3
    assert batch["report"]["created"] == {"schools": 3}
    assert [r["status"] for r in batch["report"]["sample"]] == ["new", "new", "new"]
    assert await count(world, "SELECT COUNT(*) FROM tenant") == before  # a preview writes nothing

    done = await commit(world, batch["id"])
    assert done.status_code == 200, done.text
    assert done.json()["batch"]["status"] == "committed"
    assert await count(world, "SELECT COUNT(*) FROM tenant") == before + 3
    farabi = await world.services.tenants.by_slug("lycee-al-farabi-14190k")
    assert farabi is not None and farabi.kind == "school" and farabi.code == "14190K"
    assert farabi.parent_id == world.ids[PROVINCE_A[0]]
    assert farabi.name_ar == "ثانوية الفارابي"
    settat = await world.sql("SELECT parent_id FROM tenant WHERE code = '51190L'")
    assert settat == world.ids[PROVINCE_B[0]]  # province given by its code
    nour = await world.sql("SELECT parent_id FROM tenant WHERE code = '14191M'")
    assert nour == world.ids[PROVINCE_A[0]]
    assert await world.sql("SELECT cycle FROM school_profile WHERE school_id = {}", farabi.id) == "lycee"

    again = await commit(world, batch["id"])
    assert again.status_code == 409  # a batch commits once

    rerun = await upload(world, "schools", "schools.csv", data)
    assert rerun.status_code == 201
    assert rerun.json()["report"]["unchanged"] == 3 and rerun.json()["report"]["created"] == {"schools": 0}
    assert {r["status"] for r in rerun.json()["report"]["sample"]} == {"unchanged"}
    assert (await commit(world, rerun.json()["id"])).status_code == 200
    assert await count(world, "SELECT COUNT(*) FROM tenant") == before + 3


async def test_bad_schools_file_lists_every_error_and_writes_nothing(world):
    before = await count(world, "SELECT COUNT(*) FROM tenant")
    response = await upload(world, "schools", "bad.csv", (FIXTURES / "schools_bad.csv").read_bytes())
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["status"] == "invalid"
    assert {
        (3, "code"),  # duplicate of row 2
        (4, "name_ar"),  # missing
        (4, "cycle"),  # not a cycle
        (5, "province"),  # unknown
        (6, "province"),  # another region's
    } <= errors_of(body)
    messages = {(e["row"], e["column"]): e["message"] for e in body["report"]["errors"]}
    assert "duplicate of row 2" in messages[(3, "code")]
    assert "another region" in messages[(6, "province")]
    assert body["error_count"] == len(body["report"]["errors"]) == 5
    assert await count(world, "SELECT COUNT(*) FROM tenant") == before
    assert (await commit(world, body["id"])).status_code == 409


async def test_one_school_at_a_time(world):
    body = {
        "code": "51195S",
        "name_ar": "مدرسة الأمل",
        "name_fr": "École Al Amal Settat",
        "cycle": "primaire",
        "province": PROVINCE_B[0],
        "address": "Settat",
    }
    response = await world.api("POST", "/api/v1/onboarding/schools", as_=ADMIN, tenant=REGION, json=body)
    assert response.status_code == 201, response.text
    assert await world.sql("SELECT COUNT(*) FROM tenant WHERE code = '51195S'") == 1
    same = await world.api("POST", "/api/v1/onboarding/schools", as_=ADMIN, tenant=REGION, json=body)
    assert same.status_code == 200 and same.json()["unchanged"] == 1
    changed = await world.api(
        "POST", "/api/v1/onboarding/schools", as_=ADMIN, tenant=REGION, json={**body, "name_fr": "Autre nom"}
    )
    assert changed.status_code == 422 and "name_fr" in changed.json()["errors"][0]["message"]
    foreign = await world.api(
        "POST",
        "/api/v1/onboarding/schools",
        as_=ADMIN,
        tenant=REGION,
        json={**body, "code": "42195T", "province": "rabat"},
    )
    assert foreign.status_code == 422
    assert await world.sql("SELECT COUNT(*) FROM tenant WHERE code = '42195T'") == 0


# -- malformed files -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"%PDF-1.4\n%%EOF\n", "not a CSV or XLSX"),
        ("code,nom\n1,é\n".encode("utf-16"), "UTF-16"),
        (b"code,name_fr\n\xe9t\xe9,x\n", "not UTF-8"),
        (b"PK\x03\x04garbage-not-a-workbook", "not a readable XLSX"),
        (b"", "empty"),
    ],
)
async def test_malformed_files_are_refused_with_a_report(world, data, expected):
    response = await upload(world, "schools", "x.csv", data)
    assert response.status_code == 422, response.text
    errors = response.json()["report"]["errors"]
    assert errors and errors[0]["column"] == "file" and expected in errors[0]["message"]


async def test_wrong_headers_name_the_missing_columns(world):
    response = await upload(world, "students", "x.csv", b"foo,bar\n1,2\n")
    assert response.status_code == 422
    missing = {e["column"] for e in response.json()["report"]["errors"] if "required column" in e["message"]}
    assert missing == {"school", "national_code", "last_name", "first_name"}


async def test_unknown_kind_and_oversize(world, monkeypatch):
    bad_kind = await upload(world, "martians", "x.csv", b"a\n1\n")
    assert bad_kind.status_code == 400 and bad_kind.json()["errors"][0]["field"] == "kind"
    # Onboarding has its own cap: a file above the general upload limit is read (here: one giant cell).
    general = world.settings.max_upload_bytes
    assert world.settings.onboarding_max_bytes > general
    big = b"code,name_ar,name_fr,cycle,province\n" + b"x" * (general + 10)
    response = await upload(world, "schools", "big.csv", big)
    assert response.status_code == 422, response.text
    assert response.json()["report"]["errors"][0]["code"] == "bad_csv"
    batches = await count(world, "SELECT COUNT(*) FROM onboarding_batch")
    monkeypatch.setattr(world.services, "settings", msgspec.structs.replace(world.settings, onboarding_max_bytes=4096))
    huge = b"code,name_ar,name_fr,cycle,province\n" + b"x" * 5000
    refused = await upload(world, "schools", "huge.csv", huge)
    assert refused.status_code == 413 and "split it" in refused.json()["detail"]
    assert await count(world, "SELECT COUNT(*) FROM onboarding_batch") == batches


async def test_a_body_over_the_configured_cap_is_refused_before_it_is_read(world, monkeypatch):
    """``settings.onboarding_max_bytes`` (``MADRASA_ONBOARDING_MAX_BYTES``) decides; the declared length is enough."""
    monkeypatch.setattr(world.services, "settings", msgspec.structs.replace(world.settings, onboarding_max_bytes=1000))
    batches = await count(world, "SELECT COUNT(*) FROM onboarding_batch")
    huge = b"code,name_ar,name_fr,cycle,province\n" + b"x" * (2 * 1024 * 1024)
    refused = await upload(world, "schools", "huge.csv", huge)
    assert refused.status_code == 413 and "split it" in refused.json()["detail"], refused.text
    assert await count(world, "SELECT COUNT(*) FROM onboarding_batch") == batches


# -- pupils and guardians --------------------------------------------------------------------------

HEADER = (
    "school;national_code;last_name;first_name;last_name_ar;first_name_ar;birth_date;gender;class;"
    "guardian1_email;guardian1_name;guardian1_relation;guardian2_email;guardian2_name;guardian2_relation\n"
)


def pupils_file(rows: list[str]) -> bytes:
    return (HEADER + "\n".join(rows) + "\n").encode()


async def test_pupils_with_errors_write_nothing_and_list_every_error(world):
    tag = letter(world)
    before = await count(world, "SELECT COUNT(*) FROM student")
    people = await count(world, "SELECT COUNT(*) FROM person")
    data = pupils_file(
        [
            f"{HOME_SCHOOL_CODE};{tag}100000001;Alami;Sara;;;2010-03-04;F;TEST-1;mere.{tag}1@test.ma;Mme Alami;mère;;;",
            f"{HOME_SCHOOL_CODE};{tag}100000001;Alami;Sara;;;2010-03-04;F;TEST-1;;;;;;",  # duplicate code
            f"{HOME_SCHOOL_CODE};S000000003;Vole;Code;;;;;;;;;;;",  # the foreign school's pupil
            f"{FOREIGN_SCHOOL_CODE};{tag}100000004;Ext;Erne;;;;;;;;;;;",  # a school of another region
            f"99999Z;{tag}100000005;Nul;Part;;;;;;;;;;;",  # no such school
            f"{HOME_SCHOOL_CODE};{tag}100000006;Bad;Date;;;2010-02-30;X;NOPE;;;;;;",  # date, gender, class
            f"{HOME_SCHOOL_CODE};{tag}100000007;New;Guardian;;;;;;ghost.{tag}@test.ma;;;;;",  # new guardian, no name
            f"{HOME_SCHOOL_CODE};12345;;;;;;;;not-an-email;;;;;",  # code, names, e-mail
        ]
    )
    response = await upload(world, "students", "pupils.csv", data)
    assert response.status_code == 422, response.text
    found = errors_of(response.json())
    assert {
        (3, "national_code"),
        (4, "national_code"),
        (5, "school"),
        (6, "school"),
        (7, "birth_date"),
        (7, "gender"),
        (7, "class"),
        (8, "guardian1_name"),
        (9, "national_code"),
        (9, "last_name"),
        (9, "first_name"),
        (9, "guardian1_email"),
    } <= found
    messages = {(e["row"], e["column"]): e["message"] for e in response.json()["report"]["errors"]}
    assert "duplicate of row 2" in messages[(3, "national_code")]
    assert "another region" in messages[(4, "national_code")]
    assert "another region" in messages[(5, "school")]
    assert await count(world, "SELECT COUNT(*) FROM student") == before
    assert await count(world, "SELECT COUNT(*) FROM person") == people


async def test_pupils_commit_then_rerun_creates_nothing(world):
    tag = letter(world)
    rows = [
        f"{HOME_SCHOOL_CODE};{tag}200000001;Alami;Sara;العلمي;سارة;2010-03-04;F;TEST-1;"
        f"mere.{tag}@test.ma;Mme Alami;mère;pere.{tag}@test.ma;M. Alami;père",
        f"{HOME_SCHOOL_CODE};{tag}200000002;Alami;Omar;;;04/05/2012;M;test-1;mere.{tag}@test.ma;;;;;",
        f"{HOME_SCHOOL};{tag}200000003;Bennis;Hiba;;;;F;;{own_guardian(world)};;tuteur;;;",
        f"{HOME_SCHOOL_CODE};{tag}000000001;Test;Pupil1;اختبار;تلميذ;;;TEST-1;;;;;;",  # already there, identical
    ]
    data = pupils_file(rows)
    before = await count(world, "SELECT COUNT(*) FROM student")
    response = await upload(world, "students", "pupils.csv", data)
    assert response.status_code == 201, response.text
    report = response.json()["report"]
    assert report["created"] == {
        "students": 3,
        "guardians": 2,
        "guardian_links": 4,
        "guardian_invitations": 0,
        "enrolments": 2,
    }
    assert report["unchanged"] == 1
    assert [r["status"] for r in report["sample"]] == ["new", "new", "new", "unchanged"]

    done = await commit(world, response.json()["id"])
    assert done.status_code == 200, done.text
    assert await count(world, "SELECT COUNT(*) FROM student") == before + 3
    sara = await world.sql("SELECT id FROM student WHERE national_code = {}", f"{tag}200000001")
    assert await count(world, "SELECT COUNT(*) FROM guardianship WHERE student_id = {}", sara) == 2
    klass = world.objects[HOME_SCHOOL]["class_id"]
    assert await world.sql("SELECT class_id FROM enrolment WHERE student_id = {} AND ends_on IS NULL", sara) == klass
    mother = await world.sql("SELECT id FROM person WHERE email = {}", f"mere.{tag.lower()}@test.ma")
    assert await count(world, "SELECT COUNT(*) FROM guardianship WHERE person_id = {}", mother) == 2  # one identity
    assert (
        await count(
            world,
            "SELECT COUNT(*) FROM membership WHERE person_id = {} AND role = 'parent' AND tenant_id = {}",
            mother,
            world.ids[HOME_SCHOOL],
        )
        == 1
    )
    counts = [
        await count(world, SQL("SELECT COUNT(*) FROM {}", ident(t)))
        for t in ("student", "person", "guardianship", "enrolment", "membership")
    ]

    again = await upload(world, "students", "pupils.csv", data)
    assert again.status_code == 201
    assert again.json()["report"]["unchanged"] == 4
    assert again.json()["report"]["created"] == {
        "students": 0,
        "guardians": 0,
        "guardian_links": 0,
        "guardian_invitations": 0,
        "enrolments": 0,
    }
    assert (await commit(world, again.json()["id"])).status_code == 200
    assert [
        await count(world, SQL("SELECT COUNT(*) FROM {}", ident(t)))
        for t in ("student", "person", "guardianship", "enrolment", "membership")
    ] == counts

    changed = await upload(world, "students", "pupils.csv", pupils_file([rows[0].replace(";Sara;", ";Sarah;")]))
    assert changed.status_code == 422
    assert "other details" in changed.json()["report"]["errors"][0]["message"]


async def test_an_account_of_another_region_is_invited_not_linked(world):
    """A guardian e-mail that has an account the region does not know: a mailed invitation, no link or role
    until it is accepted; the file must name it like a new guardian, and a re-run invites nobody twice."""
    tag = letter(world)
    far = await world.add_person(f"far.onboarding.{tag.lower()}@test.ma", "teacher", "lycee-moulay-youssef")
    nameless = pupils_file([f"{HOME_SCHOOL_CODE};{tag}870000001;Far;Kid;;;;F;TEST-1;{far};;père;;;"])
    refused = await upload(world, "students", "pupils.csv", nameless)
    assert refused.status_code == 422
    assert errors_of(refused.json()) == {(2, "guardian1_name")}

    data = pupils_file([f"{HOME_SCHOOL_CODE};{tag}870000001;Far;Kid;;;;F;TEST-1;{far};M. Far;père;;;"])
    response = await upload(world, "students", "pupils.csv", data)
    assert response.status_code == 201, response.text
    assert response.json()["report"]["created"] == {
        "students": 1,
        "guardians": 0,
        "guardian_links": 0,
        "guardian_invitations": 1,
        "enrolments": 1,
    }
    assert (await commit(world, response.json()["id"])).status_code == 200
    kid = await world.sql("SELECT id FROM student WHERE national_code = {}", f"{tag}870000001")
    parent_roles = (
        "SELECT COUNT(*) FROM membership m JOIN person p ON p.id = m.person_id WHERE p.email = {} AND m.role = 'parent'"
    )
    assert await count(world, "SELECT COUNT(*) FROM guardianship WHERE student_id = {}", kid) == 0
    assert await count(world, parent_roles, far) == 0
    mails = [m for m in world.services.mailer.sent if m.to == far]
    assert len(mails) == 1 and "/guardian-invitations/" in mails[0].link

    again = await upload(world, "students", "pupils.csv", data)
    assert again.json()["report"]["created"]["guardian_invitations"] == 0
    assert (await commit(world, again.json()["id"])).status_code == 200
    assert len([m for m in world.services.mailer.sent if m.to == far]) == 1

    token = mails[0].link.rsplit("/", 1)[-1]
    accepted = await world.api("POST", "/api/v1/guardian-invitations/accept", json={"token": token})
    assert accepted.status_code == 200, accepted.text
    assert await count(world, "SELECT COUNT(*) FROM guardianship WHERE student_id = {}", kid) == 1
    assert await count(world, parent_roles, far) == 1


async def test_pupils_from_xlsx(world):
    tag = letter(world)
    book = Workbook()
    sheet = book.active
    sheet.append(["École", "Code Massar", "Nom", "Prénom", "Date de naissance", "Classe"])
    sheet.append([HOME_SCHOOL_CODE, f"{tag}300000001", "Xl", "Sx", None, "TEST-1"])
    from datetime import datetime

    sheet.append([HOME_SCHOOL_CODE, f"{tag}300000002", "Xl", "Dt", datetime(2011, 6, 1), None])
    buffer = io.BytesIO()
    book.save(buffer)
    response = await world.api(
        "POST",
        "/api/v1/onboarding/batches",
        as_=ADMIN,
        tenant=REGION,
        data={"kind": "students"},
        files={"file": ("pupils.xlsx", buffer.getvalue(), "application/octet-stream")},
    )
    assert response.status_code == 201, response.text
    assert response.json()["file_format"] == "xlsx"
    assert (await commit(world, response.json()["id"])).status_code == 200
    born = await world.sql("SELECT birth_date FROM student WHERE national_code = {}", f"{tag}300000002")
    assert str(born) == "2011-06-01"


async def test_large_file_is_previewed_and_committed_in_jobs_with_progress(world):
    tag = letter(world)
    rows = [
        f"{HOME_SCHOOL_CODE};{tag}4{n:08d};Nom{n};Prenom{n};;;;;;fam{n // 2}.{tag}@job.test.ma;Parent {n // 2};;;;"
        for n in range(2500)
    ]
    queue = InProcessQueue(world.services, concurrency=1, recover=False)
    previous = world.services.jobs
    world.services.jobs = queue
    try:
        response = await upload(world, "students", "big.csv", pupils_file(rows))
        assert response.status_code == 202, response.text
        batch_id = response.json()["id"]
        assert response.json()["status"] == "validating" and response.json()["job_id"]
        # while the preview is queued: the page shows its progress, and the batch cannot be committed
        fragment = await world.api(
            "GET", f"/admin/onboarding/batches/{batch_id}/progress?lang=fr", as_=ADMIN, tenant=REGION
        )
        assert "Vérification du fichier…" in fragment.text and 'id="import-progress"' in fragment.text
        assert (await commit(world, batch_id)).status_code == 409
        await queue.start()
        checked = await queue.wait(response.json()["job_id"], seconds=120)
        assert checked.status == "done", checked.error
        preview = await world.api("GET", f"/api/v1/onboarding/batches/{batch_id}", as_=ADMIN, tenant=REGION)
        assert preview.json()["status"] == "ready" and preview.json()["rows"] == 2500
        assert preview.json()["report"]["created"]["students"] == 2500
        assert await count(world, IN_HOME_SCHOOL, world.ids[HOME_SCHOOL], f"{tag}4%") == 0
        if world.backend == "postgres":
            assert checked.total >= 2500  # progress was written while the preview ran

        started = await commit(world, batch_id)
        assert started.status_code == 202, started.text
        job_id = started.json()["job_id"]
        info = await queue.wait(job_id, seconds=120)
    finally:
        await queue.stop()
        world.services.jobs = previous
    assert info.status == "done", info.error
    job = await world.api("GET", f"/api/v1/jobs/{job_id}", as_=ADMIN, tenant=REGION)
    assert job.status_code == 200 and job.json()["percentage"] == 100
    if world.backend == "postgres":
        assert job.json()["total"] >= 2500  # progress was written while the commit ran
    batch = await world.api("GET", f"/api/v1/onboarding/batches/{batch_id}", as_=ADMIN, tenant=REGION)
    assert batch.json()["status"] == "committed"
    assert await count(world, IN_HOME_SCHOOL, world.ids[HOME_SCHOOL], f"{tag}4%") == 2500
    assert await count(world, "SELECT COUNT(*) FROM person WHERE email LIKE {}", f"%.{tag.lower()}@job.test.ma") == 1250


async def test_a_large_file_with_errors_is_previewed_in_a_job_and_lists_them(world):
    tag = letter(world)
    rows = [
        f"{HOME_SCHOOL_CODE};{tag}41{n:07d};Nom{n};Prenom{n};;;;{'Z' if n < 700 else ''};;;;;;;" for n in range(2100)
    ]
    queue = InProcessQueue(world.services, concurrency=1, recover=False)
    previous = world.services.jobs
    world.services.jobs = queue
    await queue.start()
    try:
        response = await upload(world, "students", "big-bad.csv", pupils_file(rows))
        assert response.status_code == 202, response.text
        info = await queue.wait(response.json()["job_id"], seconds=120)
    finally:
        await queue.stop()
        world.services.jobs = previous
    assert info.status == "done", info.error
    batch_id = response.json()["id"]
    batch = (await world.api("GET", f"/api/v1/onboarding/batches/{batch_id}", as_=ADMIN, tenant=REGION)).json()
    assert batch["status"] == "invalid" and batch["error_count"] == 700 and batch["rows"] == 2100
    assert len(batch["report"]["errors"]) == onboarding.MAX_LISTED_ERRORS
    listing = await world.api("GET", f"/api/v1/onboarding/batches/{batch_id}/errors.csv", as_=ADMIN, tenant=REGION)
    assert len(listing.content.decode("utf-8-sig").splitlines()) == 701
    assert (await commit(world, batch_id)).status_code == 409


# -- boundaries ------------------------------------------------------------------------------------


async def test_region_admin_cannot_act_on_another_region(world):
    data = (FIXTURES / "schools.csv").read_bytes()
    response = await upload(world, "schools", "s.csv", data, tenant="rabat-sale-kenitra")
    assert response.status_code == 403
    listing = await world.api("GET", "/api/v1/onboarding/batches", as_=ADMIN, tenant="rabat-sale-kenitra")
    assert listing.status_code == 403
    # a batch of the other region, named from home, is not found
    theirs = await upload(
        world, "schools", "s.csv", b"code\n", as_="region.rabat@madrasa.demo", tenant="rabat-sale-kenitra"
    )
    assert theirs.status_code == 422
    batch_id = theirs.json()["id"]
    assert (
        await world.api("GET", f"/api/v1/onboarding/batches/{batch_id}", as_=ADMIN, tenant=REGION)
    ).status_code == 404
    assert (await commit(world, batch_id)).status_code == 404
    # directors and teachers cannot onboard
    director = await upload(world, "schools", "s.csv", data, as_="director.lycee-ibn-batouta@test.ma")
    assert director.status_code == 403
    # inside a school rather than a region: not found
    inside = await upload(world, "schools", "s.csv", data, tenant="lycee-ibn-batouta")
    assert inside.status_code == 404


# -- staff and invitations -------------------------------------------------------------------------


def token_of(message: email.message.Message) -> str:
    body = message.get_payload(decode=True).decode()
    return re.search(r"Token: (\S+)", body).group(1)


async def test_director_invitation_is_single_use(world, inbox):
    address = f"new.director.{world.backend}@test.ma"
    response = await world.api(
        "POST",
        "/api/v1/onboarding/invitations",
        as_=ADMIN,
        tenant=REGION,
        json={"school": SECOND_SCHOOL, "email": address, "full_name": "Leila Haddad", "locale": "fr"},
    )
    assert response.status_code == 201, response.text
    assert len(inbox.messages) == 1 and inbox.messages[0]["To"] == address
    body = inbox.messages[0].get_payload(decode=True).decode()
    token = token_of(inbox.messages[0])
    assert f"/onboarding/invitations/{token}" in body
    client = new_client(world.app, ip="10.6.0.1")
    weak = await client.post("/api/v1/onboarding/invitations/accept", json={"token": token, "password": "short"})
    assert weak.status_code == 400 and weak.json()["errors"][0]["field"] == "password"
    ok = await client.post(
        "/api/v1/onboarding/invitations/accept", json={"token": token, "password": "director-pass-2026"}
    )
    assert ok.status_code == 200, ok.text
    again = await client.post(
        "/api/v1/onboarding/invitations/accept", json={"token": token, "password": "director-pass-2027"}
    )
    assert again.status_code == 400
    login = await client.post(
        "/api/v1/auth/token",
        json={"email": address, "password": "director-pass-2026", "tenant": SECOND_SCHOOL},
    )
    assert login.status_code == 200
    roles = (await client.get("/api/v1/me", headers={"authorization": f"Bearer {login.json()['access_token']}"})).json()
    assert {"role": "school_director", "tenant": SECOND_SCHOOL}.items() <= roles["memberships"][0].items()
    await client.aclose()


async def test_expired_invitation_and_foreign_school_are_refused(world, inbox):
    address = f"late.director.{world.backend}@test.ma"
    response = await world.api(
        "POST",
        "/api/v1/onboarding/invitations",
        as_=ADMIN,
        tenant=REGION,
        json={"school": HOME_SCHOOL, "email": address, "full_name": "Late"},
    )
    assert response.status_code == 201
    token = token_of(inbox.messages[-1])
    db = world.services.db
    from core.scope import Scope

    async with db.scoped(Scope.everything()):
        await db.execute(
            "UPDATE onboarding_invitation SET expires_at = {} WHERE email = {}",
            __import__("datetime").datetime(2020, 1, 1, tzinfo=__import__("datetime").UTC),
            address,
        )
    client = new_client(world.app, ip="10.6.0.2")
    late = await client.post(
        "/api/v1/onboarding/invitations/accept", json={"token": token, "password": "late-pass-2026"}
    )
    assert late.status_code == 400 and "expired" in late.json()["detail"]
    forged = await client.post(
        "/api/v1/onboarding/invitations/accept", json={"token": "y" * 43, "password": "x-pass-2026"}
    )
    assert forged.status_code == 400
    await client.aclose()
    foreign = await world.api(
        "POST",
        "/api/v1/onboarding/invitations",
        as_=ADMIN,
        tenant=REGION,
        json={"school": "lycee-moulay-youssef", "email": "intruder.director@test.ma", "full_name": "X"},
    )
    assert foreign.status_code == 404
    assert await world.sql("SELECT COUNT(*) FROM person WHERE email = 'intruder.director@test.ma'") == 0


async def test_staff_file_creates_teachers_and_invites_directors(world, inbox):
    tag = world.backend
    number = "7" + str(abs(hash(tag)) % 10**6).zfill(6)
    data = (
        "school,email,full_name,role,staff_number,locale\n"
        f"{HOME_SCHOOL_CODE},prof1.{tag}@staff.test.ma,Prof Un,enseignant,{number},fr\n"
        f"{SECOND_SCHOOL_CODE},dir.{tag}@staff.test.ma,Directrice Deux,directrice,,ar\n"
    ).encode()
    response = await upload(world, "staff", "staff.csv", data)
    assert response.status_code == 201, response.text
    assert response.json()["report"]["created"] == {"memberships": 2, "people": 2, "directors": 1}
    done = await commit(world, response.json()["id"])
    assert done.status_code == 200, done.text
    prof = await world.sql("SELECT id FROM person WHERE email = {}", f"prof1.{tag}@staff.test.ma")
    assert await world.sql("SELECT staff_number FROM staff WHERE person_id = {}", prof) == number
    assert [m["To"] for m in inbox.messages] == [f"dir.{tag}@staff.test.ma"]
    assert "مدرسة" in inbox.messages[0]["Subject"] or inbox.messages[0]["Subject"]  # Arabic locale
    rerun = await upload(world, "staff", "staff.csv", data)
    assert rerun.json()["report"]["unchanged"] == 2
    clash = (
        "school,email,full_name,role,staff_number\n"
        f"{HOME_SCHOOL_CODE},other.{tag}@staff.test.ma,Autre,teacher,{number}\n"
        f"{HOME_SCHOOL_CODE},other.{tag}@staff.test.ma,Autre,teacher,{number}\n"
    ).encode()
    bad = await upload(world, "staff", "staff.csv", clash)
    assert bad.status_code == 422
    assert {(2, "staff_number"), (3, "email"), (3, "staff_number")} <= errors_of(bad.json())


async def test_commit_validates_again_and_writes_nothing_when_the_data_changed(world):
    """A pupil registered elsewhere between preview and commit: the whole file is refused, nothing written."""
    tag = letter(world)
    rows = [
        f"{HOME_SCHOOL_CODE};{tag}500000001;Un;Premier;;;;;;;;;;;",
        f"{HOME_SCHOOL_CODE};{tag}500000002;Deux;Second;;;;;;;;;;;",
    ]
    response = await upload(world, "students", "pupils.csv", pupils_file(rows))
    assert response.status_code == 201
    meanwhile = await world.api(
        "POST",
        "/api/v1/school/students",
        as_="director.lycee-moulay-youssef@test.ma",
        tenant="lycee-moulay-youssef",
        json={"national_code": f"{tag}500000002", "first_name": "Autre", "last_name": "Region"},
    )
    assert meanwhile.status_code == 201, meanwhile.text
    done = await commit(world, response.json()["id"])
    assert done.status_code == 422
    batch = done.json()["batch"]
    assert batch["status"] == "invalid"
    assert (3, "national_code") in {(e["row"], e["column"]) for e in batch["report"]["errors"]}
    assert await world.sql("SELECT COUNT(*) FROM student WHERE national_code = {}", f"{tag}500000001") == 0


async def test_two_commits_at_once_write_once(world):
    import asyncio

    tag = letter(world)
    response = await upload(
        world, "students", "p.csv", pupils_file([f"{HOME_SCHOOL_CODE};{tag}600000001;Une;Fois;;;;;;;;;;;"])
    )
    assert response.status_code == 201
    first, second = await asyncio.gather(commit(world, response.json()["id"]), commit(world, response.json()["id"]))
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    assert await world.sql("SELECT COUNT(*) FROM student WHERE national_code = {}", f"{tag}600000001") == 1


# -- hostile workbooks -----------------------------------------------------------------------------


def rewrite_xlsx(data: bytes, change) -> bytes:
    """A copy of a workbook with each member's bytes passed through ``change(name, bytes)``."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, change(info.filename, src.read(info.filename)))
    return out.getvalue()


def workbook(rows: list[list[object]], **cells: object) -> bytes:
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    for ref, value in cells.items():
        sheet[ref] = value
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def upload_xlsx(world, kind: str, data: bytes):
    return world.api(
        "POST",
        "/api/v1/onboarding/batches",
        as_=ADMIN,
        tenant=REGION,
        data={"kind": kind},
        files={"file": ("bomb.xlsx", data, "application/octet-stream")},
    )


@pytest.mark.parametrize(
    ("kind", "header"),
    [
        ("schools", ["code", "name_ar", "name_fr", "cycle", "province"]),
        ("students", ["school", "national_code", "last_name", "first_name"]),
    ],
)
async def test_a_workbook_declaring_a_huge_sheet_is_refused_quickly(world, kind, header):
    """<dimension ref="A1:XFD1048576"> and a cell in the last row: a 5 KB file, a million padded rows."""
    plain = workbook([header], A1048576="x")
    bomb = rewrite_xlsx(
        plain,
        lambda name, data: (
            re.sub(rb'<dimension ref="[^"]+"', b'<dimension ref="A1:XFD1048576"', data)
            if name == "xl/worksheets/sheet1.xml"
            else data
        ),
    )
    assert len(bomb) < 10_000 and b"XFD1048576" in zipfile.ZipFile(io.BytesIO(bomb)).read("xl/worksheets/sheet1.xml")
    before = await count(world, "SELECT COUNT(*) FROM student")
    started = time.perf_counter()
    response = await upload_xlsx(world, kind, bomb)
    assert time.perf_counter() - started < 20
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["status"] == "invalid" and body["report"]["errors"][0]["code"] == "too_many_rows"
    assert await count(world, "SELECT COUNT(*) FROM student") == before
    assert (await commit(world, body["id"])).status_code == 409


async def test_a_zip_bomb_is_refused_before_it_is_opened(world, monkeypatch):
    plain = workbook([["school", "national_code", "last_name", "first_name"], [HOME_SCHOOL_CODE, "J1", "A", "B"]])
    # 64 MiB of padding that deflates to ~64 KB: refused from the archive directory, never unpacked.
    padding = b" " * (64 * 1024 * 1024)
    bomb = rewrite_xlsx(
        plain,
        lambda name, data: (
            data.replace(b"<sheetData>", padding + b"<sheetData>", 1) if name == "xl/worksheets/sheet1.xml" else data
        ),
    )
    assert len(bomb) < 1024 * 1024
    started = time.perf_counter()
    response = await upload_xlsx(world, "students", bomb)
    assert time.perf_counter() - started < 10
    assert response.status_code == 422, response.text
    error = response.json()["report"]["errors"][0]
    assert error["code"] == "xlsx_packed" and error["value"] == "xl/worksheets/sheet1.xml"
    # Too large once unpacked, however well it is packed.
    monkeypatch.setattr(onboarding_files, "MAX_UNPACKED_BYTES", 4096)
    large = await upload_xlsx(world, "students", plain)
    assert large.status_code == 422
    assert large.json()["report"]["errors"][0]["code"] == "xlsx_too_big"
    # The shared strings are loaded whole by the reader: they have a cap of their own.
    monkeypatch.setattr(onboarding_files, "MAX_UNPACKED_BYTES", 64 * 1024 * 1024)
    monkeypatch.setattr(onboarding_files, "MAX_SHARED_STRINGS_BYTES", 100)
    with_strings = io.BytesIO(plain)
    with zipfile.ZipFile(with_strings, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/sharedStrings.xml", b"<sst>" + b"<si><t>x</t></si>" * 20 + b"</sst>")
    strings = await upload_xlsx(world, "students", with_strings.getvalue())
    assert strings.status_code == 422
    assert strings.json()["report"]["errors"][0] == {
        **strings.json()["report"]["errors"][0],
        "code": "xlsx_too_big",
        "value": "xl/sharedStrings.xml",
    }


async def test_wide_rows_are_read_no_wider_than_the_known_columns(world):
    tag = letter(world)
    data = workbook(
        [["École", "Code Massar", "Nom", "Prénom"], [HOME_SCHOOL_CODE, f"{tag}310000001", "Large", "Ligne"]],
        XFD2="far away",
    )
    response = await upload_xlsx(world, "students", data)
    assert response.status_code == 201, response.text
    assert response.json()["rows"] == 1


# -- streamed files, every error, failures ---------------------------------------------------------


async def test_files_are_stored_in_parts_and_read_back_as_a_stream(world, monkeypatch):
    tag = letter(world)
    monkeypatch.setattr(onboarding_batches, "PART_BYTES", 1000)
    rows = [f"{HOME_SCHOOL_CODE};{tag}700{n:06d};Part{n};Eleve;;;;;;;;;;;" for n in range(120)]
    data = pupils_file(rows)
    assert len(data) > 4000
    response = await upload(world, "students", "parts.csv", data)
    assert response.status_code == 201, response.text
    key = await world.sql("SELECT file_key FROM onboarding_batch WHERE id = {}", response.json()["id"])
    region = world.ids[REGION]
    parts = [await world.services.storage.get(f"{key}.{n:05d}", tenant_id=region) for n in range(len(data) // 1000 + 1)]
    assert b"".join(parts) == data and max(len(p) for p in parts) == 1000
    done = await commit(world, response.json()["id"])
    assert done.status_code == 200, done.text
    assert await count(world, IN_HOME_SCHOOL, world.ids[HOME_SCHOOL], f"{tag}700%") == 120


async def test_every_error_is_downloadable_as_csv(world):
    tag = letter(world)
    # 601 rows with one code: 600 duplicates found by SQL; 300 bad genders found in Python.
    rows = [f"{HOME_SCHOOL_CODE};{tag}800000001;Dup{n};Eleve;;;;{'X' if n % 2 else 'F'};;;;;;;" for n in range(601)]
    response = await upload(world, "students", "dups.csv", pupils_file(rows))
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error_count"] == 900 and len(body["report"]["errors"]) == onboarding.MAX_LISTED_ERRORS
    assert body["report"]["errors_truncated"] is True
    assert {e["code"] for e in body["report"]["errors"]} <= {"gender", "duplicate_row"}
    listing = await world.api("GET", f"/api/v1/onboarding/batches/{body['id']}/errors.csv", as_=ADMIN, tenant=REGION)
    assert listing.status_code == 200, listing.text
    assert listing.headers["content-type"].startswith("text/csv")
    assert "attachment" in listing.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(listing.content.decode("utf-8-sig"))))
    assert table[0] == ["row", "column", "value", "code", "message"]
    assert len(table) == 1 + 900
    duplicates = [r for r in table[1:] if r[3] == "duplicate_row"]
    assert len(duplicates) == 600 and {r[4] for r in duplicates} == {"doublon de la ligne 2 de ce fichier"}
    assert {int(r[0]) for r in duplicates} == set(range(3, 603))
    assert sum(r[3] == "gender" for r in table[1:]) == 300
    # another region's batch is not found; a director may not download
    theirs = await upload(
        world, "schools", "s.csv", b"code\n", as_="region.rabat@madrasa.demo", tenant="rabat-sale-kenitra"
    )
    foreign = await world.api(
        "GET", f"/api/v1/onboarding/batches/{theirs.json()['id']}/errors.csv", as_=ADMIN, tenant=REGION
    )
    assert foreign.status_code == 404
    director = await world.api(
        "GET",
        f"/api/v1/onboarding/batches/{body['id']}/errors.csv",
        as_="director.lycee-ibn-batouta@test.ma",
        tenant=REGION,
    )
    assert director.status_code == 403


async def test_errors_carry_a_stable_code_and_values(world):
    response = await upload(world, "schools", "bad.csv", (FIXTURES / "schools_bad.csv").read_bytes())
    errors = {(e["row"], e["column"]): e for e in response.json()["report"]["errors"]}
    duplicate = errors[(3, "code")]
    assert duplicate["code"] == "duplicate_row" and duplicate["params"] == {"first": "2"}
    assert duplicate["message"] == "duplicate of row 2 in this file"
    assert errors[(6, "province")]["code"] == "province_foreign"


async def test_a_failed_commit_reports_a_generic_message_and_logs_the_cause(world, caplog):
    tag = letter(world)
    response = await upload(
        world, "students", "p.csv", pupils_file([f"{HOME_SCHOOL_CODE};{tag}900000001;Un;Deux;;;;;;;;;;;"])
    )
    assert response.status_code == 201
    key = await world.sql("SELECT file_key FROM onboarding_batch WHERE id = {}", response.json()["id"])
    await world.services.storage.delete(f"{key}.00000", tenant_id=world.ids[REGION])  # the stored file is gone
    with caplog.at_level("ERROR", logger="tenants.onboarding"):
        done = await commit(world, response.json()["id"])
    assert done.status_code == 422
    error = done.json()["batch"]["report"]["errors"][0]
    assert error["code"] == "commit_failed" and "Object" not in error["message"] and key not in error["message"]
    assert any(r.exc_info for r in caplog.records if response.json()["id"] in r.getMessage())
    assert await count(world, "SELECT COUNT(*) FROM student WHERE national_code = {}", f"{tag}900000001") == 0


async def test_a_stale_committing_batch_can_be_claimed_again(world):
    tag = letter(world)
    response = await upload(
        world, "students", "p.csv", pupils_file([f"{HOME_SCHOOL_CODE};{tag}910000001;Un;Mort;;;;;;;;;;;"])
    )
    batch_id = response.json()["id"]
    db = world.services.db
    from core.scope import Scope

    async def claimed(minutes_ago: int) -> None:
        async with db.scoped(Scope.everything()):
            await db.execute(
                "UPDATE onboarding_batch SET status = 'committing', claimed_at = {} WHERE id = {}",
                datetime.now(UTC) - timedelta(minutes=minutes_ago),
                batch_id,
            )

    await claimed(5)  # a worker is on it
    busy = await commit(world, batch_id)
    assert busy.status_code == 409 and busy.json()["code"] == "being_committed"
    await claimed(16)  # its worker died
    done = await commit(world, batch_id)
    assert done.status_code == 200, done.text
    assert done.json()["batch"]["status"] == "committed"
    assert await count(world, "SELECT COUNT(*) FROM student WHERE national_code = {}", f"{tag}910000001") == 1
