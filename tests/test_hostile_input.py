"""Hostile input answers 4xx naming the field, never 500, on both backends, and writes nothing.

Out-of-range ids (PostgreSQL ``INTEGER`` stops at 2³¹−1, SQLite at 2⁶³−1), NUL and other control characters
(PostgreSQL cannot store NUL), JSON nested 100,000 levels deep (``RecursionError``), multipart fields and
file names that are not UTF-8, and statistics over a period without a school day. The sweep at the end tries
every route of the app with hostile path parameters and sample bodies turned hostile.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest
from litestar import Litestar, Request, post
from litestar.params import JSONBody

from core.clock import FixedClock
from core.errors import Invalid
from core.guard import (
    ID_MAX,
    INT_MAX,
    MAX_DEPTH,
    SPOOL_MEMORY,
    BodyReadAhead,
    RequestGuard,
    check_integer_text,
    check_json,
    is_id,
    name_problem,
    within_limits,
)
from core.middleware import SESSION_COOKIE
from core.problems import unstorable_value
from tests.isolation import Multipart
from tests.test_isolation import BODIES, QUERIES, app_routes

HOME = "lycee-ibn-batouta"
DIRECTOR = f"director.{HOME}@test.ma"
TEACHER = f"teacher.{HOME}@test.ma"
GUARDIAN = f"guardian.{HOME}@test.ma"
BIG = [2**31, 99999999999999999999]
NUL = "x\x00y"
BOUNDARY = "hostile-boundary"
PDF = b"%PDF-1.4\n% hostile\n"
#: Tables a successful write would touch; counted before and after the refusals.
TABLES = (
    "audit_log login_attempt person room school_class student teaching_assignment timetable_slot stored_file "
    "attendance_session attendance_mark attendance_justification grade_assessment"
).split()


def refused(response: Any, field: str) -> None:
    """400 with ``field`` among the named fields of the problem."""
    assert response.status_code == 400, response.text
    body = response.json()
    assert field in {e["field"] for e in body.get("errors", [])}, body


async def counts(world: Any) -> dict[str, int]:
    """Rows of every table in :data:`TABLES`, read with the platform scope."""
    return {table: int(await world.sql(f"SELECT COUNT(*) FROM {table}")) for table in TABLES}


def multipart(*parts: tuple[bytes, bytes]) -> dict[str, Any]:
    """``httpx`` arguments for a raw multipart body (headers of each part, its content) sent byte for byte."""
    body = b""
    for headers, content in parts:
        body += b"--" + BOUNDARY.encode() + b"\r\n" + headers + b"\r\n\r\n" + content + b"\r\n"
    body += b"--" + BOUNDARY.encode() + b"--\r\n"
    return {"content": body, "headers": {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}}


def field(name: str | bytes) -> bytes:
    raw = name.encode() if isinstance(name, str) else name
    return b'Content-Disposition: form-data; name="' + raw + b'"'


def upload(filename: bytes = b"x.pdf", name: str = "file") -> bytes:
    return field(name) + b'; filename="' + filename + b'"\r\nContent-Type: application/pdf'


# -- the rules, without a world ---------------------------------------------------------------------


def test_json_nesting_up_to_the_limit_passes_and_one_more_level_is_refused():
    check_json(_nested(MAX_DEPTH))
    with pytest.raises(Invalid) as caught:
        check_json(_nested(MAX_DEPTH + 1))
    assert caught.value.code == "too_deep"


def _nested(levels: int, leaf: Any = 1) -> Any:
    value: Any = leaf
    for _ in range(levels):
        value = [value]
    return value


def test_tab_cr_lf_pass_and_other_control_characters_are_refused():
    check_json({"note": "a\tb\r\nc", "name": "Été ☀ مرحبا"})
    for char in ("\x00", "\x01", "\x0b", "\x1b", "\x1f"):
        with pytest.raises(Invalid) as caught:
            check_json({"entries": [{"note": f"a{char}b"}]})
        assert caught.value.field == "entries[0].note"
    with pytest.raises(Invalid) as caught:
        check_json({"na\x00me": "x"})
    assert caught.value.field == "na\x00me"


def test_the_fast_walk_agrees_with_the_one_that_names_the_field():
    """Random bodies, hostile or not: the fast walk refuses exactly what the naming walk refuses."""
    rng = random.Random(7)
    leaves: list[Any] = [0, 1, -1, 5, ID_MAX, ID_MAX + 1, -(2**31), -(2**31) - 1, 2**63, True, None, 1.5]
    leaves += ["ok", "a\tb", "a\x00", "\x1f"]
    keys = ["id", "class_id", "student_ids", "minutes", "note", "x\x07", "valid"]

    def build(depth: int) -> Any:
        if depth > 3 and rng.random() < 0.02:
            return _nested(MAX_DEPTH)  # one more level with what is around it
        if depth > 6 or rng.random() < 0.3:
            return rng.choice(leaves)
        if rng.random() < 0.5:
            return [build(depth + 1) for _ in range(rng.randrange(4))]
        return {rng.choice(keys): build(depth + 1) for _ in range(rng.randrange(4))}

    outcomes = set()
    for _ in range(3000):
        value = build(0)
        if not isinstance(value, (dict, list)):
            continue
        try:
            name_problem(value)
            named = True
        except Invalid:
            named = False
        assert within_limits(value, strings=True) == named, value
        outcomes.add(named)
    assert outcomes == {True, False}


def test_integer_bounds_by_name():
    check_json({"id": 1, "class_id": ID_MAX, "minutes": -5, "score": INT_MAX, "ok": True, "x": 1.5e300})
    for body, where in (
        ({"id": 0}, "id"),
        ({"class_id": ID_MAX + 1}, "class_id"),
        ({"student_ids": [3, 2**63]}, "student_ids[1]"),
        ({"minutes": INT_MAX + 1}, "minutes"),
        ({"entries": [{"student_id": -1}]}, "entries[0].student_id"),
    ):
        with pytest.raises(Invalid) as caught:
            check_json(body)
        assert caught.value.field == where and caught.value.code == "out_of_range"
    check_integer_text("absences", "99999999999999999999")  # not named as an id: the field's own rules apply
    check_integer_text("term_id", "T1")
    check_integer_text("term_id", "0000000000000000042")
    for name, text in (("term_id", "2147483648"), ("student_ids", "1, 9" + "9" * 5000), ("limit", "-2147483649")):
        with pytest.raises(Invalid):
            check_integer_text(name, text, integer=name == "limit")


def _echo_app(max_body: int = 64 * 1024 * 1024) -> httpx.AsyncClient:
    """A bare Litestar app behind the two guard middlewares, echoing what its handlers received."""

    @post("/form")
    async def form(request: Request[Any, Any, Any]) -> dict[str, Any]:
        data = await request.form()
        content = await data["file"].read()
        return {"sha": hashlib.sha256(content).hexdigest(), "note": data["note"]}

    @post("/json")
    async def json_body(data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
        return {"size": len(data["blob"])}

    app = Litestar([form, json_body], middleware=[RequestGuard(), BodyReadAhead()], request_max_body_size=max_body)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_a_body_read_ahead_reaches_the_handler_intact():
    """Bodies beyond the in-memory spool go through a temporary file and arrive byte for byte."""
    blob = os.urandom(3 * SPOOL_MEMORY)
    async with _echo_app() as client:
        response = await client.post(
            "/form", files={"file": ("x.bin", blob, "application/octet-stream")}, data={"note": "Fièvre\tà 39°"}
        )
        assert response.status_code == 201, response.text
        assert response.json() == {"sha": hashlib.sha256(blob).hexdigest(), "note": "Fièvre\tà 39°"}
        response = await client.post("/json", json={"blob": "é" * (2 * SPOOL_MEMORY)})
        assert response.status_code == 201 and response.json() == {"size": 2 * SPOOL_MEMORY}, response.text
    async with _echo_app(max_body=SPOOL_MEMORY) as client:
        response = await client.post("/form", files={"file": ("x.bin", blob, "application/octet-stream")})
        assert response.status_code == 413, response.text


# -- ids out of range ---------------------------------------------------------------------------


async def test_out_of_range_ids_in_paths_are_refused(world):
    before = await counts(world)
    for value in BIG:
        response = await world.api("GET", f"/api/v1/files/{value}", as_=DIRECTOR, tenant=HOME)
        refused(response, "file_id")
        response = await world.api(
            "POST",
            f"/api/v1/school/students/{value}/guardians",
            as_=DIRECTOR,
            tenant=HOME,
            json={"email": "hostile@test.ma", "full_name": "X"},
        )
        refused(response, "student_id")
        response = await world.api("GET", f"/grades/assessments/{value}", as_=TEACHER, tenant=HOME)
        assert response.status_code == 400, response.text  # a page: the error page, not a 500
    assert await counts(world) == before


async def test_out_of_range_ids_in_queries_are_refused(world):
    for value in BIG:
        response = await world.api(
            "GET", "/api/v1/grades/assessments", as_=TEACHER, tenant=HOME, params={"class_id": str(value)}
        )
        refused(response, "class_id")
        response = await world.api(
            "GET", "/api/v1/audit", as_="region.casa@madrasa.demo", params={"before_id": str(value)}
        )
        refused(response, "before_id")


async def test_out_of_range_ids_in_bodies_are_refused_and_write_nothing(world):
    home = world.objects[HOME]
    before = await counts(world)
    for value in BIG:
        response = await world.api(
            "POST",
            "/api/v1/school/assignments",
            as_=DIRECTOR,
            tenant=HOME,
            json={"teacher_id": value, "class_id": home["class_id"], "subject_code": "PC"},
        )
        refused(response, "teacher_id")
        register = f"/api/v1/attendance/sessions/{home['slot_id']}/2026-10-05"
        for entry, where in (
            ({"student_id": home["student_id"], "status": "late", "minutes": value}, "entries[0].minutes"),
            ({"student_id": value, "status": "absent"}, "entries[0].student_id"),
        ):
            refused(await world.api("PUT", register, as_=TEACHER, tenant=HOME, json={"entries": [entry]}), where)
        # A portal form: the id field is bounded as well.
        response = await world.api(
            "POST",
            f"/grades/classes/{home['class_id']}/assessments",
            as_=TEACHER,
            tenant=HOME,
            data={"subject_code": "MATH", "term_id": str(value), "scheduled_on": "2026-10-05", "kind": "cc"},
        )
        assert response.status_code == 400, response.text
    assert await counts(world) == before


async def test_values_the_guard_cannot_name_are_refused_by_the_database_as_400(world):
    """A comma-separated list in a field not named as ids, a version in a header: the database refuses the
    value, and that refusal is a 400 (not a 500) with nothing written."""
    home = world.objects[HOME]
    before = await counts(world)
    for value in BIG:
        response = await world.api(
            "POST",
            f"/api/v1/attendance/pupils/{home['student_id']}/justifications",
            as_=GUARDIAN,
            tenant=HOME,
            data={"absences": str(value), "reason": "illness"},
            files={"file": ("", b"", "application/octet-stream")},
        )
        assert response.status_code == 400, response.text
        response = await world.api(
            "PUT",
            f"/api/v1/grades/assessments/{home['assessment_id']}/marks",
            as_=TEACHER,
            tenant=HOME,
            json={"marks": []},
            headers={"if-match": f'"a{home["assessment_id"]}.v{value}"'},
        )
        assert 400 <= response.status_code < 500, response.text  # SQLite compares it: 409, another version
    assert await counts(world) == before


def test_only_values_the_database_cannot_store_become_400():
    class PgError(Exception):
        def __init__(self, sqlstate: str) -> None:
            self.sqlstate = sqlstate

    def chained(cause: BaseException) -> BaseException:
        try:
            raise RuntimeError("wrapped") from cause
        except RuntimeError as exc:
            return exc

    assert unstorable_value(PgError("22021"))  # NUL in text
    assert unstorable_value(chained(PgError("22003")))  # numeric value out of range
    assert unstorable_value(chained(OverflowError("value out of int32 range")))
    assert unstorable_value(OverflowError("Python int too large to convert to SQLite INTEGER"))
    assert not unstorable_value(PgError("22012"))  # division by zero is a bug, it stays a 500
    assert not unstorable_value(OverflowError("math range error"))
    assert not unstorable_value(ValueError("value out of int32 range"))


# -- control characters -------------------------------------------------------------------------


async def test_nul_in_the_unauthenticated_token_request_is_refused(world):
    before = await counts(world)
    response = await world.client.post(
        "/api/v1/auth/token", json={"email": "admin@madrasa.demo\x00", "password": "whatever-it-is"}
    )
    refused(response, "email")
    response = await world.client.post("/api/v1/auth/token", json={"email": "admin@madrasa.demo", "password": NUL})
    refused(response, "password")
    assert await counts(world) == before  # not even a failed attempt is recorded


async def test_control_characters_in_json_query_path_and_forms_are_refused(world):
    before = await counts(world)
    for text in (NUL, "Salle\x1b[31m", "a\x07"):
        refused(await world.api("POST", "/api/v1/school/rooms", as_=DIRECTOR, tenant=HOME, json={"name": text}), "name")
    refused(
        await world.api("POST", "/api/v1/school/rooms", as_=DIRECTOR, tenant=HOME, json={"name": "A", "x\x00": 1}),
        "x\x00",
    )
    refused(await world.api("GET", "/api/v1/coefficients", as_=DIRECTOR, tenant=HOME, params={"level": NUL}), "level")
    refused(await world.api("GET", "/api/v1/tenants/lycee%00ibn", as_="region.casa@madrasa.demo"), "slug")
    # The portal's login form, before any session.
    response = await world.client.post("/login", data={"email": NUL, "password": "x", "csrf_token": "t"})
    assert response.status_code == 400, response.text
    # A query string that is not UTF-8.
    response = await world.api("GET", "/api/v1/coefficients?level=%FF", as_=DIRECTOR, tenant=HOME)
    refused(response, "level")
    assert await counts(world) == before


# -- nesting ------------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
async def test_json_nested_100000_levels_is_refused_unauthenticated(world, content_type):
    body = b'{"email": ' + b"[" * 100_000 + b"]" * 100_000 + b', "password": "x"}'
    response = await world.client.post("/api/v1/auth/token", content=body, headers={"content-type": content_type})
    refused(response, "body")
    assert "deeper than 64" in response.json()["detail"]
    deep = b'{"name": ' + b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1) + b"}"
    response = await world.api(
        "POST", "/api/v1/school/rooms", as_=DIRECTOR, tenant=HOME, content=deep, headers={"content-type": content_type}
    )
    assert response.status_code == 400 and "deeper than 64" in response.text, response.text


async def test_an_anonymous_body_is_not_read_before_authentication(world):
    """Parameters are checked first; a body only once the access checks let the request through."""
    deep = b"[" * 100_000 + b"]" * 100_000
    response = await world.client.post(
        f"/t/{HOME}/api/v1/school/rooms", content=deep, headers={"content-type": "application/json"}
    )
    assert response.status_code == 401, response.text
    response = await world.client.get(f"/t/{HOME}/api/v1/coefficients", params={"level": NUL})
    refused(response, "level")


async def test_a_form_read_by_the_csrf_check_is_checked_too(world):
    """A browser's multipart post without the CSRF header: the access check reads the form, and a field that is
    not UTF-8 is refused there (400), before the CSRF token is even compared."""
    cookie, _ = await world.web_session(DIRECTOR)
    sheet = world.objects[HOME]["sheet_id"]
    before = await counts(world)
    args = multipart((field("csrf_token"), b"t"), (field("next"), b"/grades\xff"))
    args["headers"]["cookie"] = f"{SESSION_COOKIE}={cookie}"
    response = await world.client.post(f"/t/{HOME}/grades/sheets/{sheet}/submit", **args)
    assert response.status_code == 400, response.text
    assert await counts(world) == before


# -- multipart ----------------------------------------------------------------------------------


async def test_multipart_fields_and_file_names_not_utf8_are_refused_on_files(world):
    before = await counts(world)
    cases = [
        ([(upload(), PDF), (field("category"), b"\xff\xfe")], "category"),
        ([(upload(b"\xff\xfe.pdf"), PDF)], "file"),
        ([(upload(b"a\x00b.pdf"), PDF)], "file"),
        ([(upload(), PDF), (field("category"), b"a\x00b")], "category"),
        ([(upload(), PDF), (field("category") + b"\r\nContent-Type: text/plain; charset=klingon", b"x")], "category"),
        ([(upload(), PDF), (field("category"), b"1"), (field(b"\xff"), b"x")], "\ufffd"),
    ]
    for parts, name in cases:
        refused(await world.api("POST", "/api/v1/files", as_=DIRECTOR, tenant=HOME, **multipart(*parts)), name)
    assert await counts(world) == before


async def test_multipart_fields_not_utf8_are_refused_on_justifications(world):
    pupil = world.objects[HOME]["student_id"]
    before = await counts(world)
    for note in (b"Fi\xe8vre", b"Fi\x00vre"):
        response = await world.api(
            "POST",
            f"/api/v1/attendance/pupils/{pupil}/justifications",
            as_=GUARDIAN,
            tenant=HOME,
            **multipart(
                (field("absences"), b"1"),
                (field("reason"), b"illness"),
                (field("note"), note),
                (upload(), PDF),
            ),
        )
        refused(response, "note")
    response = await world.api(
        "POST",
        f"/api/v1/attendance/pupils/{pupil}/justifications",
        as_=GUARDIAN,
        tenant=HOME,
        **multipart((field("absences"), b"1"), (field("reason"), b"illness"), (upload(b"certificat\xe9.pdf"), PDF)),
    )
    refused(response, "file")
    # The same text declared in its own charset is read as such (and then judged by the route itself).
    response = await world.api(
        "POST",
        f"/api/v1/attendance/pupils/{pupil}/justifications",
        as_=GUARDIAN,
        tenant=HOME,
        **multipart(
            (field("absences"), b"1"),
            (field("reason"), b"illness"),
            (field("note") + b"\r\nContent-Type: text/plain; charset=latin-1", b"Fi\xe8vre"),
        ),
    )
    assert response.status_code < 500 and "note" not in response.text, response.text
    assert await counts(world) == before


# -- statistics over a period without a school day --------------------------------------------------


@pytest.fixture
async def late_november(world: Any) -> AsyncIterator[None]:
    """The clock pinned after Independence Day (2026-11-18, a national holiday), put back afterwards."""
    previous = world.services.clock
    world.services.clock = FixedClock(date(2026, 11, 30))
    try:
        yield
    finally:
        world.services.clock = previous


async def test_statistics_of_a_holiday_count_no_day_on_both_backends(world, late_november):
    home = world.objects[HOME]
    holiday = {"from": "2026-11-18", "to": "2026-11-18"}
    response = await world.api(
        "GET", f"/api/v1/attendance/classes/{home['class_id']}/stats", as_=DIRECTOR, tenant=HOME, params=holiday
    )
    assert response.status_code == 200, response.text
    assert all(p["expected_hours"] == 0 for p in response.json()["pupils"])
    response = await world.api(
        "GET", "/api/v1/attendance/stats", as_=DIRECTOR, tenant=HOME, params={**holiday, "level": "class"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["days"] == 0
    assert all(g["expected_hours"] == 0 and g["absence_rate"] == 0 for g in response.json()["groups"])
    response = await world.api(
        "GET", "/api/v1/attendance/stats.csv", as_=DIRECTOR, tenant=HOME, params={**holiday, "level": "class"}
    )
    assert response.status_code == 200 and response.text.startswith("id,name_fr"), response.text
    # Outside every term, too.
    response = await world.api(
        "GET",
        "/api/v1/attendance/stats",
        as_="region.casa@madrasa.demo",
        tenant="casablanca-settat",
        params={"from": "2026-08-01", "to": "2026-08-02"},
    )
    assert response.status_code == 200 and response.json()["days"] == 0, response.text


# -- every route ------------------------------------------------------------------------------------

_PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")


def hostile_paths(path: str) -> list[str]:
    """The path with its parameters filled with each hostile value: ids beyond both backends' integers (as
    text in text parameters), and a NUL where a parameter is text; dates and the other parameters stay
    plausible. A path without parameters gives nothing."""
    kinds = [kind or "str" for _, kind in _PARAM.findall(path)]
    values: list[Any] = [*BIG, NUL] if {"str", "path"} & set(kinds) else list(BIG) if "int" in kinds else []
    out = []
    for value in values:

        def sub(match: re.Match[str], value: Any = value) -> str:
            kind = match.group(2) or "str"
            if kind == "int":
                return str(value) if isinstance(value, int) else "1"
            if kind == "date":
                return "2026-10-05"
            return str(value).replace("\x00", "%00")

        out.append(_PARAM.sub(sub, path))
    return out


def hostile_body(sample: Any, value: Any) -> Any:
    """A sample body with every integer (and every digit string of a field named as an id) replaced by
    ``value`` when it is a number, or every string by ``value`` when it is text; ``None`` when nothing was."""
    changed = False

    def walk(item: Any, key: str) -> Any:
        nonlocal changed
        if isinstance(item, dict):
            return {k: walk(v, k) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v, key) for v in item]
        if isinstance(item, bool) or item is None:
            return item
        if isinstance(value, str) and isinstance(item, str):
            changed = True
            return value
        if isinstance(value, int) and isinstance(item, int):
            changed = True
            return value
        if isinstance(value, int) and isinstance(item, str) and is_id(key) and item.isdigit():
            changed = True
            return str(value)
        return item

    out = walk(sample, "")
    return out if changed else None


async def _send(world: Any, actor: str, method: str, url: str, route: str, body: Any = None) -> Any:
    kwargs: dict[str, Any] = {}
    key = (method, route)
    if key in QUERIES:
        home = world.objects[HOME]
        kwargs["params"] = {name: str(home.get(sample, "TC")) for name, sample in QUERIES[key].items()}
    if method in ("POST", "PUT", "PATCH"):
        sample = BODIES.get(key, {}) if body is None else body
        if isinstance(sample, Multipart):
            kwargs["files"] = sample.files
            kwargs["data"] = dict(sample.data)
        elif sample is None or sample == "csv":
            kwargs["files"] = {"file": ("x.pdf", PDF, "application/pdf")}
        elif not route.startswith("/api/"):
            kwargs["data"] = sample
        else:
            kwargs["json"] = sample
    return await world.api(method, url, as_=actor, tenant=HOME, **kwargs)


@pytest.mark.parametrize("actor", [DIRECTOR, TEACHER])
async def test_every_route_answers_hostile_input_without_a_5xx(world, actor):
    """Every route of the app, with each hostile path value, then each JSON or form sample body turned hostile:
    no 5xx, no success on the API, and nothing written (no audit entry after any request, no row anywhere)."""
    before = await counts(world)
    audit = before["audit_log"]
    failures = []
    tried = 0
    for method, route, _ in app_routes(world):
        attempts = [(url, None) for url in hostile_paths(route)]
        sample = BODIES.get((method, route))
        if method in ("POST", "PUT", "PATCH") and isinstance(sample, dict):
            url = _PARAM.sub(lambda m: _home_value(world, m.group(1), m.group(2)), route)
            bodies = [hostile_body(sample, value) for value in (*BIG, NUL)]
            attempts += [(url, body) for body in bodies if body is not None]
        for url, body in attempts:
            response = await _send(world, actor, method, url, route, body)
            tried += 1
            now = int(await world.sql("SELECT COUNT(*) FROM audit_log"))
            if response.status_code >= 500 or now != audit or (body is not None and response.status_code < 400):
                failures.append(f"{method} {url!r} {body!r}: {response.status_code} {response.text[:160]}")
            audit = now
    assert tried > 100
    assert not failures, "\n".join(failures)
    assert await counts(world) == before


def _home_value(world: Any, name: str, kind: str | None) -> str:
    """A plausible path value of the home school (its own objects, so the body is what gets judged)."""
    home = world.objects[HOME]
    known = {
        **{k: str(v) for k, v in home.items()},
        "file_id": str(world.files[HOME]),
        "slug": HOME,
        "module": "grades",
        "code": "ar",
        "action": "submit",
        "on_date": "2026-10-05",
    }
    return known.get(name, "1" if kind == "int" else "x")
