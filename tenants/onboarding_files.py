"""Reading onboarding files (CSV or XLSX) as a stream of records — pure, no database.

:func:`open_table` recognises the format from the bytes (an XLSX workbook is a zip archive; a CSV
file is UTF-8 text), and yields ``(line, cells)`` one record at a time: nothing but the current row
is held in memory beyond the file itself. The rows are checked by :mod:`tenants.onboarding_rows`.

XLSX workbooks are checked before they are opened (:func:`check_workbook`): an archive that
unpacks to more than :data:`MAX_UNPACKED_BYTES` or compresses suspiciously well is refused, so a
tiny zip bomb cannot make the reader allocate gigabytes; rows are read no wider than the kind's
columns, and blank rows count toward the row limit.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import struct
import zipfile
from collections.abc import Iterator
from datetime import date, datetime
from typing import IO

from core.school.pupil_rows import FileProblem, sniff_delimiter
from tenants.onboarding_rows import FILE, problem

__all__ = [
    "EXTRA_COLUMNS",
    "MAX_UNPACKED_BYTES",
    "FileProblem",
    "check_workbook",
    "count_lines",
    "detect_format",
    "file_error",
    "open_table",
]

_TEXT_SNIFF = 64 * 1024
#: An XLSX workbook may unpack to this much at most (a 100,000-pupil workbook unpacks to about 60 MiB).
MAX_UNPACKED_BYTES = 160 * 1024 * 1024
#: A member larger than :data:`RATIO_FLOOR` may not unpack to more than this many times its packed size.
MAX_RATIO = 200
RATIO_FLOOR = 1024 * 1024
#: The shared strings are loaded whole by the reader: at most this much XML (a 100,000-pupil workbook has ~25 MiB).
MAX_SHARED_STRINGS_BYTES = 64 * 1024 * 1024
#: Members of an XLSX archive (a workbook has a dozen or so).
MAX_MEMBERS = 1000
#: Cells read per XLSX row beyond the kind's known columns.
EXTRA_COLUMNS = 24


def file_error(code: str, value: str = "", row: int = 0, **params: object) -> FileProblem:
    """A :class:`FileProblem` about the whole file."""
    return FileProblem(problem(row, FILE, value, code, **params))


# -- formats -----------------------------------------------------------------------------------


def detect_format(head: bytes) -> str:
    """``xlsx`` (a zip archive), ``csv`` (text); :class:`FileProblem` for anything else."""
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if head.startswith((b"%PDF-", b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"PK")):
        raise file_error("not_csv_xlsx")
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise file_error("old_excel")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise file_error("utf16")
    if b"\x00" in head:
        raise file_error("not_csv_xlsx")
    return "csv"


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _member_count(stream: IO[bytes]) -> int:
    """Entries of a zip archive, from its end-of-central-directory record (read before any entry is parsed)."""
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    tail_size = min(size, 22 + 65535)
    stream.seek(size - tail_size)
    tail = stream.read(tail_size)
    stream.seek(0)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        raise file_error("bad_xlsx")
    return int(struct.unpack("<H", tail[at + 10 : at + 12])[0])


def check_workbook(stream: IO[bytes]) -> None:
    """Refuse an XLSX archive before opening it: too many members, too large unpacked, or packed like a bomb."""
    if _member_count(stream) > MAX_MEMBERS:
        raise file_error("bad_xlsx")
    try:
        with zipfile.ZipFile(stream) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, struct.error):
        raise file_error("bad_xlsx") from None
    finally:
        stream.seek(0)
    if len(members) > MAX_MEMBERS:
        raise file_error("bad_xlsx")
    total = 0
    for info in members:
        total += info.file_size
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise file_error("xlsx_packed", info.filename[:80], name=info.filename[:80])
        if info.filename.lower().endswith("sharedstrings.xml") and info.file_size > MAX_SHARED_STRINGS_BYTES:
            raise file_error("xlsx_too_big", info.filename[:80], limit=MAX_SHARED_STRINGS_BYTES // 2**20)
    if total > MAX_UNPACKED_BYTES:
        raise file_error("xlsx_too_big", limit=MAX_UNPACKED_BYTES // 2**20)


def _xlsx_records(stream: IO[bytes], width: int, max_rows: int) -> Iterator[tuple[int, list[str]]]:
    from openpyxl import load_workbook

    check_workbook(stream)
    try:
        book = load_workbook(stream, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, struct.error):
        raise file_error("bad_xlsx") from None
    try:
        sheet = book.worksheets[0]
        # The declared <dimension> is not trusted: no padding to it, rows no wider than ``width``.
        sheet.reset_dimensions()
        blank = (None,) * width
        for line, values in enumerate(sheet.iter_rows(max_col=width, values_only=True), start=1):
            if line > max_rows:
                # Blank rows count too: a sheet cannot make the reader walk a million empty rows.
                raise file_error("too_many_rows", row=line, limit=max_rows - 1)
            if values == blank or not values:
                continue
            cells = [_cell_text(v) for v in values]
            if any(c.strip() for c in cells):
                yield line, cells
    finally:
        book.close()


def _csv_records(stream: IO[bytes]) -> Iterator[tuple[int, list[str]]]:
    # Decoded incrementally: a bad byte is reported with the line it is on.
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="", errors="strict")
    try:
        first = text.readline()
    except UnicodeDecodeError:
        raise file_error("not_utf8", row=1) from None
    delimiter = sniff_delimiter(first)

    # A chain, not a generator: dropping it never closes (or reads from) the detached wrapper.
    reader = csv.reader(itertools.chain((first,), text), delimiter=delimiter)
    previous = 0
    try:
        for cells in reader:
            line, previous = previous + 1, reader.line_num
            if any("\x00" in c for c in cells):
                raise file_error("nul_bytes", row=line)
            if any(c.strip() for c in cells):
                yield line, cells
    except UnicodeDecodeError:
        raise file_error("not_utf8", row=previous + 1) from None
    except csv.Error as exc:
        raise file_error("bad_csv", row=reader.line_num, detail=exc) from None
    finally:
        text.detach()


def open_table(
    stream: IO[bytes], *, width: int = 64, max_rows: int = 1_048_577
) -> tuple[str, Iterator[tuple[int, list[str]]]]:
    """The format and the non-blank records (line, cells) of a CSV or XLSX file, read lazily.

    ``width`` caps the cells read per XLSX row; ``max_rows`` the sheet rows read, blank or not.
    """
    head = stream.read(_TEXT_SNIFF)
    stream.seek(0)
    if not head.strip():
        raise file_error("empty")
    fmt = detect_format(head)
    if fmt == "csv":
        try:
            codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        except UnicodeDecodeError as exc:
            raise file_error("not_utf8_at", byte=f"{head[exc.start]:02x}", offset=exc.start) from None
        return fmt, _csv_records(stream)
    return fmt, _xlsx_records(stream, width, max_rows)


def count_lines(stream: IO[bytes]) -> int:
    """Rough number of records (newlines) of a CSV file, for progress; reads in chunks."""
    total = 0
    while chunk := stream.read(1 << 20):
        total += chunk.count(b"\n")
    stream.seek(0)
    return max(total - 1, 0)
