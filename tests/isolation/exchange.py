"""Isolation samples for the OneRoster exchange (``/api/v1/oneroster/…`` and ``/admin/oneroster/…``).

The bundle names the foreign school (``lycee-moulay-youssef``) as its org: under the foreign prefix every
actor must be refused before anything is read. Importing at home is a legitimate write (it creates in the
actor's own tenant), tested in tests/test_oneroster.py, so the routes are listed in ``CREATES_AT_HOME``.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from tests.isolation import Multipart

_MINIMAL = Path(__file__).parent.parent / "fixtures" / "oneroster" / "minimal-1.2"


def _bundle() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(_MINIMAL.glob("*.csv")):
            archive.writestr(path.name, path.read_text("utf-8").replace("school-1", "lycee-moulay-youssef"))
    return buffer.getvalue()


_FILES = {"file": ("bundle.zip", _bundle(), "application/zip")}

BODIES = {
    ("POST", "/api/v1/oneroster/import"): Multipart(_FILES, {"dry_run": "false"}),
    ("POST", "/admin/oneroster/import"): Multipart(_FILES, {"dry_run": "false"}),
}
CREATES_AT_HOME = {
    ("POST", "/api/v1/oneroster/import"),
    ("POST", "/admin/oneroster/import"),
}
