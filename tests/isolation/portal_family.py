"""Isolation samples for the teacher's workbook upload in the grades portal: a multipart form (an empty
zip, refused anyway). The report-card download takes the seeded ``bulletin_id``."""

from __future__ import annotations

from typing import Any

from tests.isolation import Multipart

EMPTY_ZIP = b"PK\x05\x06" + b"\x00" * 18
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/grades/sheets/{sheet_id:int}/workbook"): Multipart(
        files={"file": ("notes.xlsx", EMPTY_ZIP, XLSX)}, data={"csrf_token": "sent-in-header"}
    ),
}
