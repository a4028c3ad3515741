"""S3 down during an upload (files API and an absence's justification): a 503 with a clear message, and
neither a database row nor an object left behind, whichever side fails after the object is written."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from core.clock import FixedClock
from core.scope import Scope
from core.storage import S3Storage, StorageUnavailable
from tests.conftest import World, free_port, run_sync
from tests.test_attendance import DAY, PDF, Setup, _absence, justify

SCHOOL = "lycee-ibn-batouta"
DIRECTOR = f"director.{SCHOOL}@test.ma"
STORAGE_DOWN = "File storage is briefly unavailable; try again in a moment."


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    """``host:port`` of a moto S3 server over HTTP."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"{host}:{port}"
    finally:
        server.stop()


def s3(endpoint: str, bucket: str = "faults") -> S3Storage:
    return S3Storage(endpoint, "testing-access", "testing-secret", bucket, secure=False)


class AnswerLost(S3Storage):
    """Writes the object, then fails as if S3's answer never came back."""

    async def put(self, key: str, data: bytes, content_type: str, *, tenant_id: int) -> None:
        await super().put(key, data, content_type, tenant_id=tenant_id)
        raise StorageUnavailable("S3 request failed: read timed out")


class DatabaseDiesAfterWrite(S3Storage):
    """Writes the object, then the database connection of the open transaction dies (before its commit)."""

    world: World

    async def put(self, key: str, data: bytes, content_type: str, *, tenant_id: int) -> None:
        await super().put(key, data, content_type, tenant_id=tenant_id)
        db = self.world.services.db
        if db.dialect == "postgres":
            await db.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        raise sqlite3.OperationalError("database is locked")  # SQLite: the write lock could not be had


@pytest.fixture
def storage(world: World, moto: str) -> Iterator[dict[str, Any]]:
    """The world's storage swapped for S3 (moto) for one test; ``use(kind)`` picks the failure."""
    previous, clock = world.services.storage, world.services.clock
    world.services.clock = FixedClock(DAY)  # a school day with lessons (see tests/test_attendance.py)
    bucket = s3(moto)
    kinds: dict[str, S3Storage] = {
        "down": s3(f"127.0.0.1:{free_port()}"),  # nothing listens there
        "answer_lost": AnswerLost(moto, "testing-access", "testing-secret", "faults", secure=False),
        "db_dies": DatabaseDiesAfterWrite(moto, "testing-access", "testing-secret", "faults", secure=False),
    }
    kinds["db_dies"].world = world  # type: ignore[attr-defined]

    def use(kind: str) -> None:
        world.services.storage = kinds[kind]

    yield {"use": use, "bucket": bucket}
    world.services.storage, world.services.clock = previous, clock
    # The shared world keeps the rows this test made: their objects go where the world's pages will read them.
    for key in objects(bucket, ""):
        if key.startswith("t/") and key.split("/")[1].isdigit():
            data = bucket.client.get_object(bucket.bucket, key).read()
            run_sync(previous.put(key, data, "application/pdf", tenant_id=int(key.split("/")[1])))


def objects(storage: S3Storage, prefix: str) -> list[str]:
    return [o.object_name for o in storage.client.list_objects(storage.bucket, prefix=prefix, recursive=True)]


COUNTS = {
    "stored_file": "SELECT COUNT(*) FROM stored_file",
    "attendance_justification": "SELECT COUNT(*) FROM attendance_justification",
}


async def rows(world: World, table: str) -> int:
    async with world.services.db.scoped(Scope.everything(), write=False):
        return int(await world.services.db.fetchval(COUNTS[table]))


async def upload(world: World) -> Any:
    return await world.api(
        "POST",
        "/api/v1/files",
        as_=DIRECTOR,
        tenant=SCHOOL,
        files={"file": ("note.pdf", PDF, "application/pdf")},
    )


@pytest.mark.parametrize("failure", ["down", "answer_lost", "db_dies"])
async def test_a_failed_upload_leaves_no_row_and_no_object(world: World, storage: dict[str, Any], failure: str):
    bucket: S3Storage = storage["bucket"]
    await bucket.ensure_ready()
    prefix = f"t/{world.ids[SCHOOL]}/attachments/"
    before_rows, before_objects = await rows(world, "stored_file"), objects(bucket, prefix)
    storage["use"](failure)
    response = await upload(world)
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5"
    assert response.headers["content-type"].startswith("application/problem+json")
    expected = STORAGE_DOWN if failure != "db_dies" else "The service is briefly unavailable; try again in a moment."
    assert response.json()["detail"] == expected
    assert await rows(world, "stored_file") == before_rows
    assert objects(bucket, prefix) == before_objects
    # With S3 back, the same upload goes through and its object is there.
    world.services.storage = bucket
    response = await upload(world)
    assert response.status_code == 201, response.text
    assert len(objects(bucket, prefix)) == len(before_objects) + 1


@pytest.mark.parametrize("failure", ["down", "answer_lost"])
async def test_a_justification_whose_document_cannot_be_stored(world: World, storage: dict[str, Any], failure: str):
    bucket: S3Storage = storage["bucket"]
    await bucket.ensure_ready()
    s = await Setup(world).build()
    taken = await s.take([{"student_id": s.pupils[0], "status": "absent"}])
    assert taken.status_code == 200, taken.text
    mark = await _absence(world, s, s.pupils[0])
    prefix = f"t/{world.ids[SCHOOL]}/justifications/"
    before_rows, before_objects = await rows(world, "attendance_justification"), objects(bucket, prefix)
    storage["use"](failure)
    response = await justify(world, s, [mark], files={"file": ("certificat.pdf", PDF, "application/pdf")})
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5" and response.json()["detail"] == STORAGE_DOWN
    assert await rows(world, "attendance_justification") == before_rows
    assert objects(bucket, prefix) == before_objects
    world.services.storage = bucket
    response = await justify(world, s, [mark], files={"file": ("certificat.pdf", PDF, "application/pdf")})
    assert response.status_code == 201, response.text
    assert len(objects(bucket, prefix)) == len(before_objects) + 1
