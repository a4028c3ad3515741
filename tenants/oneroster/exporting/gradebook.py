"""categories.csv, lineItems.csv and results.csv: assessments and marks, read through the grades module's hook.

Schools are asked in groups of the same switched-off modules, through ``madrasa_gradebook_read``; where the
grades module is off nothing answers, so that school's gradebook is left out and the export says so (the
manifest's ``source.note``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from core.exchange import GradebookItem, GradebookResult
from core.plugins import resolve
from tenants.oneroster.exporting.base import ExporterBase, key, text

CATEGORIES = {"cc": "Contrôle continu", "exam": "Examen", "activity": "Activité"}
STATUS_SCORE = {"absent": "not submitted", "excused": "exempt"}


class GradebookExport(ExporterBase):
    """Line items and results of the schools where the grades module is on."""

    # set by the other parts
    slug: dict[int, str]
    schools: list[int]
    class_by_id: dict[int, dict[str, Any]]
    term_sid: dict[int, str]
    pupil_by_id: dict[int, dict[str, Any]]
    class_sid: Callable[[int], str]

    async def read_gradebook(self) -> None:
        """Sets ``assessments`` (of exported classes) and ``marks``; notes the schools where grades are off."""
        groups: dict[frozenset[str], list[int]] = defaultdict(list)
        for school_id in self.schools:
            node = await self.ctx.services.tenants.by_id(school_id)
            if node is not None:
                groups[await self.ctx.services.disabled_for(node.path)].append(school_id)
        items: list[GradebookItem] = []
        marks: list[GradebookResult] = []
        off: list[int] = []
        for disabled, school_ids in groups.items():
            caller = self.ctx.services.plugins.hook_for("madrasa_gradebook_read", disabled)
            book = await resolve(caller(ctx=self.ctx, school_ids=school_ids, class_ids=None))
            if book is None:
                off.extend(school_ids)
                continue
            items.extend(book.line_items)
            marks.extend(book.results)
        if off:
            slugs = ", ".join(sorted(self.slug[s] for s in off))
            self.notes.append(f"the grades module is off for {slugs}: lineItems and results left out")
        self.assessments = sorted((a for a in items if a.class_id in self.class_by_id), key=lambda a: a.id)
        self.marks = marks

    def item_sid(self, a: GradebookItem) -> str:
        """An assessment's sourcedId, from its class, subject, term, position, title and date."""
        scheduled = f"{self.class_sid(a.class_id)}-{a.subject_code}"
        return f"li-{key(scheduled, self.term_sid[a.term_id], a.position, a.title, text(a.scheduled_on))}"

    def gradebook_rows(self) -> dict[str, list[dict[str, str]]]:
        """The categories, lineItems and results files (nothing without assessments)."""
        if not self.assessments:
            return {}
        by_id = {a.id: a for a in self.assessments}
        line_items = [
            {
                "sourcedId": self.item_sid(a),
                "title": a.title or f"{a.subject_code} {text(a.scheduled_on)}",
                "assignDate": text(a.scheduled_on),
                "dueDate": text(a.scheduled_on),
                "classSourcedId": f"{self.class_sid(a.class_id)}-{a.subject_code}",
                "categorySourcedId": f"category-{a.kind}",
                "academicSessionSourcedId": self.term_sid[a.term_id],
                "resultValueMin": "0",
                "resultValueMax": text(a.max_score),
                "schoolSourcedId": self.slug[self.class_by_id[a.class_id]["school_id"]],
            }
            for a in self.assessments
        ]
        results = []
        for m in self.marks:
            if m.line_item_id not in by_id or m.student_id not in self.pupil_by_id:
                continue
            assessment = by_id[m.line_item_id]
            code = self.pupil_by_id[m.student_id]["national_code"]
            status = STATUS_SCORE.get(m.status) or ("fully graded" if m.score is not None else "not submitted")
            results.append(
                {
                    "sourcedId": f"res-{key(self.item_sid(assessment), code)}",
                    "lineItemSourcedId": self.item_sid(assessment),
                    "studentSourcedId": f"pupil-{code}",
                    "scoreStatus": status,
                    "score": text(m.score) if status == "fully graded" else "",
                    "scoreDate": text(m.updated_at)[:10],
                    "classSourcedId": f"{self.class_sid(assessment.class_id)}-{assessment.subject_code}",
                }
            )
        kinds = sorted({a.kind for a in self.assessments})
        categories = [{"sourcedId": f"category-{k}", "title": CATEGORIES.get(k, k)} for k in kinds]
        return {"categories": categories, "lineItems": line_items, "results": results}
