"""Object storage for uploaded files: one async interface, a file-system and an S3 backend.

Keys are built by the server only (:func:`build_key`) and look like
``t/<tenant_id>/<category>/<uuid4 hex>/<safe filename>``.  Every backend method
passes the key through :func:`check_key` with the caller's tenant, so a key that
climbs out of its folder or names another tenant is refused before any I/O.

What may be uploaded is decided by a :class:`ContentPolicy` (size limit, allowed
types, and a check that the bytes look like the declared type).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import io
import json
import logging
import os
import re
import tempfile
import unicodedata
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

import msgspec

from core.errors import Invalid, Unavailable

if TYPE_CHECKING:
    import urllib3

    from core.config import Settings

__all__ = [
    "DEFAULT_ALLOWED_TYPES",
    "ContentPolicy",
    "FileSystemStorage",
    "InvalidKey",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectTooLarge",
    "S3Storage",
    "Storage",
    "StorageError",
    "StorageUnavailable",
    "UnsupportedType",
    "build_key",
    "check_key",
    "make_storage",
    "normalise_content_type",
    "sniff_content_type",
    "tenant_of",
]

T = TypeVar("T")
log = logging.getLogger("madrasa.storage")

DEFAULT_CONTENT_TYPE = "application/octet-stream"
#: Suffix of the file-system backend's sidecar files; no key may end with it.
META_SUFFIX = ".meta"
MAX_KEY_BYTES = 1024  # S3's limit on object names
MAX_FILENAME_CHARS = 120
MAX_FILENAME_BYTES = 200  # keeps "<name>.meta" under the usual 255-byte NAME_MAX

# --------------------------------------------------------------------------- errors


class StorageError(Exception):
    """Base class of every storage failure."""


class StorageUnavailable(StorageError, Unavailable):
    """The backend cannot be reached or failed on its side (a 503 for the client, who may try again)."""

    dependency = "storage"


class InvalidKey(StorageError):
    """The key is malformed, escapes its folder or belongs to another tenant."""


class ObjectTooLarge(StorageError):
    """The upload is larger than the policy allows."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"object of {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit


class UnsupportedType(StorageError):
    """The content type is not allowed, or the bytes do not match it."""

    def __init__(self, content_type: str, reason: str = "content type not allowed") -> None:
        super().__init__(f"{reason}: {content_type!r}")
        self.content_type = content_type


class ObjectNotFound(StorageError):
    """No object is stored under the key."""


# --------------------------------------------------------------------------- keys

_CATEGORY_RE = re.compile(r"[a-z0-9_-]{1,40}")
_UNSAFE_FILENAME_RE = re.compile(r'[<>:"|?*%]')
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")


def _check_tenant(tenant_id: int) -> None:
    if isinstance(tenant_id, bool) or not isinstance(tenant_id, int) or tenant_id < 1:
        raise InvalidKey(f"tenant id must be a positive integer, got {tenant_id!r}")


def _trim_filename(name: str) -> str:
    """Shorten ``name`` to the length limits, keeping a short extension when there is one."""

    def fits(text: str) -> bool:
        return len(text) <= MAX_FILENAME_CHARS and len(text.encode()) <= MAX_FILENAME_BYTES

    if fits(name):
        return name
    stem, dot, ext = name.rpartition(".")
    suffix = dot + ext if stem and 0 < len(ext) <= 16 and ext.isascii() else ""
    base = name[: len(name) - len(suffix)]
    while base and not fits(base + suffix):
        base = base[:-1]
    return (base.rstrip(" .") or "file") + suffix


def sanitise_filename(filename: str) -> str:
    """A safe last key segment made from a client-supplied file name.

    Keeps the base name only; drops control and bidi-override characters; turns
    ``..`` into ``.``; replaces characters that are unsafe in paths; keeps
    letters of any script; trims to 120 characters; falls back to ``"file"``.
    """
    name = unicodedata.normalize("NFC", filename or "")
    name = "".join(
        ch for ch in name if unicodedata.category(ch) not in {"Cc", "Cs", "Co", "Cn"} and ch not in _BIDI_CONTROLS
    )
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"\.{2,}", ".", name)
    name = _UNSAFE_FILENAME_RE.sub("_", name)
    name = re.sub(r"\s+", " ", name).strip(" .")
    if name.lower().endswith(META_SUFFIX):
        name = name[: -len(META_SUFFIX)] + "_" + META_SUFFIX[1:]
    name = _trim_filename(name) if name else ""
    return name or "file"


