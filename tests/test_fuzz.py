"""Schemathesis over the whole ``/api/v1`` OpenAPI, as a teacher, a director and a parent, on a seeded PostgreSQL
deployment of its own: no server error, no status code, media type or response body the document does not declare.

Every operation gets :data:`EXAMPLES` generated requests per account (``MADRASA_FUZZ_EXAMPLES`` raises it; ``make
fuzz`` runs with many more), with a fixed Hypothesis seed (``MADRASA_FUZZ_SEED`` changes it), so a failure comes
back on the next run. Requests go to the app in-process; the world lives on an event loop of its own in a thread,
since Hypothesis drives the examples synchronously. Cases are drawn valid and invalid as schemathesis makes them
(any text, random ids, unknown fields), and valid ones tidied past the request guard and naming the seeded school's
real objects, so that handlers get past their lookups and write. Writes are fuzzed too: the database is this
module's own. All failures are collected and reported together, one per operation, account and check.
"""

from __future__ import annotations

import asyncio
import copy
import os
import re
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.errors import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from core.guard import INT_MAX, INT_MIN
from core.scope import Scope
from core.storage import build_key
from tests.conftest import PgServer, World, build_world, pg_database

T = TypeVar("T")

HOME = "lycee-ibn-batouta"
#: The accounts the fuzzer acts as, all in the home school (the parent is the demo father of a pupil there).
ACCOUNTS = {
    "teacher": f"teacher.{HOME}@test.ma",
    "director": f"director.{HOME}@test.ma",
    "parent": "parent@madrasa.demo",
}
EXAMPLES = int(os.environ.get("MADRASA_FUZZ_EXAMPLES", "15"))
SEED = int(os.environ.get("MADRASA_FUZZ_SEED", "20261207"))
#: Operations left out, and why. Anything else the document lists is fuzzed.
EXCLUDED = {
    # Revokes the session of the bearer token the fuzzer sends: every later request would be a 401.
    ("POST", "/api/v1/auth/logout"),
}
#: Values of the seeded school that tidy cases put in fields of these names (codes the school knows, a day of the
#: first term); the seeded objects' ids are added to them.
HINTS = {"level_code": "TC", "track_code": "TCS", "subject_code": "MATH", "scheduled_on": "2026-10-05"}
#: Stands for the ETag of the resource in a tidy case's ``If-Match``: :func:`send` reads it just before.
CURRENT = "fuzz-current-etag"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


class LoopThread:
    """An event loop running in a thread of its own; coroutines are handed to it from the test's thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=300)

    def close(self) -> None:
        """Stop the loop and its thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


@dataclass
class Fuzzed:
    """The fuzzed deployment: its world, its loop, the parsed document and the home school's real ids."""

    world: World
    loop: LoopThread
    schema: Any
    tidy_schema: Any
    known: dict[str, Any]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    """A seeded PostgreSQL world of the module's own (the fuzzer writes), on a loop in a thread."""
    with pg_database() as pg:
        loop = LoopThread()
        try:
            yield from _fuzzed(loop, pg, tmp_path_factory.mktemp("world-fuzz"))
        finally:
            loop.close()


def _fuzzed(loop: LoopThread, pg: PgServer, tmp: Path) -> Iterator[Fuzzed]:
    """Build the world on the loop, parse its document twice (as drawn, and for tidy cases); stop it afterwards."""
    # Access tokens outlive the longest run (make fuzz): an expired one would turn every later request into a 401.
    world = loop.run(build_world("postgres", tmp, pg, access_token_ttl=24 * 3600))
    try:
        document = loop.run(world.client.get("/schema/openapi.json")).json()
        for email in ACCOUNTS.values():
            loop.run(world.token(email))
        justification_id = loop.run(seed_justification(world))
        known = dict(world.objects[HOME]) | {"justification_id": justification_id, "file_id": world.files[HOME]}
        known |= {"slug": HOME, "action": "submit", **HINTS}
        # The seeded lesson is on Mondays: the Monday of last week, for its attendance.
        today = date.today()
        known["on_date"] = (today - timedelta(days=today.weekday() + 7)).isoformat()
        tidy_config = schemathesis.Config()
        tidy_config.projects.default.generation.update(allow_x00=False, allow_extra_parameters=False)
        schema = schemathesis.openapi.from_dict(document, config=schemathesis.Config())
        tidy_schema = schemathesis.openapi.from_dict(copy.deepcopy(document), config=tidy_config)
        yield Fuzzed(world, loop, schema, tidy_schema, known)
    finally:
        loop.run(world.client.aclose())
        loop.run(world.services.db.stop())


