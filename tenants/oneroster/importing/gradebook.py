"""lineItems.csv and results.csv → assessments and marks, written by the grades module through its hook.

The rows are checked here (the class, its subject, the term, the maximum, the pupil and the score);
what they say is then handed, one school at a time, to ``madrasa_gradebook_write``, which the grades
module answers with its own services: a changed mark bumps the assessment's version and is audited as
a grid save is, and a closed term or a sheet past draft is refused there. Where the grades module is
off for a school nothing answers: that school's lineItems and results are left out, with a warning.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from core.exchange import GradebookProblem, GradebookWrite, GradebookWritten, LineItemIn, ResultIn
from core.plugins import resolve
from core.sql import SQL
from tenants.oneroster.bundle import tr
from tenants.oneroster.importing.base import ImporterBase

SCORED = frozenset({"fully graded", "partially graded", "submitted"})
#: The column of the row a refusal of the grades module is about.
PROBLEM_COLUMNS = {"class": "classSourcedId", "sheet": "classSourcedId", "score": "score"}
REASON = "OneRoster import"


def category_kind(category: dict[str, str]) -> str:
    """Our kind of assessment for a OneRoster category: exam, activity, else continuous assessment (cc)."""
    label = f"{category.get('sourcedId', '')} {category.get('title', '')}".casefold()
    return "exam" if "exam" in label else "activity" if "activ" in label else "cc"


class GradebookImport(ImporterBase):
    """lineItems and results, checked here and written through the grades module's hook."""

    async def gradebook_writer(self, school_id: int) -> Any | None:
        """The ``madrasa_gradebook_write`` caller for a school; ``None`` when the grades module is off there."""
        if school_id not in self.gradebook_writers:
            node = await self.ctx.services.tenants.by_id(school_id)
            assert node is not None
            disabled = await self.ctx.services.disabled_for(node.path)
            caller = self.ctx.services.plugins.hook_for("madrasa_gradebook_write", disabled)
            self.gradebook_writers[school_id] = caller if caller.get_hookimpls() else None
        return self.gradebook_writers[school_id]

    async def import_gradebook(self) -> None:
        """lineItems → assessments of the class's sheet for the term; results → marks (grades module on)."""
        writes: dict[int, tuple[list[LineItemIn], list[ResultIn]]] = defaultdict(lambda: ([], []))
        for row in self.bundle.rows.get("lineItems", []):
            item = await self.line_item(row)
            if item is not None:
                writes[self.assessments[row["sourcedId"]]["school_id"]][0].append(item)
        for row in self.bundle.rows.get("results", []):
            result = await self.result(row)
            if result is not None:
                writes[self.assessments[row["lineItemSourcedId"]]["school_id"]][1].append(result)
        for school_id, (items, results) in writes.items():
            write = GradebookWrite(school_id=school_id, line_items=items, results=results, reason=REASON)
            written = await resolve((await self.gradebook_writer(school_id))(ctx=self.ctx, write=write))
            await self.take(written)

    async def line_item(self, row: dict[str, str]) -> LineItemIn | None:
        """A lineItem checked and made ready for the grades module, or ``None`` (refused, or grades off)."""
        klass = self.classes.get(row["classSourcedId"])
        if klass is None:
            return None
        if await self.gradebook_writer(klass["school_id"]) is None:
            if klass["school_id"] not in self.grades_off:
                self.grades_off.add(klass["school_id"])
                node = await self.ctx.services.tenants.by_id(klass["school_id"])
                # a warning: this school's lineItems and results are left out, the rest is imported
                template = "the grades module is off for {slug}"
                self.warn("lineItems", row, "classSourcedId", tr(template, slug=node.slug if node else "?"))
            return None
        if klass["subject"] is None:
            self.error("lineItems", row, "classSourcedId", tr("marks need a scheduled class (a subject)"))
            return None
        session_column = self.session_column()
        term = self.terms.get(row.get(session_column, ""))
        if term is None:
            self.error("lineItems", row, session_column, tr("the session is no term of ours"))
            return None
        try:
            max_score = Decimal(row.get("resultValueMax") or "20").quantize(Decimal("0.01"))
        except InvalidOperation:
            max_score = Decimal(0)
        if not Decimal(0) < max_score <= Decimal(100):
            self.error("lineItems", row, "resultValueMax", tr("the maximum score must be above 0 and at most 100"))
            return None
        category = self.bundle.by_id("categories").get(row.get("categorySourcedId", ""), {})
        self.assessments[row["sourcedId"]] = {
            "max": max_score,
            "class_id": klass["id"],
            "school_id": klass["school_id"],
        }
        return LineItemIn(
            key=row["sourcedId"],
            class_id=klass["id"],
            subject_code=klass["subject"],
            term_id=term,
            kind=category_kind(category),
            title=row["title"][:100],
            scheduled_on=date.fromisoformat(row["assignDate"]),
            max_score=max_score,
            previous_id=self.linked("lineItem", row["sourcedId"]),
        )

    def session_column(self) -> str:
        """The lineItems column naming the term (it was renamed in 1.2)."""
        return "gradingPeriodSourcedId" if self.bundle.version == "1.1" else "academicSessionSourcedId"

    async def _in_class(self, class_id: int) -> set[int]:
        """The pupils with an enrolment (current or past) in a class, read once per class."""
        if class_id not in self.class_pupils:
            rows = await self.db.fetch(
                SQL("SELECT student_id FROM enrolment WHERE class_id = {} AND {}", class_id, self.scoped())
            )
            self.class_pupils[class_id] = {int(r["student_id"]) for r in rows}
        return self.class_pupils[class_id]

    async def result(self, row: dict[str, str]) -> ResultIn | None:
        """A result checked (a pupil of the lineItem's school and class, a score in range), or ``None``."""
        assessment = self.assessments.get(row["lineItemSourcedId"])
        pupil = self.pupils.get(row["studentSourcedId"])
        if assessment is None:
            return None
        if pupil is None:
            self.error("results", row, "studentSourcedId", tr("marks are given to pupils only"))
            return None
        class_sid = row.get("classSourcedId", "")
        if class_sid and self.classes.get(class_sid, {}).get("id") != assessment["class_id"]:
            self.error("results", row, "classSourcedId", tr("the result's class is not its lineItem's class"))
            return None
        names = {"student": row["studentSourcedId"], "item": row["lineItemSourcedId"]}
        if pupil["school_id"] != assessment["school_id"]:
            template = "pupil {student!r} belongs to another school than the class of lineItem {item!r}"
            self.error("results", row, "studentSourcedId", tr(template, **names))
            return None
        if pupil["id"] not in await self._in_class(assessment["class_id"]):
            template = "pupil {student!r} is not enrolled in the class of lineItem {item!r}"
            self.error("results", row, "studentSourcedId", tr(template, **names))
            return None
        status_value = row["scoreStatus"].casefold()
        score: Decimal | None = None
        if status_value in SCORED:
            status = "present"
            try:
                score = Decimal(row.get("score", ""))
            except InvalidOperation:
                self.error(
                    "results", row, "score", tr("a {status_value} result needs a score", status_value=status_value)
                )
                return None
            if score != score.quantize(Decimal("0.01")) or not Decimal(0) <= score <= assessment["max"]:
                self.error(
                    "results",
                    row,
                    "score",
                    tr("the score must be 0 to {max} with at most 2 decimals", max=assessment["max"]),
                )
                return None
            score = score.quantize(Decimal("0.01"))
        elif status_value == "exempt":
            status = "excused"
        elif status_value == "not submitted":
            status = "absent"
        else:
            template = "{scoreStatus!r} is not a mark: ignored"
            self.warn("results", row, "scoreStatus", tr(template, scoreStatus=row["scoreStatus"]))
            return None
        return ResultIn(
            key=row["sourcedId"], line_item=row["lineItemSourcedId"], student_id=pupil["id"], score=score, status=status
        )

    async def take(self, written: GradebookWritten) -> None:
        """What the grades module wrote: links, counts, and its refusals as errors of their rows."""
        for problem in written.problems:
            self.refused(problem)
        for kind, counts in written.counts.items():
            for what, n in counts.items():
                if n:
                    self.counts[kind][what] += n
        for key, local_id in written.line_items.items():
            await self.link("lineItem", key, local_id)
        for key, local_id in written.results.items():
            await self.link("result", key, local_id)

    def refused(self, problem: GradebookProblem) -> None:
        """A refusal of the grades module, reported on its row."""
        file = "lineItems" if problem.kind == "line_item" else "results"
        row = self.bundle.by_id(file).get(problem.key, {})
        column = self.session_column() if problem.field == "term" else PROBLEM_COLUMNS.get(problem.field, "")
        fallback = ("{message}", {"message": problem.message})
        template, values = (problem.msgid, problem.values) if problem.msgid else fallback
        self.error(file, row or 0, column, tr(template, **values))