def build_key(tenant_id: int, category: str, filename: str) -> str:
    """A fresh key ``t/<tenant_id>/<category>/<uuid4 hex>/<safe filename>``."""
    _check_tenant(tenant_id)
    if not isinstance(category, str) or not _CATEGORY_RE.fullmatch(category):
        raise InvalidKey(f"category must match [a-z0-9_-]{{1,40}}, got {category!r}")
    key = f"t/{tenant_id}/{category}/{uuid.uuid4().hex}/{sanitise_filename(filename)}"
    return check_key(key, tenant_id)


def check_key(key: str, tenant_id: int) -> str:
    """Return ``key`` if it is well formed and inside ``t/<tenant_id>/``; raise :class:`InvalidKey`.

    Refused: ``..``, ``//``, backslashes, a leading ``/``, control characters, a
    segment starting with ``.``, a trailing ``/``, a name ending in ``.meta``,
    more than 1024 UTF-8 bytes, or another tenant's prefix.
    """
    _check_tenant(tenant_id)
    if not isinstance(key, str) or not key:
        raise InvalidKey("key must be a non-empty string")
    if ".." in key or "//" in key or "\\" in key or key.startswith("/") or key.endswith("/"):
        raise InvalidKey(f"malformed key: {key!r}")
    if any(unicodedata.category(ch) in {"Cc", "Cs"} or ch in _BIDI_CONTROLS for ch in key):
        raise InvalidKey(f"control character in key: {key!r}")
    if any(segment.startswith(".") for segment in key.split("/")):
        raise InvalidKey(f"hidden segment in key: {key!r}")
    if key.lower().endswith(META_SUFFIX):
        raise InvalidKey(f"key may not end with {META_SUFFIX!r}: {key!r}")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise InvalidKey("key is longer than 1024 bytes")
    prefix = f"t/{tenant_id}/"
    if not key.startswith(prefix) or len(key) == len(prefix):
        raise InvalidKey(f"key is outside tenant {tenant_id}: {key!r}")
    return key


# --------------------------------------------------------------------------- content policy

PNG = "image/png"
JPEG = "image/jpeg"
GIF = "image/gif"
WEBP = "image/webp"
PDF = "application/pdf"
ZIP = "application/zip"
TEXT = "text/plain"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ODS = "application/vnd.oasis.opendocument.spreadsheet"
ODT = "application/vnd.oasis.opendocument.text"

#: Declared types whose bytes are a zip archive.
ZIP_TYPES = frozenset({ZIP, "application/x-zip-compressed", XLSX, DOCX, ODS, ODT})
#: Declared types whose bytes must be UTF-8 text.
TEXT_TYPES = frozenset({TEXT, "text/csv"})
#: Types sniffed from a signature; data declared as one of them must carry that signature.
BINARY_TYPES = frozenset({PNG, JPEG, GIF, WEBP, PDF})

DEFAULT_ALLOWED_TYPES = frozenset({PNG, JPEG, GIF, WEBP, PDF, "text/csv", TEXT, XLSX, ODS})

_ALIASES = {
    "image/jpg": JPEG,
    "image/pjpeg": JPEG,
    "application/x-pdf": PDF,
    "application/csv": "text/csv",
}

_TEXT_SNIFF_BYTES = 64 * 1024


