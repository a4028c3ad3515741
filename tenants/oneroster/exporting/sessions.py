"""academicSessions.csv: the school years of the exported classes, and the terms of each school's region."""

from __future__ import annotations

from typing import Any

from core.sql import SQL
from tenants.oneroster import mapping
from tenants.oneroster.exporting.base import ExporterBase, text


class SessionsExport(ExporterBase):
    """School years and terms: sets ``years``, ``term_rows``, ``terms_of`` and ``term_sid``."""

    # set by the other parts
    slug: dict[int, str]
    region_of: dict[int, int]
    year_ids: set[int]

    async def read_calendar(self) -> None:
        """The years of the exported classes and their terms (a region's own, else the national ones)."""
        self.years: dict[int, dict[str, Any]] = {
            r["id"]: r
            for r in await self.read_in(
                lambda ids: SQL("SELECT id, label, starts_on, ends_on FROM school_year WHERE id IN {}", ids),
                self.year_ids,
            )
        }
        regions = set(self.region_of.values())
        self.term_rows = await self.read_in(
            lambda ids: SQL(
                "SELECT id, school_year_id, tenant_id, number, starts_on, ends_on FROM term "
                "WHERE school_year_id IN {} ORDER BY number",
                ids,
            ),
            self.year_ids,
        )
        self.terms_of: dict[tuple[int, int], list[dict[str, Any]]] = {}
        for year in self.year_ids:
            national = [t for t in self.term_rows if t["school_year_id"] == year and t["tenant_id"] is None]
            for region in regions:
                own = [t for t in self.term_rows if t["school_year_id"] == year and t["tenant_id"] == region]
                self.terms_of[(year, region)] = own or national
        self.term_sid: dict[int, str] = {
            t["id"]: f"term-{self.years[t['school_year_id']]['label']}-{t['number']}"
            + (f"-{self.slug.get(t['tenant_id'], t['tenant_id'])}" if t["tenant_id"] is not None else "")
            for t in self.term_rows
        }

    def session_rows(self, assessment_terms: set[int]) -> list[dict[str, str]]:
        """The years, then the terms the classes run in or an assessment falls in."""
        sessions: list[dict[str, str]] = []
        for year in sorted(self.years.values(), key=lambda y: y["label"]):
            sessions.append(
                {
                    "sourcedId": f"year-{year['label']}",
                    "title": year["label"],
                    "type": "schoolYear",
                    "startDate": text(year["starts_on"]),
                    "endDate": text(year["ends_on"]),
                    "schoolYear": mapping.ended_year(year["label"]),
                }
            )
        used = {t["id"]: t for ts in self.terms_of.values() for t in ts}
        used.update({t["id"]: t for t in self.term_rows if t["id"] in assessment_terms})
        for term in sorted(used.values(), key=lambda t: (t["school_year_id"], t["number"], t["id"])):
            label = self.years[term["school_year_id"]]["label"]
            sessions.append(
                {
                    "sourcedId": self.term_sid[term["id"]],
                    "title": f"S{term['number']} {label}",
                    "type": "semester",
                    "startDate": text(term["starts_on"]),
                    "endDate": text(term["ends_on"]),
                    "parentSourcedId": f"year-{label}",
                    "schoolYear": mapping.ended_year(label),
                }
            )
        return sessions
