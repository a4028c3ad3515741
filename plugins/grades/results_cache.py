"""The shared cache of families' published-results payloads, and the responses built from it.

A payload (a pupil's published marks, their closed terms' results) is stored as its JSON bytes in
``ctx.services.shared_cache`` (Redis when ``MADRASA_CACHE_URL`` is set, else this process) under a
key holding the pupil and the publication versions of the pupil's schools
(:func:`plugins.grades.publication.pupil_versions`). A publication, a correction or a close bumps a
version, so the next read builds a new key and reads the database again; the old entries are never
read again and expire after :data:`TTL` seconds. The database stays the source of truth: the cache
is read only after the caller's access check, and a cache that does not answer is a miss.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
from litestar import Response

from core.plugin_api import RequestContext
from plugins.grades.publication import FORMAT, validator_headers, version_token

#: Seconds an entry is kept. Keys change with every publication; the bound is for what the version does not
#: cover (a subject's or a pupil's name edited in the school structure) and for memory.
TTL = 600.0


def cache_key(kind: str, student_id: int, versions: Sequence[tuple[int, int]], *extra: str) -> str:
    """``grades:1:marks:42:s7v3`` — the key of one pupil's payload at these publication versions."""
    return ":".join(["grades", FORMAT, kind, str(int(student_id)), version_token(versions), *extra])


async def payload(
    ctx: RequestContext,
    kind: str,
    student_id: int,
    versions: Sequence[tuple[int, int]],
    load: Callable[[], Awaitable[Any]],
) -> bytes:
    """The JSON bytes of a payload: from the shared cache, else ``load()`` encoded and stored."""
    cache = ctx.services.shared_cache
    key = cache_key(kind, student_id, versions)
    body = await cache.get(key)
    if body is None:
        body = msgspec.json.encode(await load())
        await cache.set(key, body, TTL)
    return body


def json_response(body: bytes, etag: str) -> Response[bytes]:
    """A cacheable private JSON response (``ETag``, ``Cache-Control: private, no-cache``)."""
    return Response(body, media_type="application/json", headers=validator_headers(etag))


def not_modified_response(etag: str) -> Response[bytes]:
    """``304 Not Modified`` with the validators (nothing read, nothing rendered)."""
    return Response(b"", status_code=304, headers=validator_headers(etag))