def normalise_content_type(content_type: str) -> str:
    """Lower-case media type without parameters (``Text/CSV; charset=utf-8`` → ``text/csv``)."""
    base = (content_type or "").split(";", 1)[0].strip().lower()
    return _ALIASES.get(base, base)


def sniff_content_type(data: bytes) -> str | None:
    """Guess the type from the leading bytes: an image/PDF type, ``application/zip`` or ``text/plain``.

    Zip-based documents (xlsx, ods, …) are reported as ``application/zip``.
    Returns ``None`` for empty or unrecognised binary data.
    """
    if not data:
        return None
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    if data.startswith(b"%PDF-"):
        return PDF
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return ZIP
    head = data[:_TEXT_SNIFF_BYTES]
    if b"\x00" in head:
        return None
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=len(data) <= _TEXT_SNIFF_BYTES)
    except UnicodeDecodeError:
        return None
    return TEXT


class ContentPolicy(msgspec.Struct, frozen=True):
    """Upload rules: a byte limit and the allowed (normalised) content types."""

    max_bytes: int
    allowed_types: frozenset[str] = DEFAULT_ALLOWED_TYPES

    @classmethod
    def from_settings(cls, settings: Settings, allowed_types: frozenset[str] = DEFAULT_ALLOWED_TYPES) -> ContentPolicy:
        """The policy with ``settings.max_upload_bytes`` as limit."""
        return cls(max_bytes=settings.max_upload_bytes, allowed_types=allowed_types)

    def check(self, size: int, content_type: str, data: bytes | None = None) -> str:
        """Validate an upload and return its normalised content type.

        Raises :class:`ObjectTooLarge` above ``max_bytes``, :class:`UnsupportedType`
        for a type outside ``allowed_types``, and :class:`core.errors.Invalid` (400, "the file is
        empty") for zero bytes of a type that cannot be empty (an image, a PDF, a document).
        With ``data``, the sniffed type must agree with the declared one: image/PDF types need their signature, zip
        documents a zip archive, text types UTF-8 text without NULs.
        """
        if data is not None:
            size = max(size, len(data))
        if size > self.max_bytes:
            raise ObjectTooLarge(size, self.max_bytes)
        declared = normalise_content_type(content_type)
        allowed = {normalise_content_type(t) for t in self.allowed_types}
        if declared not in allowed:
            raise UnsupportedType(content_type)
        if size == 0 and not _may_be_empty(declared):
            raise Invalid("file", "The file is empty.", code="empty_file")
        if data is not None and not _matches(declared, data):
            raise UnsupportedType(content_type, "content does not match the declared type")
        return declared


def _may_be_empty(declared: str) -> bool:
    """Whether a file of this type can have no bytes at all (text can; images, PDFs and documents cannot)."""
    return declared not in BINARY_TYPES and declared not in ZIP_TYPES


def _matches(declared: str, data: bytes) -> bool:
    sniffed = sniff_content_type(data)
    if declared in BINARY_TYPES:
        return sniffed == declared
    if declared in ZIP_TYPES:
        return sniffed == ZIP
    if declared in TEXT_TYPES or declared.startswith("text/"):
        return not data or sniffed == TEXT
    if declared == DEFAULT_CONTENT_TYPE:
        return True
    # Any other declared type: refuse bytes recognisably of a different known kind.
    return sniffed not in BINARY_TYPES and sniffed != ZIP


# --------------------------------------------------------------------------- interface


class ObjectInfo(msgspec.Struct, frozen=True):
    """What :meth:`Storage.stat` reports about an object."""

    key: str
    size: int
    content_type: str


