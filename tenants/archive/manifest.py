"""``manifest.json``: what an archive declares, read and checked before any other member."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import msgspec

from tenants.archive.schema import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    MAX_ARCHIVE_BYTES,
    MAX_FILE_BYTES,
    MAX_LISTED,
    MAX_MANIFEST_BYTES,
    MAX_RATIO,
    RATIO_FLOOR,
    ArchiveRejected,
)


class ManifestTenant(msgspec.Struct):
    """The exported node."""

    id: int
    slug: str
    kind: str
    path: str


class ManifestTable(msgspec.Struct):
    """One table of the archive."""

    name: str
    member: str
    columns: list[str]
    rows: int
    sha256: str
    member_sha256: str
    member_bytes: int


class ManifestFile(msgspec.Struct):
    """One stored object of the archive."""

    key: str
    tenant_id: int
    member: str
    size: int
    sha256: str
    content_type: str


class Manifest(msgspec.Struct):
    """``manifest.json``."""

    format: str
    format_version: int
    created_at: str
    source: dict[str, str]
    tenant: ManifestTenant
    ancestors: list[dict[str, Any]]
    tables: list[ManifestTable]
    files: list[ManifestFile]
    missing_files: list[str] = msgspec.field(default_factory=list)
    #: Whether the members' password hashes were exported (a platform administrator's export).
    password_hashes: bool = False


class Problems:
    """Problems found, listed up to :data:`MAX_LISTED` per kind, the rest counted."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self._counts: dict[str, int] = {}

    def add(self, kind: str, message: str) -> None:
        count = self._counts.get(kind, 0) + 1
        self._counts[kind] = count
        if count <= MAX_LISTED:
            self.items.append(message)

    def summary(self) -> list[str]:
        extra = [f"{kind}: {n - MAX_LISTED} more" for kind, n in self._counts.items() if n > MAX_LISTED]
        return self.items + extra

    def __bool__(self) -> bool:
        return bool(self.items)


def open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ArchiveRejected(f"Not a readable archive (truncated or not a zip file): {exc}.") from None


def _bomb(info: zipfile.ZipInfo) -> str | None:
    """Why a member's compression ratio is refused, or ``None``."""
    if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        return (
            f"{info.filename}: {info.file_size} bytes compressed into {info.compress_size} (more than {MAX_RATIO}:1), "
            "refused as a zip bomb"
        )
    return None


def read_manifest(zf: zipfile.ZipFile) -> Manifest:
    try:
        info = zf.getinfo(MANIFEST)
    except KeyError:
        raise ArchiveRejected("The archive has no manifest.json.") from None
    if info.file_size > MAX_MANIFEST_BYTES:
        raise ArchiveRejected(
            f"manifest.json is {info.file_size} bytes uncompressed, more than the limit of {MAX_MANIFEST_BYTES}."
        )
    if (bomb := _bomb(info)) is not None:
        raise ArchiveRejected(f"manifest.json cannot be read: {bomb}.")
    try:
        raw = zf.read(MANIFEST)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ArchiveRejected(f"manifest.json cannot be read: {exc}.") from None
    try:
        head = json.loads(raw)
    except ValueError:
        raise ArchiveRejected("manifest.json is not valid JSON.") from None
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise ArchiveRejected(f"manifest.json does not describe a {FORMAT}.")
    if head.get("format_version") != FORMAT_VERSION:
        raise ArchiveRejected(
            f"Unsupported archive format version {head.get('format_version')!r}: this deployment reads version "
            f"{FORMAT_VERSION}."
        )
    try:
        return msgspec.json.decode(raw, type=Manifest)
    except msgspec.ValidationError as exc:
        raise ArchiveRejected(f"manifest.json is malformed: {exc}.") from None


def check_sizes(zf: zipfile.ZipFile, manifest: Manifest) -> None:
    """Compare every member's uncompressed size (from the zip's directory) with the manifest and the limits.

    Runs before any member but the manifest is read: a member larger than declared, a stored file over
    :data:`MAX_FILE_BYTES`, an archive over :data:`MAX_ARCHIVE_BYTES` or a zip bomb is refused.
    """
    problems = Problems()
    declared = {t.member: t.member_bytes for t in manifest.tables}
    files = {f.member: f.size for f in manifest.files}
    total = 0
    for info in zf.infolist():
        total += info.file_size
        name = info.filename
        expected = declared.get(name, files.get(name))
        if expected is not None and info.file_size != expected:
            problems.add("size", f"{name}: {info.file_size} bytes uncompressed, the manifest declares {expected}")
        elif name in files and info.file_size > MAX_FILE_BYTES:
            problems.add("size", f"{name}: {info.file_size} bytes, more than the limit of {MAX_FILE_BYTES} per file")
        if (bomb := _bomb(info)) is not None:
            problems.add("bomb", bomb)
    if total > MAX_ARCHIVE_BYTES:
        problems.add("size", f"the archive holds {total} bytes uncompressed, over the limit of {MAX_ARCHIVE_BYTES}")
    if problems:
        raise ArchiveRejected(
            "The archive's members exceed their declared sizes or the import limits; nothing was read or written.",
            problems.summary(),
        )
