"""Isolation samples for the example third-party plugin (``tests/example_plugin``).

Writing a note or starting a count under one's own school is a legitimate write there (tested in
``tests/test_plugin_contract.py``); under the foreign prefix every actor must be refused.
"""

from __future__ import annotations

BODIES = {
    ("POST", "/api/v1/example/notes"): {"body": "written from elsewhere"},
    ("POST", "/api/v1/example/count"): {},
}
CREATES_AT_HOME = {
    ("POST", "/api/v1/example/notes"),
    ("POST", "/api/v1/example/count"),
}
