"""Isolation samples for the director's pages (term close, report cards) and the console's module switch.

Closing a term and asking for report cards act on the caller's own school (a term is national): at
home they are creations, tested in ``tests/test_director_portal.py``; under a foreign prefix they
must answer 403 or 404 like every route.
"""

from __future__ import annotations

from typing import Any

FOREIGN = "lycee-moulay-youssef"

BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/grades/terms/{term_id:int}/close"): {"csrf_token": "sent-in-header", "confirm": "yes"},
    ("POST", "/grades/bulletins"): {"term_id": "1", "class_id": "1"},
    ("POST", "/admin/tenants/{slug:str}/modules"): {
        "target": FOREIGN,
        "module": "grades",
        "state": "off",
        "reason": "isolation test",
    },
}
CREATES_AT_HOME = {
    ("POST", "/grades/terms/{term_id:int}/close"),
    ("POST", "/grades/bulletins"),
}
QUERIES: dict[tuple[str, str], dict[str, str]] = {
    ("GET", "/grades/classes/{class_id:int}/bulletins.zip"): {"term_id": "term_id"},
}
