"""Isolation samples for the tenant-archive routes (``tenants/archive_api.py``).

The export routes take the foreign school's slug and the seeded foreign job from the suite's own
values; the import needs a multipart body (an empty zip), which only platform administrators may send.
"""

from __future__ import annotations

from typing import Any

from tests.isolation import Multipart

EMPTY_ZIP = b"PK\x05\x06" + b"\x00" * 18

BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/v1/archives/{slug:str}/jobs"): {},
    ("POST", "/api/v1/archives/import"): Multipart(files={"file": ("tenant.zip", EMPTY_ZIP, "application/zip")}),
}