class Storage(ABC):
    """Async object storage; every method checks the key against ``tenant_id``."""

    @abstractmethod
    async def put(self, key: str, data: bytes, content_type: str, *, tenant_id: int) -> None:
        """Store ``data`` under ``key`` (replacing any previous object)."""

    @abstractmethod
    async def get(self, key: str, *, tenant_id: int) -> bytes:
        """The bytes stored under ``key``; :class:`ObjectNotFound` if absent."""

    @abstractmethod
    async def delete(self, key: str, *, tenant_id: int) -> None:
        """Remove the object; deleting a missing object is not an error."""

    @abstractmethod
    async def exists(self, key: str, *, tenant_id: int) -> bool:
        """Whether an object is stored under ``key``."""

    @abstractmethod
    async def stat(self, key: str, *, tenant_id: int) -> ObjectInfo:
        """Size and content type of the object; :class:`ObjectNotFound` if absent."""

    @abstractmethod
    async def ping(self) -> None:
        """Readiness probe: raise :class:`StorageError` if the backend is unusable."""

    @abstractmethod
    async def ensure_ready(self) -> None:
        """Create the bucket or root folder if needed (idempotent)."""

    @contextlib.asynccontextmanager
    async def removed_on_error(self, key: str, *, tenant_id: int) -> AsyncIterator[None]:
        """Remove the object under ``key`` if the block fails, e.g. the transaction that records it.

        Write the object last inside the transaction and wrap the transaction in this block: a failed write
        rolls the row back, and a failed commit (or a write whose answer was lost) removes the object.
        """
        try:
            yield
        except BaseException:
            await self.discard(key, tenant_id=tenant_id)
            raise

    async def discard(self, key: str, *, tenant_id: int) -> None:
        """Remove an object nothing refers to, never raising: a backend still down leaves it logged for an operator."""
        try:
            await asyncio.shield(self.delete(key, tenant_id=tenant_id))
        except Exception as exc:
            log.error("object left behind by a failed upload: %s (%s)", key, exc, extra={"key": key})

    async def keys(self) -> list[str]:
        """Every stored key (``t/<tenant>/…``), sorted: what a backup copies (``core/backup.py``).

        A backend that cannot list its objects raises :class:`StorageError`.
        """
        raise StorageError(f"{type(self).__name__} cannot list its objects")


def tenant_of(key: str) -> int:
    """The tenant id a key belongs to (``t/<tenant_id>/…``); :class:`InvalidKey` when it has none."""
    parts = key.split("/", 2)
    if len(parts) < 3 or parts[0] != "t" or not parts[1].isdigit():
        raise InvalidKey(f"key is not under a tenant: {key!r}")
    tenant_id = int(parts[1])
    check_key(key, tenant_id)
    return tenant_id


# --------------------------------------------------------------------------- file system