async def seed_justification(world: World) -> int:
    """A pending justification of the seeded pupil with a photo (a PNG), so its reads and review have an object."""
    school = await world.services.tenants.by_slug(HOME)
    cols = school.scope_columns()
    key = build_key(school.id, "justifications", "photo.png")
    await world.services.storage.put(key, PNG, "image/png", tenant_id=school.id)
    db = world.services.db
    async with db.scoped(Scope.everything()):
        row = await db.fetchrow(
            "INSERT INTO attendance_justification (region_id, province_id, school_id, student_id, submitted_by, "
            "reason_code, note, file_key, file_type, file_size, state, created_at, review_note) "
            "VALUES ({}, {}, {}, {}, {}, 'illness', '', {}, 'image/png', {}, 'pending', CURRENT_TIMESTAMP, '') "
            "RETURNING id",
            cols["region_id"],
            cols["province_id"],
            cols["school_id"],
            world.objects[HOME]["student_id"],
            world.objects[HOME]["guardian_id"],
            key,
            len(PNG),
        )
    assert row is not None
    return int(row["id"])


def operations(schema: Any) -> list[Any]:
    """The ``/api/v1`` operations of the document, less :data:`EXCLUDED`."""
    out = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.startswith("/api/v1") and (operation.method.upper(), operation.path) not in EXCLUDED:
            out.append(operation)
    # Deletions last, so the seeded objects they may remove are there for every other operation first.
    return sorted(out, key=lambda operation: operation.method.upper() == "DELETE")


def send(fuzzed: Fuzzed, case: Any, token: str) -> httpx.Response:
    """Send a case to the app in-process as the bearer of ``token``, under the home school's prefix. The body is
    encoded by ``requests`` from schemathesis' own arguments (as its transport would), then sent byte for byte."""
    kwargs = case.as_transport_kwargs(
        base_url=f"https://testserver/t/{HOME}", headers={"Authorization": f"Bearer {token}"}
    )
    prepared = requests.Request(
        method=kwargs["method"],
        url=kwargs["url"],
        headers=kwargs.get("headers"),
        params=kwargs.get("params"),
        cookies=kwargs.get("cookies"),
        json=kwargs.get("json"),
        data=kwargs.get("data"),
        files=kwargs.get("files"),
    ).prepare()
    body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
    client = fuzzed.world.client
    headers = dict(prepared.headers)
    if headers.get("If-Match") == CURRENT:  # a tidy case of a conditional write: the ETag a GET reads now
        read = fuzzed.loop.run(client.get(prepared.url or "", headers={"Authorization": f"Bearer {token}"}))
        headers["If-Match"] = read.headers.get("etag", "")
    request = client.build_request(prepared.method or "GET", prepared.url or "", headers=headers, content=body)
    return fuzzed.loop.run(client.send(request))


#: What the request guard refuses in any string (core.guard): tidy cases have it removed.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
#: A field name of the API; the document does not say its objects refuse others, so schemathesis adds random ones.
_FIELD = re.compile(r"[a-z][a-z0-9_]*")


