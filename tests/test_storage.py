"""Storage backends: the same behaviour on the file system and on S3 (moto server over HTTP)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from core.config import load_settings
from core.errors import Invalid
from core.storage import (
    ContentPolicy,
    FileSystemStorage,
    InvalidKey,
    ObjectInfo,
    ObjectNotFound,
    ObjectTooLarge,
    S3Storage,
    Storage,
    StorageError,
    UnsupportedType,
    build_key,
    check_key,
    make_storage,
    sniff_content_type,
)
from tests.conftest import World

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(32)
PDF_BYTES = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"
JPEG_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(16)
GIF_BYTES = b"GIF89a" + bytes(16)
WEBP_BYTES = b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(16)
ZIP_BYTES = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(20)
CSV_BYTES = "name,grade\nفاطمة,9\nOmar,10\n".encode()
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

ARABIC_NAME = "شهادة الطالب.pdf"
KEY_RE = re.compile(r"t/(\d+)/([a-z0-9_-]{1,40})/([0-9a-f]{32})/([^/\\]+)")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """``host:port`` of a moto server speaking plain HTTP on localhost."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"{host}:{port}"
    finally:
        server.stop()


def _s3(endpoint: str, bucket: str | None = None) -> S3Storage:
    return S3Storage(
        endpoint=endpoint,
        access_key="testing-access",
        secret_key="testing-secret",
        bucket=bucket or f"madrasa-{uuid.uuid4().hex[:12]}",
        secure=False,
        region="us-east-1",
    )


@pytest.fixture(params=["fs", "s3"])
def make_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Storage]:
    """Factory for a not-yet-ready backend of the parametrised kind (fresh root / bucket)."""
    if request.param == "fs":
        counter = iter(range(1000))
        return lambda: FileSystemStorage(tmp_path / f"root{next(counter)}")
    endpoint = request.getfixturevalue("moto_endpoint")
    return lambda: _s3(endpoint)


@pytest.fixture
async def storage(make_backend: Callable[[], Storage]) -> AsyncIterator[Storage]:
    backend = make_backend()
    await backend.ensure_ready()
    yield backend


def stored_names(storage: Storage) -> list[str]:
    """Everything physically present in the backend (files under the root / objects in the bucket)."""
    if isinstance(storage, FileSystemStorage):
        base = storage.root.parent  # also catches files that escaped the root
        return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())
    assert isinstance(storage, S3Storage)
    return sorted(o.object_name or "" for o in storage.client.list_objects(storage.bucket, recursive=True))


# --------------------------------------------------------------------------- both backends


async def test_round_trip(storage: Storage) -> None:
    key = build_key(7, "reports", "report card.pdf")
    assert not await storage.exists(key, tenant_id=7)

    await storage.put(key, PDF_BYTES, "application/pdf", tenant_id=7)

    assert await storage.exists(key, tenant_id=7)
    assert await storage.get(key, tenant_id=7) == PDF_BYTES
    assert await storage.stat(key, tenant_id=7) == ObjectInfo(
        key=key, size=len(PDF_BYTES), content_type="application/pdf"
    )

    await storage.delete(key, tenant_id=7)
    assert not await storage.exists(key, tenant_id=7)
    with pytest.raises(ObjectNotFound):
        await storage.get(key, tenant_id=7)


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (PNG_BYTES, "image/png"),
        (JPEG_BYTES, "image/jpeg"),
        (CSV_BYTES, "text/csv"),
        (ZIP_BYTES, XLSX),
        (b"", "text/plain"),
    ],
    ids=["png", "jpeg", "csv", "xlsx", "empty"],
)
async def test_content_type_preserved(storage: Storage, data: bytes, content_type: str) -> None:
    key = build_key(1, "uploads", "file")
    await storage.put(key, data, content_type, tenant_id=1)
    info = await storage.stat(key, tenant_id=1)
    assert info.content_type == content_type
    assert info.size == len(data)
    assert await storage.get(key, tenant_id=1) == data


async def test_overwrite_replaces_data_and_type(storage: Storage) -> None:
    key = build_key(1, "uploads", "x")
    await storage.put(key, CSV_BYTES, "text/csv", tenant_id=1)
    await storage.put(key, PNG_BYTES, "image/png", tenant_id=1)
    assert await storage.get(key, tenant_id=1) == PNG_BYTES
    assert (await storage.stat(key, tenant_id=1)).content_type == "image/png"


