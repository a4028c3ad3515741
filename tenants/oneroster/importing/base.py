"""What every part of an import shares: its state, its report (errors, warnings, counts), the sourcedId links."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any

from core import audit
from core.context import RequestContext
from core.db import scope_sql
from core.scope import Scope
from core.sql import SQL
from core.tenancy import TenantInfo
from tenants.oneroster.bundle import Bundle, Issue

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
RELATIONS = frozenset({"mother", "father", "guardian"})


class ImporterBase:
    """One import at one tenant node, inside the caller's ``db.scoped`` transaction: state and bookkeeping."""

    def __init__(self, ctx: RequestContext, anchor: TenantInfo, bundle: Bundle) -> None:
        self.ctx = ctx
        self.db = ctx.services.db
        self.anchor = anchor
        self.bundle = bundle
        self.errors: list[Issue] = []
        self.warnings: list[Issue] = []
        self.counts: dict[str, dict[str, int]] = defaultdict(lambda: {"created": 0, "updated": 0, "linked": 0})
        self.links: dict[tuple[str, str], tuple[int, str]] = {}
        self.pending: dict[tuple[str, str], tuple[int, str]] = {}
        self.now = datetime.now(UTC)
        self.orgs: dict[str, TenantInfo | None] = {}
        self.years: dict[str, int] = {}  # session sourcedId → school_year id
        self.year_bounds: dict[int, tuple[date, date]] = {}
        self.terms: dict[str, int] = {}  # session sourcedId → term id
        self.subjects: dict[str, str] = {}  # course sourcedId → subject code
        self.classes: dict[str, dict[str, Any]] = {}
        self.pupils: dict[str, dict[str, Any]] = {}  # user sourcedId → student row
        self.people: dict[str, int] = {}  # user sourcedId → person id
        self.roles: dict[str, list[tuple[str, str]]] = defaultdict(list)  # user → [(role, org sourcedId)]
        self.assessments: dict[str, dict[str, Any]] = {}
        self.touched_people: set[int] = set()
        #: where the importer holds the import permission (see :meth:`_reachable`)
        self.reach: Scope | None = None
        #: class id → pupils enrolled in it (now or before), for checking results
        self.class_pupils: dict[int, set[int]] = {}
        #: users whose own row failed (later rows naming them are not reported again)
        self.failed_users: set[str] = set()
        #: school id → the ``madrasa_gradebook_write`` caller there (``None``: the grades module is off)
        self.gradebook_writers: dict[int, Any] = {}
        #: schools whose lineItems were left out (grades module off), with a warning given once
        self.grades_off: set[int] = set()

    # -- bookkeeping ---------------------------------------------------------------------------

    def error(self, file: str, row: dict[str, str] | int, column: str, message: str) -> None:
        """Record an error (the import will be rolled back)."""
        line = row if isinstance(row, int) else int(row.get("_row", 0))
        if file == "users" and isinstance(row, dict):
            self.failed_users.add(row["sourcedId"])
        self.errors.append(Issue(f"{file}.csv", line, column, message))

    def warn(self, file: str, row: dict[str, str] | int, column: str, message: str) -> None:
        """Record a warning (the row is skipped or read leniently)."""
        line = row if isinstance(row, int) else int(row.get("_row", 0))
        self.warnings.append(Issue(f"{file}.csv", line, column, message, "warning"))

    def count(self, kind: str, what: str) -> None:
        """Count one created, updated or linked object."""
        self.counts[kind][what] += 1

    async def load_links(self) -> None:
        """The sourcedIds earlier imports at this node mapped."""
        rows = await self.db.fetch(
            "SELECT kind, sourced_id, local_id, local_key FROM oneroster_link WHERE anchor_id = {} AND source = {}",
            self.anchor.id,
            self.bundle.system,
        )
        self.links = {(r["kind"], r["sourced_id"]): (int(r["local_id"]), r["local_key"]) for r in rows}

    async def link(self, kind: str, sourced_id: str, local_id: int, key: str = "") -> None:
        """Remember (or move) what a sourcedId stands for; written in batches by :meth:`flush_links`."""
        if self.links.get((kind, sourced_id)) == (local_id, key):
            return
        self.links[(kind, sourced_id)] = (local_id, key)
        self.pending[(kind, sourced_id)] = (local_id, key)

    async def flush_links(self) -> None:
        """Write the new or moved links (one statement per batch of rows)."""
        cols = self.anchor.scope_columns()
        rows = [
            (
                cols["region_id"],
                cols["province_id"],
                cols["school_id"],
                self.anchor.id,
                self.bundle.system,
                kind,
                sourced_id,
                local_id,
                key,
                self.now,
            )
            for (kind, sourced_id), (local_id, key) in self.pending.items()
        ]
        for start in range(0, len(rows), 1000):
            await self.db.executemany(
                "INSERT INTO oneroster_link (region_id, province_id, school_id, anchor_id, source, kind, sourced_id, "
                "local_id, local_key, updated_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}) "
                "ON CONFLICT (anchor_id, source, kind, sourced_id) DO UPDATE SET local_id = excluded.local_id, "
                "local_key = excluded.local_key, updated_at = excluded.updated_at",
                rows[start : start + 1000],
            )
        self.pending.clear()

    def linked(self, kind: str, sourced_id: str) -> int | None:
        """The local id a sourcedId was mapped to before."""
        found = self.links.get((kind, sourced_id))
        return found[0] if found else None

    def scoped(self, alias: str = "") -> SQL:
        """The request's tenant filter."""
        return scope_sql(self.ctx.scope, alias)

    async def _membership(self, person: int, role: str, node: TenantInfo) -> None:
        """Grant a role at a school (idempotent); each new membership is audited."""
        exists = await self.db.fetchval(
            "SELECT id FROM membership WHERE person_id = {} AND role = {} AND tenant_id = {}", person, role, node.id
        )
        if exists is None:
            await self.db.execute(
                "INSERT INTO membership (person_id, role, tenant_id, created_at) VALUES ({}, {}, {}, {})",
                person,
                role,
                node.id,
                self.now,
            )
            await audit.record(
                self.db,
                actor_id=self.ctx.person_id,
                action="membership.add",
                object_type="person",
                object_id=person,
                tenant=node,
                after={"role": role, "source": "oneroster"},
            )
            self.count("memberships", "created")
        self.touched_people.add(person)
