"""A school's publication version, and the HTTP validators built from it.

Everything a family reads in this module (published marks, closed terms' averages and ranks, report
cards, the assessments announced) changes only through a handful of writes, each of which calls
:func:`bump` in its own transaction: publishing a sheet, saving marks of a sheet past draft or of a
closed term (a correction), scheduling an assessment, computing or closing a term's results. The
version (``grade_publication``, one row per school; none yet reads as 0) therefore names the state
of what families see, and keys:

* the ``ETag`` of the family reads (:func:`tag`, with the pupil, the reader and whatever else the
  response depends on), answered with ``304 Not Modified`` before anything is read or rendered
  (:func:`not_modified`);
* the shared cache of their payloads (:mod:`plugins.grades.results_cache`);
* the stored report cards (:mod:`plugins.grades.bulletins.cards`), whose key holds the version.

A pupil's reads take the versions of every school the pupil is or was enrolled in (:func:`pupil_versions`).
The granularity is the school: a child's page spans every term and subject, so a finer version
(class, term) would still be combined per pupil, and publications are rare next to reads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from core.plugin_api import Database, Scope, in_, parse_path, scope_sql

#: ``Cache-Control`` of every family read of published results: a browser may keep the response but must
#: ask again each time (``no-cache``), and answers ``304`` cost an access check and the version, not a
#: render; ``private`` forbids shared proxies from keeping it.
CACHE_CONTROL = "private, no-cache"
#: The request headers a private response varies on (who is asking, in which language).
VARY = "Authorization, Cookie, Accept-Language"
#: Bump when the shape of a cached response changes (new tags and cache keys for every pupil).
FORMAT = "1"


async def bump(db: Database, school_ids: Iterable[int]) -> None:
    """Add one to these schools' publication versions (creating the rows), in the caller's transaction."""
    ids = sorted({int(s) for s in school_ids})
    if not ids:
        return
    rows = await db.fetch("SELECT id, path FROM tenant WHERE id IN {} AND kind = 'school' ORDER BY id", in_(ids))
    now = datetime.now(UTC)
    values = []
    for row in rows:  # in id order: two transactions bumping the same schools take their locks in one order
        path = parse_path(row["path"])
        values.append((path[1] if len(path) > 1 else 0, path[2] if len(path) > 2 else 0, row["id"], now))
    # One statement for every school (a region's close bumps its schools in one round of executemany).
    await db.executemany(
        "INSERT INTO grade_publication (region_id, province_id, school_id, version, changed_at) "
        "VALUES ({}, {}, {}, 1, {}) ON CONFLICT (region_id, school_id) DO UPDATE "
        "SET version = grade_publication.version + 1, changed_at = excluded.changed_at",
        values,
    )


async def school_version(db: Database, scope: Scope, school_id: int) -> int:
    """One school's publication version (0 before its first change), inside ``db.scoped(scope)``."""
    value = await db.fetchval(
        "SELECT p.version FROM grade_publication p WHERE p.school_id = {} AND {}",
        school_id,
        scope_sql(scope, "p"),
    )
    return int(value or 0)


async def pupil_versions(db: Database, scope: Scope, student_id: int) -> tuple[tuple[int, int], ...]:
    """``(school_id, version)`` of the schools a pupil belongs or belonged to, sorted (inside ``db.scoped``)."""
    rows = await db.fetch(
        "SELECT k.school_id, COALESCE(p.version, 0) AS version FROM ("
        "SELECT s.school_id FROM student s WHERE s.id = {} "
        "UNION SELECT c.school_id FROM enrolment e JOIN school_class c ON c.id = e.class_id WHERE e.student_id = {}"
        ") k LEFT JOIN grade_publication p ON p.school_id = k.school_id AND {} ORDER BY k.school_id",
        student_id,
        student_id,
        scope_sql(scope, "p"),
    )
    return tuple((int(r["school_id"]), int(r["version"])) for r in rows)


def version_token(versions: Sequence[tuple[int, int]]) -> str:
    """``s12v3.s40v0``: the versions as one string (part of cache keys)."""
    return ".".join(f"s{school}v{version}" for school, version in versions) or "none"


def tag(kind: str, *parts: Any) -> str:
    """A strong ``ETag`` (quoted) over what a response depends on: its kind, then the given parts."""
    digest = hashlib.sha256("\x1f".join([FORMAT, kind, *(str(p) for p in parts)]).encode()).hexdigest()
    return f'"g{FORMAT}-{digest[:40]}"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (weak comparison, as RFC 9110 asks; ``*`` matches)."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        value = candidate.strip()
        if value == "*":
            return True
        if value.startswith("W/"):
            value = value[2:]
        if value == etag:
            return True
    return False


def validator_headers(etag: str) -> dict[str, str]:
    """The headers of a cacheable private read: ``ETag``, ``Cache-Control`` and ``Vary``."""
    return {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Vary": VARY}


def not_modified(request_headers: Any, etag: str) -> bool:
    """Whether the request already holds this version (``If-None-Match``): answer 304 then."""
    return matches(request_headers.get("if-none-match"), etag)