async def test_arabic_filename_round_trip(storage: Storage) -> None:
    key = build_key(3, "certificates", ARABIC_NAME)
    assert key.endswith("/" + ARABIC_NAME)
    await storage.put(key, PDF_BYTES, "application/pdf", tenant_id=3)
    assert await storage.get(key, tenant_id=3) == PDF_BYTES
    assert any(name.endswith(ARABIC_NAME) for name in stored_names(storage))


async def test_missing_object(storage: Storage) -> None:
    key = build_key(1, "uploads", "ghost.txt")
    with pytest.raises(ObjectNotFound):
        await storage.get(key, tenant_id=1)
    with pytest.raises(ObjectNotFound):
        await storage.stat(key, tenant_id=1)
    assert await storage.exists(key, tenant_id=1) is False
    await storage.delete(key, tenant_id=1)  # deleting a missing object is not an error


async def test_ensure_ready_is_idempotent(make_backend: Callable[[], Storage]) -> None:
    backend = make_backend()
    with pytest.raises(StorageError):
        await backend.ping()  # no root folder / bucket yet
    await backend.ensure_ready()
    await backend.ensure_ready()
    await backend.ping()
    key = build_key(1, "uploads", "a.txt")
    await backend.put(key, b"hello", "text/plain", tenant_id=1)
    await backend.ensure_ready()  # does not wipe anything
    assert await backend.get(key, tenant_id=1) == b"hello"


BAD_KEYS = [
    "t/1/../../../escape.txt",
    "t/1/uploads/../../2/uploads/x.txt",
    "../t/1/x.txt",
    "t/1/uploads/..",
    "/t/1/uploads/x.txt",
    "t/1//x.txt",
    "t/1/uploads\\x.txt",
    "t/1/uploads/x\x00.txt",
    "t/1/uploads/x\n.txt",
    "t/1/uploads/.hidden",
    "t/1/uploads/x.txt.meta",
    "t/1/",
    "t/1",
    "",
    "uploads/x.txt",
    "t/2/uploads/x.txt",  # another tenant
    "t/12/uploads/x.txt",  # prefix of tenant 1 is "t/1/", not "t/1"
]


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_bad_keys_refused_and_nothing_written(storage: Storage, key: str) -> None:
    before = stored_names(storage)
    with pytest.raises(InvalidKey):
        await storage.put(key, b"pwned", "text/plain", tenant_id=1)
    with pytest.raises(InvalidKey):
        await storage.get(key, tenant_id=1)
    with pytest.raises(InvalidKey):
        await storage.stat(key, tenant_id=1)
    with pytest.raises(InvalidKey):
        await storage.exists(key, tenant_id=1)
    with pytest.raises(InvalidKey):
        await storage.delete(key, tenant_id=1)
    assert stored_names(storage) == before


async def test_other_tenant_cannot_read_or_delete(storage: Storage) -> None:
    key = build_key(2, "uploads", "secret.csv")
    await storage.put(key, CSV_BYTES, "text/csv", tenant_id=2)
    for call in (storage.get, storage.stat, storage.exists, storage.delete):
        with pytest.raises(InvalidKey):
            await call(key, tenant_id=1)
    with pytest.raises(InvalidKey):
        await storage.put(key, b"overwrite", "text/plain", tenant_id=1)
    assert await storage.get(key, tenant_id=2) == CSV_BYTES


# --------------------------------------------------------------------------- file-system specifics


async def test_fs_layout_sidecar_and_no_temp_files(tmp_path: Path) -> None:
    fs = FileSystemStorage(tmp_path / "files")
    await fs.ensure_ready()
    key = build_key(5, "photos", "me.png")
    await fs.put(key, PNG_BYTES, "image/png", tenant_id=5)
    path = tmp_path / "files" / key
    assert path.read_bytes() == PNG_BYTES
    assert '"image/png"' in path.with_name(path.name + ".meta").read_text()
    assert sorted(p.name for p in path.parent.iterdir()) == ["me.png", "me.png.meta"]
    await fs.delete(key, tenant_id=5)
    assert not path.parent.exists()  # empty per-object folder removed


