"""academicSessions.csv → school years and terms (numbered by date)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from tenants.oneroster import mapping
from tenants.oneroster.bundle import Issue, tr
from tenants.oneroster.importing.base import ImporterBase


class SessionsImport(ImporterBase):
    """School years and terms."""

    async def _year(self, label: str, starts: date, ends: date) -> int:
        row = await self.db.fetchrow("SELECT id, starts_on, ends_on FROM school_year WHERE label = {}", label)
        if row is None and not self.may_add_reference:
            self.errors.append(
                Issue(
                    "academicSessions.csv",
                    0,
                    "schoolYear",
                    tr("school year {label} does not exist: ask your region", label=label),
                )
            )
            return 0
        if row is None:
            row = await self.db.fetchrow(
                "INSERT INTO school_year (label, starts_on, ends_on) VALUES ({}, {}, {}) RETURNING id, starts_on, "
                "ends_on",
                label,
                starts,
                ends,
            )
            assert row is not None
            self.count("schoolYears", "created")
            self.warnings.append(
                Issue(
                    "academicSessions.csv",
                    0,
                    "",
                    tr("school year {label} did not exist: created", label=label),
                    "warning",
                )
            )
        self.year_bounds[int(row["id"])] = (row["starts_on"], row["ends_on"])
        return int(row["id"])

    async def import_sessions(self) -> None:
        """School years become (or find) our school years; semesters and terms our terms, numbered by date."""
        rows = self.bundle.rows.get("academicSessions", [])
        by_id = {r["sourcedId"]: r for r in rows}
        region = self.anchor.region_id
        spans: dict[str, list[dict[str, str]]] = defaultdict(list)
        for row in rows:
            label = mapping.year_label(row["schoolYear"])
            parent = by_id.get(row.get("parentSourcedId", ""))
            if parent is not None and parent["type"].casefold() == "schoolyear":
                label = mapping.year_label(parent["schoolYear"])
            spans[label].append(row)
        for label, members in spans.items():
            starts = min(date.fromisoformat(r["startDate"]) for r in members)
            ends = max(date.fromisoformat(r["endDate"]) for r in members)
            year_id = await self._year(label, starts, ends)
            if not year_id:
                continue
            terms = sorted(
                (r for r in members if r["type"].casefold() in ("semester", "term")), key=lambda r: r["startDate"]
            )
            for row in members:
                self.years[row["sourcedId"]] = year_id
                if row["type"].casefold() == "schoolyear":
                    await self.link("session", row["sourcedId"], year_id, "year")
            for number, row in enumerate(terms, start=1):
                term = await self.db.fetchrow(
                    "SELECT id FROM term WHERE school_year_id = {} AND number = {} AND (tenant_id IS NULL OR "
                    "tenant_id = {}) ORDER BY tenant_id IS NULL",
                    year_id,
                    number,
                    region,
                )
                if term is None and not self.may_add_reference:
                    self.error(
                        "academicSessions",
                        row,
                        "type",
                        tr("{label} has no term {number}: ask your region", label=label, number=number),
                    )
                    continue
                if term is None:
                    term = await self.db.fetchrow(
                        "INSERT INTO term (school_year_id, tenant_id, number, starts_on, ends_on) "
                        "VALUES ({}, {}, {}, {}, {}) RETURNING id",
                        year_id,
                        region,
                        number,
                        date.fromisoformat(row["startDate"]),
                        date.fromisoformat(row["endDate"]),
                    )
                    assert term is not None
                    self.count("terms", "created")
                else:
                    self.count("terms", "linked")
                self.terms[row["sourcedId"]] = int(term["id"])
                await self.link("session", row["sourcedId"], int(term["id"]), "term")
            for row in members:
                kind = row["type"].casefold()
                if kind in ("schoolyear", "semester", "term"):
                    continue
                start = row["startDate"]
                holder = next((t for t in terms if t["startDate"] <= start <= t["endDate"]), None)
                if holder is None:
                    self.warn(
                        "academicSessions",
                        row,
                        "type",
                        tr("{type} {sourcedId!r} lies in no term", type=row["type"], sourcedId=row["sourcedId"]),
                    )
                    continue
                self.terms[row["sourcedId"]] = self.terms[holder["sourcedId"]]
                await self.link("session", row["sourcedId"], self.terms[holder["sourcedId"]], "term")