def tidy(value: Any, known: dict[str, Any], key: str = "") -> Any:
    """A value without control characters, unknown fields or integers beyond 32 bits, whose fields naming a seeded
    object (``class_id``, ``homeroom_teacher_id``…) name the home school's real one."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and key:
        base = key.removesuffix("s") if key.endswith("_ids") else key
        real = next((known[name] for name in known if base.endswith(name) and name.endswith("_id")), None)
        return real if real is not None else max(INT_MIN, min(INT_MAX, value))
    if isinstance(value, str):
        hint = known.get(key)
        return hint if isinstance(hint, str) else _CONTROL.sub("", value)
    if isinstance(value, list):
        return [tidy(item, known, key) for item in value]
    if isinstance(value, dict):
        return {name: tidy(item, known, name) for name, item in value.items() if _FIELD.fullmatch(name)}
    return value


def tidied(case: Any, known: dict[str, Any]) -> Any:
    """A valid case brought past the request guard, naming the home school's objects, with the current ETag for a
    conditional write, so handlers go deeper."""
    if isinstance(case.body, (dict, list, str)):
        case.body = tidy(case.body, known)
    if case.query:
        case.query = tidy(case.query, known)
    if "428" in case.operation.responses.status_codes:
        case.headers = {**(case.headers or {}), "If-Match": CURRENT}
    return case


def strategy(fuzzed: Fuzzed, operation: Any) -> Any:
    """Valid and invalid cases as schemathesis draws them (random ids, any text, unknown fields), and tidy valid
    ones: no unknown fields, no control characters, the home school's real ids."""
    tidy_operation = fuzzed.tidy_schema[operation.path][operation.method.upper()]
    fixed = {p.name: fuzzed.known[p.name] for p in operation.path_parameters if p.name in fuzzed.known}
    return st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
        tidy_operation.as_strategy(GenerationMode.POSITIVE, path_parameters=fixed or None).map(
            lambda case: tidied(case, fuzzed.known)
        ),
    )


def fuzz_operation(fuzzed: Fuzzed, operation: Any, token: str) -> tuple[dict[str, str], set[int]]:
    """Run the examples of one operation: the failures found (one report per check), and the statuses seen."""
    found: dict[str, str] = {}
    statuses: set[int] = set()

    @seed(SEED)
    @settings(
        max_examples=EXAMPLES,
        phases=[Phase.generate],
        database=None,
        deadline=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(case=strategy(fuzzed, operation))
    def run(case: Any) -> None:
        try:
            response = send(fuzzed, case, token)
        except Exception as exc:  # an exception out of the app, past Litestar's handlers
            found.setdefault(f"{type(exc).__name__} raised", f"{exc!r}\n{case.as_curl_command()}")
            return
        statuses.add(response.status_code)
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:
            for failure in group.exceptions:
                found.setdefault(type(failure).__name__ + ": " + failure.title, str(group))

    run()
    return found, statuses


def test_the_api_keeps_its_document(fuzzed: Fuzzed) -> None:
    tokens = {account: fuzzed.loop.run(fuzzed.world.token(email)) for account, email in ACCOUNTS.items()}
    ops = operations(fuzzed.schema)
    assert len(ops) > 100
    failures = []
    answered: dict[str, set[str]] = {account: set() for account in ACCOUNTS}
    for operation in ops:
        for account, token in tokens.items():
            found, statuses = fuzz_operation(fuzzed, operation, token)
            if any(200 <= status < 300 for status in statuses):
                answered[account].add(operation.label)
            for title, report in found.items():
                failures.append(f"{operation.label} as {account}: {title}\n{report}")
    assert not failures, f"{len(failures)} failures:\n\n" + "\n\n".join(failures)
    # The run reached the handlers (a broken token or world would pass vacuously: 401 and 404 are documented).
    assert len(set().union(*answered.values())) >= len(ops) // 3, answered
    assert all(len(labels) >= 10 for labels in answered.values()), answered


def test_the_exclusions_name_real_operations(fuzzed: Fuzzed) -> None:
    listed = {(op.method.upper(), op.path) for op in (r.ok() for r in fuzzed.schema.get_all_operations())}
    assert EXCLUDED <= listed
