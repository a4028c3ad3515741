"""Shared fixtures: real PostgreSQL (own database and roles) and SQLite worlds, an HTTP client, accounts.

Every test that takes ``world`` runs twice: on SQLite and on PostgreSQL with row-level security.
The world is the demo (two regions × two schools each, a programme across both regions) plus a
director, a teacher and a stored file in every school. With ``CI=true`` a missing service fails
the run instead of skipping.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiosmtpd.controller import Controller

from core.app import build_plugin_host, build_services, create_app
from core.config import Settings, load_settings
from core.demo import load_demo
from core.identity import sha256
from core.mail import SmtpMailer
from core.middleware import SESSION_COOKIE
from core.migrate import migrate
from core.scope import Scope
from core.services import Services
from tests.doubles import OutboxMailer

CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get("MADRASA_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = ["sqlite", "postgres"]
SCHOOLS = ["lycee-ibn-batouta", "college-al-khawarizmi", "lycee-moulay-youssef", "ecole-al-amal"]
PASSWORD = "correct-horse-42"


def missing_service(message: str) -> None:
    """Skip locally, fail on CI."""
    if CI:
        pytest.fail(f"{message} (CI=true: a missing service is a failure)")
    pytest.skip(message)


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PgServer:
    """A throw-away database with an owner role and a plain application role."""

    admin_url: str
    database: str
    owner: str
    app_role: str
    password: str
    port: int = 5432

    def url(self, role: str) -> str:
        """Connection URL for a role."""
        return f"postgresql://{role}:{self.password}@127.0.0.1:{self.port}/{self.database}"


def run_sync(coro: Any) -> Any:
    """Run a coroutine on a private loop in a thread (set-up that must not touch the test loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _create_pg(server: PgServer) -> None:
    admin = await asyncpg.connect(server.admin_url, timeout=5)
    try:
        await admin.execute(f"CREATE ROLE {server.owner} LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD '{server.password}'")
        await admin.execute(f"CREATE ROLE {server.app_role} LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD '{server.password}'")
        await admin.execute(f"CREATE DATABASE {server.database} OWNER {server.owner}")
    finally:
        await admin.close()
    db_admin = await asyncpg.connect(server.admin_url.rsplit("/", 1)[0] + f"/{server.database}")
    try:
        await db_admin.execute(f"ALTER SCHEMA public OWNER TO {server.owner}")
    finally:
        await db_admin.close()


async def _drop_pg(server: PgServer) -> None:
    admin = await asyncpg.connect(server.admin_url, timeout=5)
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", server.database
        )
        await admin.execute(f"DROP DATABASE IF EXISTS {server.database}")
        await admin.execute(f"DROP ROLE IF EXISTS {server.app_role}")
        await admin.execute(f"DROP ROLE IF EXISTS {server.owner}")
    finally:
        await admin.close()


async def _pg_reachable() -> str | None:
    try:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        return str(exc)
    await conn.close()
    return None


@contextmanager
def pg_database() -> Iterator[PgServer]:
    """A throw-away database and its roles on the shared server (skipped, or failed on CI, when unreachable)."""
    problem = run_sync(_pg_reachable())
    if problem:
        missing_service(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {problem}")
    suffix = f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}_{secrets.token_hex(3)}"
    server = PgServer(
        PG_ADMIN_URL,
        f"madrasa_test_{suffix}",
        f"madrasa_owner_{suffix}",
        f"madrasa_app_{suffix}",
        secrets.token_hex(12),
    )
    run_sync(_create_pg(server))
    try:
        yield server
    finally:
        run_sync(_drop_pg(server))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """Create roles and a database for this test process; drop them afterwards."""
    with pg_database() as server:
        yield server


def make_settings(backend: str, tmp: Path, pg: PgServer | None, **overrides: Any) -> Settings:
    """Settings for a test world."""
    base: dict[str, Any] = {
        "data_dir": tmp,
        "secret_key": "t" * 48,
        "allowed_plugins": ("example",),
        "password_hash_profile": "test",
        "storage_root": tmp / "files",
        "log_level": "WARNING",
        "db_pool_min": 1,
        "db_pool_max": 8,
        "metrics_token": "metrics-token-of-the-test-world",  # /metrics on the app port asks for it
        "bulk_exports_per_hour": 1000,  # a session's accounts export often; tests/test_bulk_exports.py lowers it
    }
    if backend == "postgres":
        assert pg is not None
        base["database_url"] = pg.url(pg.app_role)
        base["migration_database_url"] = pg.url(pg.owner)
    base.update(overrides)
    return load_settings({}, **base)