async def test_fs_symlink_escape_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    fs = FileSystemStorage(tmp_path / "files")
    await fs.ensure_ready()
    (tmp_path / "files" / "t" / "1").mkdir(parents=True)
    (tmp_path / "files" / "t" / "1" / "link").symlink_to(outside)
    with pytest.raises(InvalidKey):
        await fs.put("t/1/link/x.txt", b"x", "text/plain", tenant_id=1)
    assert list(outside.iterdir()) == []


async def test_fs_ping_fails_on_missing_root(tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        await FileSystemStorage(tmp_path / "nope").ping()


# --------------------------------------------------------------------------- keys


def test_build_key_shape() -> None:
    key = build_key(42, "student-photos_2", "Photo 1.JPG")
    match = KEY_RE.fullmatch(key)
    assert match is not None
    assert match.group(1) == "42"
    assert match.group(2) == "student-photos_2"
    assert match.group(4) == "Photo 1.JPG"
    assert build_key(42, "x", "a") != build_key(42, "x", "a")  # fresh uuid each time
    assert check_key(key, 42) == key


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system32\\cmd.exe", "cmd.exe"),
        ("C:\\Users\\a\\report.pdf", "report.pdf"),
        (ARABIC_NAME, ARABIC_NAME),
        ("تقرير", "تقرير"),
        ("", "file"),
        ("..", "file"),
        ("/", "file"),
        ("   ", "file"),
        ("a..b.pdf", "a.b.pdf"),
        ("bad\x00name\x1f.txt", "badname.txt"),
        ("evil\u202eexe.pdf", "evilexe.pdf"),
        (".bashrc", "bashrc"),
        ("x.meta", "x_meta"),
        ('what?<>:"|*.txt', "what_______.txt"),
    ],
)
def test_build_key_sanitises_filename(filename: str, expected: str) -> None:
    key = build_key(1, "uploads", filename)
    match = KEY_RE.fullmatch(key)
    assert match is not None, key
    assert match.group(4) == expected
    assert ".." not in key
    assert check_key(key, 1) == key


def test_build_key_trims_long_names() -> None:
    name = "ع" * 300 + ".pdf"
    safe = KEY_RE.fullmatch(build_key(1, "uploads", name)).group(4)  # type: ignore[union-attr]
    assert len(safe) <= 120
    assert safe.endswith(".pdf")
    long_ascii = KEY_RE.fullmatch(build_key(1, "uploads", "a" * 500)).group(4)  # type: ignore[union-attr]
    assert long_ascii == "a" * 120


@pytest.mark.parametrize("category", ["", "Uploads", "a/b", "../x", "x" * 41, "ملفات", "a b"])
def test_build_key_rejects_bad_category(category: str) -> None:
    with pytest.raises(InvalidKey):
        build_key(1, category, "a.txt")


@pytest.mark.parametrize("tenant_id", [0, -1, True])
def test_build_key_rejects_bad_tenant(tenant_id: int) -> None:
    with pytest.raises(InvalidKey):
        build_key(tenant_id, "uploads", "a.txt")


@pytest.mark.parametrize("key", BAD_KEYS)
def test_check_key_refuses(key: str) -> None:
    with pytest.raises(InvalidKey):
        check_key(key, 1)


# --------------------------------------------------------------------------- content policy

POLICY = ContentPolicy(
    max_bytes=1024,
    allowed_types=frozenset({"image/png", "image/jpeg", "application/pdf", "text/csv", XLSX}),
)


def test_policy_too_large() -> None:
    with pytest.raises(ObjectTooLarge) as info:
        POLICY.check(1025, "image/png")
    assert info.value.limit == 1024
    with pytest.raises(ObjectTooLarge):
        POLICY.check(0, "image/png", PNG_BYTES + bytes(2000))
    assert POLICY.check(1024, "image/png") == "image/png"


@pytest.mark.parametrize("content_type", ["image/svg+xml", "text/html", "application/x-msdownload", ""])
def test_policy_unsupported_type(content_type: str) -> None:
    with pytest.raises(UnsupportedType) as info:
        POLICY.check(10, content_type)
    assert info.value.content_type == content_type


