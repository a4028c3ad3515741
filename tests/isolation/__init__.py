"""Isolation-suite samples per feature.

Each module here may define, for its own routes (see ``tests/test_isolation.py``):

* ``BODIES``: ``{(method, path): body}``; a dict is sent as JSON under ``/api/`` and form-encoded
  elsewhere; a :class:`Multipart` is sent as multipart.
* ``CREATES_AT_HOME``: routes that legitimately create something in the actor's own tenant.
* ``QUERIES``: ``{(method, path): {param: sample_name}}`` with sample names from ``foreign_values``.
* ``foreign_values(world)``: sync or async; path-parameter values naming the *foreign* school's
  (``lycee-moulay-youssef``) objects; it may create them once and cache them on ``world.objects``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Multipart:
    """A multipart body: ``files`` as for httpx, plus optional form fields."""

    files: dict[str, Any]
    data: dict[str, str] = field(default_factory=dict)