@dataclass
class World:
    """A migrated, seeded deployment with an HTTP client."""

    backend: str
    settings: Settings
    services: Services
    app: Any
    client: httpx.AsyncClient
    passwords: dict[str, str]
    pg: PgServer | None
    ids: dict[str, int] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)
    #: Per school: ids of a seeded class, room, pupil, guardian, teacher and timetable slot.
    objects: dict[str, dict[str, int]] = field(default_factory=dict)
    _tokens: dict[tuple[str, str | None], str] = field(default_factory=dict)
    _cookies: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def litestar(self) -> Any:
        """The bare Litestar app (for route enumeration)."""
        return self.app.litestar

    async def token(self, email: str, tenant: str | None = None) -> str:
        """An access token for an account (cached)."""
        key = (email, tenant)
        if key not in self._tokens:
            body: dict[str, Any] = {"email": email, "password": self.passwords[email]}
            if tenant:
                body["tenant"] = tenant
            response = await self.client.post("/api/v1/auth/token", json=body)
            assert response.status_code == 200, response.text
            self._tokens[key] = response.json()["access_token"]
        return self._tokens[key]

    async def sql(self, query: str, *args: Any) -> Any:
        """A single value, read with the platform scope (RLS would hide tenant rows otherwise)."""
        async with self.services.db.scoped(Scope.everything(), write=False):
            return await self.services.db.fetchval(query, *args)

    async def web_session(self, email: str) -> tuple[str, str]:
        """A logged-in browser session: ``(cookie, csrf token)`` (cached)."""
        if email not in self._cookies:
            client = new_client(self.app)
            response = await form_login(client, "/login", email, self.passwords[email])
            await client.aclose()
            assert response.status_code == 302, response.text
            cookie = response.cookies[SESSION_COOKIE]
            csrf = await self.services.db.fetchval(
                "SELECT csrf_token FROM auth_session WHERE secret_hash = {}", sha256(cookie)
            )
            self._cookies[email] = (cookie, csrf)
        return self._cookies[email]

    async def api(
        self, method: str, path: str, *, as_: str | None = None, tenant: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Call the app as an account (bearer on the API, session cookie on pages), under ``/t/<tenant>``."""
        headers = dict(kwargs.pop("headers", {}) or {})
        if as_ is not None and path.startswith("/api/"):
            headers["authorization"] = f"Bearer {await self.token(as_)}"
        elif as_ is not None:
            cookie, csrf = await self.web_session(as_)
            headers["cookie"] = f"{SESSION_COOKIE}={cookie}"
            headers["x-csrf-token"] = csrf
            headers.setdefault("accept", "text/html")
        url = f"/t/{tenant}{path}" if tenant else path
        return await self.client.request(method, url, headers=headers, **kwargs)

    async def add_person(self, email: str, role: str, tenant: str) -> str:
        """Create an account with a role at a node; returns the e-mail."""
        db = self.services.db
        now = datetime.now(UTC)
        async with db.transaction():
            pid = await db.fetchval("SELECT id FROM person WHERE email = {}", email)
            if pid is None:
                row = await db.fetchrow(
                    "INSERT INTO person (email, password_hash, full_name, full_name_ar, locale, active, created_at) "
                    "VALUES ({}, {}, {}, {}, 'fr', {}, {}) RETURNING id",
                    email,
                    self.services.identity.hash_password(PASSWORD),
                    email.split("@")[0],
                    "",
                    True,
                    now,
                )
                assert row is not None
                pid = row["id"]
            await db.execute(
                "INSERT INTO membership (person_id, role, tenant_id, created_at) VALUES ({}, {}, {}, {})",
                pid,
                role,
                self.ids[tenant],
                now,
            )
        self.services.grants.invalidate(pid)
        self.passwords[email] = PASSWORD
        return email


async def form_login(client: httpx.AsyncClient, path: str, email: str, password: str) -> httpx.Response:
    """Log in through the portal's form as a browser does: fetch it (CSRF cookie and field), then post it."""
    form = await client.get(path, headers={"accept": "text/html"})
    assert form.status_code == 200, form.text
    token = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return await client.post(path, data={"email": email, "password": password, "csrf_token": token})


def new_client(app: Any, ip: str = "127.0.0.1") -> httpx.AsyncClient:
    """An HTTP client talking to the ASGI app in-process, over https so Secure cookies flow."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(ip, 40000)),
        base_url="https://testserver",
        follow_redirects=False,
    )


async def build_world(backend: str, tmp: Path, pg: PgServer | None, **overrides: Any) -> World:
    """Migrate, load the demo, add staff and a file per school (``overrides``: settings of this world)."""
    settings = make_settings(backend, tmp, pg, **overrides)
    services = build_services(settings, plugins=build_plugin_host(settings), mailer=OutboxMailer())
    await services.db.start()
    await services.storage.ensure_ready()
    await migrate(services.db, services.migration_sets)
    accounts = await load_demo(services)
    app = create_app(settings, services=services)
    client = new_client(app)
    world = World(backend, settings, services, app, client, {a.email: a.password for a in accounts}, pg)
    rows = await services.db.fetch("SELECT id, slug FROM tenant")
    world.ids = {r["slug"]: r["id"] for r in rows}
    for school in SCHOOLS:
        await world.add_person(f"director.{school}@test.ma", "school_director", school)
        await world.add_person(f"teacher.{school}@test.ma", "teacher", school)
        response = await world.api(
            "POST",
            "/api/v1/files",
            as_=f"director.{school}@test.ma",
            tenant=school,
            files={"file": (f"{school}.pdf", b"%PDF-1.4\n% test\n", "application/pdf")},
        )
        assert response.status_code == 201, response.text
        world.files[school] = response.json()["id"]
    for number, school in enumerate(SCHOOLS, start=1):
        world.objects[school] = await seed_school(world, school, number)
    return world


async def link_guardian(
    world: World, school: str, student_id: int, email: str, full_name: str, *, as_: str | None = None
) -> int:
    """Link a guardian as the school's director; an invitation (someone outside the school's reach) is accepted
    with the mailed token, as the guardian would. Returns the guardian's person id.

    The invitation goes to an outbox of its own, whatever mailer the test has put in place (an SMTP inbox
    counting a family's messages sees only what the test itself causes)."""
    outbox, previous = OutboxMailer(), world.services.mailer
    world.services.mailer = outbox
    try:
        response = await world.api(
            "POST",
            f"/api/v1/school/students/{student_id}/guardians",
            as_=as_ or f"director.{school}@test.ma",
            tenant=school,
            json={"email": email, "full_name": full_name},
        )
    finally:
        world.services.mailer = previous
    assert response.status_code in (201, 202), response.text
    if response.json()["status"] == "invited":
        mail = next(m for m in reversed(outbox.sent) if m.to == email.strip().lower())
        accepted = await world.api(
            "POST", "/api/v1/guardian-invitations/accept", json={"token": mail.link.rsplit("/", 1)[-1]}
        )
        assert accepted.status_code == 200, accepted.text
    return int(await world.sql("SELECT id FROM person WHERE email = {}", email.strip().lower()))


async def seed_school(world: World, school: str, number: int) -> dict[str, int]:
    """A class, a room, a pupil with a guardian, a teacher's assignment and a lesson, through the API."""
    director = f"director.{school}@test.ma"

    async def post(path: str, body: dict[str, Any]) -> int:
        response = await world.api("POST", path, as_=director, tenant=school, json=body)
        assert response.status_code in (200, 201), f"{path}: {response.text}"
        return int(response.json()["id"])

    teacher = await world.services.db.fetchval("SELECT id FROM person WHERE email = {}", f"teacher.{school}@test.ma")
    class_id = await post("/api/v1/school/classes", {"name": "TEST-1", "level_code": "TC", "track_code": "TCS"})
    room_id = await post("/api/v1/school/rooms", {"name": "Salle 1"})
    student_id = await post(
        "/api/v1/school/students",
        {
            "national_code": f"S{number:09d}",
            "first_name": f"Pupil{number}",
            "last_name": "Test",
            "first_name_ar": "تلميذ",
            "last_name_ar": "اختبار",
            "class_id": class_id,
        },
    )
    guardian = f"guardian.{school}@test.ma"
    guardian_id = await link_guardian(world, school, student_id, guardian, f"Guardian of {number}")
    await world.services.identity.set_password(guardian_id, PASSWORD)
    world.passwords[guardian] = PASSWORD
    await post("/api/v1/school/assignments", {"teacher_id": teacher, "class_id": class_id, "subject_code": "MATH"})
    slot_id = await post(
        "/api/v1/school/timetable",
        {
            "class_id": class_id,
            "subject_code": "MATH",
            "teacher_id": teacher,
            "room_id": room_id,
            "weekday": 1,
            "starts_at": "08:00",
            "ends_at": "10:00",
        },
    )
    term_id = await world.services.db.fetchval("SELECT id FROM term WHERE tenant_id IS NULL ORDER BY number LIMIT 1")
    assessment_id = await post(
        "/api/v1/grades/assessments",
        {
            "class_id": class_id,
            "subject_code": "MATH",
            "term_id": term_id,
            "scheduled_on": "2026-10-05",
            "title": "Contrôle 1",
        },
    )
    sheet_id = await world.sql("SELECT sheet_id FROM grade_assessment WHERE id = {}", assessment_id)
    # A finished job and a bulletin row per school, so the isolation suite can name another school's.
    tenant = await world.services.tenants.by_slug(school)
    cols = tenant.scope_columns()
    job_id = f"00000000-0000-4000-8000-{number:012d}"
    db = world.services.db
    async with db.scoped(Scope.everything()):
        await db.execute(
            "INSERT INTO job (id, kind, params, status, done, total, message, created_by, created_at, region_id, "
            "province_id, school_id) VALUES ({}, 'test.seed', {}, 'done', 1, 1, '', NULL, CURRENT_TIMESTAMP, "
            "{}, {}, {})",
            job_id,
            "{}",
            cols["region_id"],
            cols["province_id"],
            cols["school_id"],
        )
        bulletin = await db.fetchrow(
            "INSERT INTO grade_bulletin (region_id, province_id, school_id, term_id, student_id, class_id, "
            "storage_key, locale, created_at) VALUES ({}, {}, {}, {}, {}, {}, {}, 'ar', CURRENT_TIMESTAMP) "
            "RETURNING id",
            cols["region_id"],
            cols["province_id"],
            cols["school_id"],
            term_id,
            student_id,
            class_id,
            f"t/{tenant.id}/bulletins/seed/none.pdf",
        )
    return {
        "job_id": job_id,
        "bulletin_id": bulletin["id"],
        "term_id": term_id,
        "assessment_id": assessment_id,
        "sheet_id": sheet_id,
        "class_id": class_id,
        "room_id": room_id,
        "student_id": student_id,
        "guardian_id": guardian_id,
        "teacher_id": teacher,
        "slot_id": slot_id,
    }


@pytest.fixture(scope="session", params=BACKENDS)
async def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    """The seeded deployment on each backend (shared by the tests of a session)."""
    backend = request.param
    pg = request.getfixturevalue("pg_server") if backend == "postgres" else None
    w = await build_world(backend, tmp_path_factory.mktemp(f"world-{backend}"), pg)
    try:
        yield w
    finally:
        await w.client.aclose()
        await w.services.db.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run ``postgres_only`` tests on the PostgreSQL world only (deselected, not skipped, on SQLite)."""
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        if item.get_closest_marker("postgres_only") and callspec and callspec.params.get("world") == "sqlite":
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture
def platform_scope() -> Scope:
    """The platform scope."""
    return Scope.everything()


class Inbox:
    """Messages received by the tests' SMTP server (aiosmtpd)."""

    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server on a free local port, for the whole session."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def inbox(world: World, smtp_server: tuple[Inbox, int]) -> Iterator[Inbox]:
    """The world's mail goes over SMTP to :func:`smtp_server` for one test; its inbox starts empty."""
    box, port = smtp_server
    previous = world.services.mailer
    world.services.mailer = SmtpMailer("127.0.0.1", port, "no-reply@madrasa.test")
    box.messages.clear()
    yield box
    world.services.mailer = previous