class FileSystemStorage(Storage):
    """Objects as files under ``root``; the content type lives in a ``<file>.meta`` JSON sidecar."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()

    def __repr__(self) -> str:
        return f"FileSystemStorage({str(self.root)!r})"

    def _path(self, key: str, tenant_id: int) -> Path:
        check_key(key, tenant_id)
        path = (self.root / key).resolve()
        if path == self.root or not path.is_relative_to(self.root):
            raise InvalidKey(f"key resolves outside the storage root: {key!r}")
        return path

    @staticmethod
    def _meta(path: Path) -> Path:
        return path.with_name(path.name + META_SUFFIX)

    async def put(self, key: str, data: bytes, content_type: str, *, tenant_id: int) -> None:
        path = self._path(key, tenant_id)
        meta = json.dumps({"content_type": content_type or DEFAULT_CONTENT_TYPE, "size": len(data)})
        await asyncio.to_thread(self._put_sync, path, bytes(data), meta.encode())

    def _put_sync(self, path: Path, data: bytes, meta: bytes) -> None:
        for attempt in range(2):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                # Sidecar first: once the data file appears, its content type is there too.
                _atomic_write(self._meta(path), meta)
                _atomic_write(path, data)
                return
            except FileNotFoundError:  # folder removed by a concurrent delete: retry once
                if attempt:
                    raise StorageError(f"cannot write {path.name!r}: folder vanished") from None
            except OSError as exc:
                raise StorageError(f"cannot write {path.name!r}: {exc}") from exc

    async def get(self, key: str, *, tenant_id: int) -> bytes:
        path = self._path(key, tenant_id)
        return await asyncio.to_thread(self._get_sync, key, path)

    @staticmethod
    def _get_sync(key: str, path: Path) -> bytes:
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(key) from None
        except OSError as exc:
            raise StorageError(f"cannot read {key!r}: {exc}") from exc

    async def delete(self, key: str, *, tenant_id: int) -> None:
        path = self._path(key, tenant_id)
        await asyncio.to_thread(self._delete_sync, path)

    def _delete_sync(self, path: Path) -> None:
        try:
            if path.is_dir():
                return
            path.unlink(missing_ok=True)
            self._meta(path).unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot delete {path.name!r}: {exc}") from exc
        with contextlib.suppress(OSError):  # drop the per-object folder once it is empty
            path.parent.rmdir()

    async def exists(self, key: str, *, tenant_id: int) -> bool:
        path = self._path(key, tenant_id)
        return await asyncio.to_thread(path.is_file)

    async def stat(self, key: str, *, tenant_id: int) -> ObjectInfo:
        path = self._path(key, tenant_id)
        return await asyncio.to_thread(self._stat_sync, key, path)

    def _stat_sync(self, key: str, path: Path) -> ObjectInfo:
        try:
            if not path.is_file():
                raise ObjectNotFound(key)
            size = path.stat().st_size
        except FileNotFoundError:
            raise ObjectNotFound(key) from None
        except OSError as exc:
            raise StorageError(f"cannot stat {key!r}: {exc}") from exc
        content_type = DEFAULT_CONTENT_TYPE
        with contextlib.suppress(OSError, ValueError, AttributeError):
            content_type = str(json.loads(self._meta(path).read_bytes())["content_type"])
        return ObjectInfo(key=key, size=size, content_type=content_type)

    async def keys(self) -> list[str]:
        def walk() -> list[str]:
            found = []
            for path in self.root.rglob("*"):
                key = path.relative_to(self.root).as_posix()
                if path.is_file() and not key.endswith(META_SUFFIX) and not path.name.startswith("."):
                    found.append(key)
            return sorted(found)

        return await asyncio.to_thread(walk)

    async def ping(self) -> None:
        def check() -> None:
            if not self.root.is_dir():
                raise StorageError(f"storage root {str(self.root)!r} does not exist")
            if not os.access(self.root, os.W_OK | os.X_OK):
                raise StorageError(f"storage root {str(self.root)!r} is not writable")

        await asyncio.to_thread(check)

    async def ensure_ready(self) -> None:
        def create() -> None:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot create storage root {str(self.root)!r}: {exc}") from exc

        await asyncio.to_thread(create)


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``path`` and rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# --------------------------------------------------------------------------- S3


_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchObject", "ResourceNotFound"})
#: S3 error codes of a service that is failing or overloaded (the client may try again).
_UNAVAILABLE_CODES = frozenset({"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout"})


class S3Storage(Storage):
    """Objects in one S3 (or MinIO) bucket through the synchronous ``minio`` client.

    ``endpoint`` is ``host[:port]``; a ``http://`` / ``https://`` prefix is accepted
    and then decides ``secure``.  Every client call runs in a worker thread.
    """

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        secure: bool = False,
        region: str = "us-east-1",
        *,
        http_client: urllib3.PoolManager | None = None,
    ) -> None:
        from minio import Minio

        if "://" in endpoint:
            parts = urlsplit(endpoint)
            secure = parts.scheme == "https"
            endpoint = parts.netloc
        self.endpoint = endpoint.rstrip("/")
        self.bucket = bucket
        self.region = region or None
        self.client = Minio(
            self.endpoint,
            access_key=access_key or None,
            secret_key=secret_key or None,
            secure=secure,
            region=self.region,
            http_client=http_client or _default_http_client(),
        )

    def __repr__(self) -> str:
        return f"S3Storage(endpoint={self.endpoint!r}, bucket={self.bucket!r})"

    async def _call(self, key: str | None, func: Callable[..., T], *args: object, **kwargs: object) -> T:
        """Run a client call in a thread and translate its errors."""
        from minio.error import MinioException, S3Error, ServerError
        from urllib3.exceptions import HTTPError

        try:
            return await asyncio.to_thread(func, *args, **kwargs)
        except S3Error as exc:
            if key is not None and exc.code in _NOT_FOUND_CODES:
                raise ObjectNotFound(key) from None
            if exc.code in _UNAVAILABLE_CODES:
                raise StorageUnavailable(f"S3 {exc.code}: {exc.message}") from exc
            raise StorageError(f"S3 {exc.code}: {exc.message}") from exc
        except StorageError:
            raise
        except (ServerError, HTTPError, OSError) as exc:  # unreachable, reset, timed out, a 5xx
            raise StorageUnavailable(f"S3 request failed: {exc}") from exc
        except (MinioException, ValueError) as exc:
            raise StorageError(f"S3 request failed: {exc}") from exc

    async def put(self, key: str, data: bytes, content_type: str, *, tenant_id: int) -> None:
        check_key(key, tenant_id)
        payload = bytes(data)
        await self._call(
            None,
            self.client.put_object,
            self.bucket,
            key,
            io.BytesIO(payload),
            len(payload),
            content_type=content_type or DEFAULT_CONTENT_TYPE,
        )

    async def get(self, key: str, *, tenant_id: int) -> bytes:
        check_key(key, tenant_id)

        def read() -> bytes:
            response = self.client.get_object(self.bucket, key)
            try:
                return bytes(response.read())
            finally:
                response.close()
                response.release_conn()

        return await self._call(key, read)

    async def delete(self, key: str, *, tenant_id: int) -> None:
        check_key(key, tenant_id)
        await self._call(key, self.client.remove_object, self.bucket, key)

    async def exists(self, key: str, *, tenant_id: int) -> bool:
        try:
            await self.stat(key, tenant_id=tenant_id)
        except ObjectNotFound:
            return False
        return True

    async def stat(self, key: str, *, tenant_id: int) -> ObjectInfo:
        check_key(key, tenant_id)
        obj = await self._call(key, self.client.stat_object, self.bucket, key)
        return ObjectInfo(
            key=key,
            size=int(obj.size or 0),
            content_type=obj.content_type or DEFAULT_CONTENT_TYPE,
        )

    async def keys(self) -> list[str]:
        def listing() -> list[str]:
            return sorted(o.object_name or "" for o in self.client.list_objects(self.bucket, recursive=True))

        return [key for key in await self._call(None, listing) if key]

    async def ping(self) -> None:
        if not await self._call(None, self.client.bucket_exists, self.bucket):
            raise StorageError(f"bucket {self.bucket!r} does not exist")

    async def ensure_ready(self) -> None:
        from minio.error import S3Error

        def create() -> None:
            if self.client.bucket_exists(self.bucket):
                return
            try:
                self.client.make_bucket(self.bucket)
            except S3Error as exc:  # created concurrently
                if exc.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                    raise

        await self._call(None, create)


def _default_http_client() -> urllib3.PoolManager:
    """Pool with bounded timeouts so a dead endpoint fails a readiness probe quickly."""
    import urllib3

    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=5.0, read=60.0),
        maxsize=16,
        retries=urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
    )


# --------------------------------------------------------------------------- factory


def make_storage(settings: Settings) -> Storage:
    """The backend named by ``settings.storage_backend`` (``"fs"`` or ``"s3"``)."""
    if settings.storage_backend == "s3":
        return S3Storage(
            endpoint=settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            bucket=settings.s3_bucket,
            secure=settings.s3_secure,
            region=settings.s3_region,
        )
    if settings.storage_backend == "fs":
        return FileSystemStorage(settings.storage_path)
    raise StorageError(f"unknown storage backend {settings.storage_backend!r}")
