"""Schemathesis over the whole ``/api/v1`` OpenAPI, as a teacher, a director and a parent, on a seeded PostgreSQL
deployment of its own: no server error, no status code, media type or response body the document does not declare.

Every operation gets :data:`EXAMPLES` generated requests per account (``MADRASA_FUZZ_EXAMPLES`` raises it; ``make
fuzz`` runs with many more), with a fixed Hypothesis seed (``MADRASA_FUZZ_SEED`` changes it), so a failure comes
back on the next run. Requests go to the app in-process; the world lives on an event loop of its own in a thread,
since Hypothesis drives the examples synchronously. Cases are drawn valid (random ids, and the seeded school's
real ids so the handlers get past their lookups) and invalid (schemathesis' negative mode). Writes are fuzzed too:
the database is this module's own. All failures are collected and reported together, one per operation, account
and check.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
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

from tests.conftest import World, build_world, pg_database

T = TypeVar("T")

HOME = "lycee-ibn-batouta"
#: The accounts the fuzzer acts as, all in the home school (the parent is the demo father of a pupil there).
ACCOUNTS = {
    "teacher": f"teacher.{HOME}@test.ma",
    "director": f"director.{HOME}@test.ma",
    "parent": "parent@madrasa.demo",
}
EXAMPLES = int(os.environ.get("MADRASA_FUZZ_EXAMPLES", "20"))
SEED = int(os.environ.get("MADRASA_FUZZ_SEED", "20261207"))
#: Operations left out, and why. Anything else the document lists is fuzzed.
EXCLUDED = {
    # Revokes the session of the bearer token the fuzzer sends: every later request would be a 401.
    ("POST", "/api/v1/auth/logout"),
}
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
    known: dict[str, Any]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    """A seeded PostgreSQL world of the module's own (the fuzzer writes), on a loop in a thread."""
    with pg_database() as pg:
        loop = LoopThread()
        world = loop.run(build_world("postgres", tmp_path_factory.mktemp("world-fuzz"), pg))
        try:
            document = loop.run(world.client.get("/schema/openapi.json")).json()
            for email in ACCOUNTS.values():
                loop.run(world.token(email))
            objects = world.objects[HOME]
            known = {name: objects[name] for name in objects}
            known |= {"file_id": world.files[HOME], "slug": HOME, "action": "submit"}
            yield Fuzzed(world, loop, schemathesis.openapi.from_dict(document), known)
        finally:
            loop.run(world.client.aclose())
            loop.run(world.services.db.stop())
            loop.close()


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
    request = client.build_request(prepared.method or "GET", prepared.url or "", headers=prepared.headers, content=body)
    return fuzzed.loop.run(client.send(request))


def strategy(operation: Any, known: dict[str, Any]) -> Any:
    """Valid cases (random ids, and the home school's real ones), and invalid ones."""
    names = {p.name for p in operation.path_parameters}
    fixed = {name: known[name] for name in names if name in known}
    options = [operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)]
    if fixed:
        options.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=fixed))
    return st.one_of(options)


def fuzz_operation(fuzzed: Fuzzed, operation: Any, token: str) -> dict[str, str]:
    """Run the examples of one operation; the failures found, one report per check."""
    found: dict[str, str] = {}

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
    @given(case=strategy(operation, fuzzed.known))
    def run(case: Any) -> None:
        response = send(fuzzed, case, token)
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:
            for failure in group.exceptions:
                found.setdefault(type(failure).__name__ + ": " + failure.title, str(group))

    run()
    return found


def test_the_api_keeps_its_document(fuzzed: Fuzzed) -> None:
    tokens = {account: fuzzed.loop.run(fuzzed.world.token(email)) for account, email in ACCOUNTS.items()}
    ops = operations(fuzzed.schema)
    assert len(ops) > 100
    failures = []
    for operation in ops:
        for account, token in tokens.items():
            for title, report in fuzz_operation(fuzzed, operation, token).items():
                failures.append(f"{operation.method.upper()} {operation.path} as {account}: {title}\n{report}")
    assert not failures, f"{len(failures)} failures:\n\n" + "\n\n".join(failures)


def test_the_exclusions_name_real_operations(fuzzed: Fuzzed) -> None:
    listed = {(op.method.upper(), op.path) for op in (r.ok() for r in fuzzed.schema.get_all_operations())}
    assert EXCLUDED <= listed