@pytest.mark.parametrize(
    ("data", "declared"),
    [
        (PNG_BYTES, "application/pdf"),  # a PNG dressed up as a PDF
        (PDF_BYTES, "image/png"),
        (ZIP_BYTES, "image/jpeg"),
        (PNG_BYTES, XLSX),
        (PNG_BYTES, "text/csv"),
        (b"col\x00umn", "text/csv"),
        (b"\xff\xfe\xfa", "text/csv"),
    ],
    ids=["png-as-pdf", "pdf-as-png", "zip-as-jpeg", "png-as-xlsx", "png-as-csv", "nul-csv", "latin-csv"],
)
def test_policy_rejects_mismatched_content(data: bytes, declared: str) -> None:
    with pytest.raises(UnsupportedType):
        POLICY.check(len(data), declared, data)


@pytest.mark.parametrize("declared", ["application/pdf", "image/png", XLSX])
def test_policy_says_an_empty_file_is_empty(declared: str) -> None:
    """Zero bytes of a PDF, an image or a document: refused as empty (400), not as a type not accepted."""
    for data in (b"", None):
        with pytest.raises(Invalid) as info:
            POLICY.check(0, declared, data)
        assert info.value.status_code == 400
        assert info.value.code == "empty_file" and "empty" in info.value.detail
    assert POLICY.check(0, "text/csv", b"") == "text/csv"  # an empty text file stays acceptable


async def test_upload_of_an_empty_pdf_answers_that_it_is_empty(world: World) -> None:
    response = await world.api(
        "POST",
        "/api/v1/files",
        as_="director.lycee-ibn-batouta@test.ma",
        tenant="lycee-ibn-batouta",
        files={"file": ("empty.pdf", b"", "application/pdf")},
        data={"category": "attachments"},
    )
    assert response.status_code == 400, response.text
    assert "empty" in response.json()["detail"]
    assert "not accepted" not in response.text


@pytest.mark.parametrize(
    ("data", "declared", "normalised"),
    [
        (PNG_BYTES, "image/png", "image/png"),
        (JPEG_BYTES, "image/jpg", "image/jpeg"),
        (PDF_BYTES, "Application/PDF", "application/pdf"),
        (ZIP_BYTES, XLSX, XLSX),
        (CSV_BYTES, "text/csv; charset=utf-8", "text/csv"),
    ],
    ids=["png", "jpg-alias", "pdf-upper", "xlsx", "csv-params"],
)
def test_policy_accepts_matching_content(data: bytes, declared: str, normalised: str) -> None:
    assert POLICY.check(len(data), declared, data) == normalised


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (PNG_BYTES, "image/png"),
        (JPEG_BYTES, "image/jpeg"),
        (GIF_BYTES, "image/gif"),
        (WEBP_BYTES, "image/webp"),
        (PDF_BYTES, "application/pdf"),
        (ZIP_BYTES, "application/zip"),
        (CSV_BYTES, "text/plain"),
        (b"\x00\x01\x02", None),
        (b"\xc3\x28", None),
        (b"", None),
    ],
    ids=["png", "jpeg", "gif", "webp", "pdf", "zip", "text", "nul", "bad-utf8", "empty"],
)
def test_sniff_content_type(data: bytes, expected: str | None) -> None:
    assert sniff_content_type(data) == expected


# --------------------------------------------------------------------------- factory


def test_make_storage_picks_backend(tmp_path: Path) -> None:
    fs = make_storage(load_settings({}, data_dir=tmp_path))
    assert isinstance(fs, FileSystemStorage)
    assert fs.root == (tmp_path / "files").resolve()

    s3 = make_storage(
        load_settings(
            {},
            data_dir=tmp_path,
            storage_backend="s3",
            s3_endpoint="http://127.0.0.1:9000",
            s3_bucket="school-files",
        )
    )
    assert isinstance(s3, S3Storage)
    assert s3.bucket == "school-files"
    assert s3.endpoint == "127.0.0.1:9000"


async def test_make_storage_s3_against_moto(tmp_path: Path, moto_endpoint: str) -> None:
    settings = load_settings(
        {},
        data_dir=tmp_path,
        storage_backend="s3",
        s3_endpoint=moto_endpoint,
        s3_access_key="k",
        s3_secret_key="s",
        s3_bucket=f"factory-{uuid.uuid4().hex[:8]}",
    )
    backend = make_storage(settings)
    await backend.ensure_ready()
    await backend.ping()
    key = build_key(9, "uploads", "a.csv")
    await backend.put(key, CSV_BYTES, "text/csv", tenant_id=9)
    assert await backend.get(key, tenant_id=9) == CSV_BYTES
