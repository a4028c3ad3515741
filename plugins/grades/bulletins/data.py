"""Reading a class's bulletins for a term from the results computed at the term's close (set-based)."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from core.plugin_api import SQL, Database, Scope, ident, scope_sql
from plugins.grades.bulletins.model import BulletinData, Mark, SubjectLine, decimal_or_none


def _only(student_id: int | None, alias: str) -> SQL:
    """``<alias>.student_id = …`` for one pupil, else a condition that holds."""
    return SQL("1 = 1") if student_id is None else SQL("{} = {}", ident(alias, "student_id"), student_id)


async def gather_bulletins(
    db: Database, scope: Scope, class_id: int, term_id: int, *, student_id: int | None = None
) -> list[BulletinData]:
    """The bulletins of a class for a term (or of one of its pupils), from the results computed at the term's close.

    Set-based: five queries for the class whatever its size. Pupils are those with a general
    result for the class and term, ordered by name. Run inside ``db.scoped(scope)``.
    """
    head = await db.fetchrow(
        "SELECT c.id, c.name, c.region_id, c.province_id, c.school_id, l.name_ar AS level_ar, "
        "l.name_fr AS level_fr, y.label AS year_label, s.name_ar AS school_ar, s.name_fr AS school_fr, "
        "s.display_name, s.primary_color, s.secondary_color, r.name_ar AS region_ar, r.name_fr AS region_fr, "
        "t.number AS term_number "
        "FROM school_class c JOIN tenant s ON s.id = c.school_id LEFT JOIN tenant r ON r.id = c.region_id "
        "LEFT JOIN level l ON l.code = c.level_code LEFT JOIN school_year y ON y.id = c.school_year_id "
        "LEFT JOIN term t ON t.id = {} "
        "WHERE c.id = {} AND {}",
        term_id,
        class_id,
        scope_sql(scope, "c"),
    )
    if head is None:
        return []
    pupils = await db.fetch(
        "SELECT g.student_id, g.average, g.rank, g.ranked, st.national_code, st.first_name, st.last_name, "
        "st.first_name_ar, st.last_name_ar FROM grade_general_result g JOIN student st ON st.id = g.student_id "
        "WHERE g.class_id = {} AND g.term_id = {} AND {} AND {} "
        "ORDER BY st.last_name, st.first_name, st.id",
        class_id,
        term_id,
        scope_sql(scope, "g"),
        _only(student_id, "g"),
    )
    if not pupils:
        return []
    results = await db.fetch(
        "SELECT r.student_id, r.subject_code, r.average, r.coefficient, sub.name_ar, sub.name_fr, sub.id AS position "
        "FROM grade_subject_result r LEFT JOIN subject sub ON sub.code = r.subject_code "
        "WHERE r.class_id = {} AND r.term_id = {} AND {} AND {}",
        class_id,
        term_id,
        scope_sql(scope, "r"),
        _only(student_id, "r"),
    )
    stats = await db.fetch(
        "SELECT k.subject_code, k.mean FROM grade_class_stats k WHERE k.class_id = {} AND k.term_id = {} AND {}",
        class_id,
        term_id,
        scope_sql(scope, "k"),
    )
    marks = await db.fetch(
        "SELECT a.subject_code, a.position, m.student_id, m.score, m.status FROM grade_assessment a "
        "JOIN grade_sheet sh ON sh.id = a.sheet_id JOIN grade_mark m ON m.assessment_id = a.id "
        "WHERE a.class_id = {} AND a.term_id = {} AND a.kind = 'cc' AND sh.state IN ('validated', 'published') "
        "AND {} AND {}",
        class_id,
        term_id,
        scope_sql(scope, "a"),
        _only(student_id, "m"),
    )
    class_means = {row["subject_code"] or "": decimal_or_none(row["mean"]) for row in stats}
    by_pupil: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in results:
        by_pupil[row["student_id"]].append(row)
    pupil_marks: dict[tuple[int, str], dict[int, Mark]] = defaultdict(dict)
    cc_columns = 3
    for row in marks:
        position = int(row["position"] or 1)
        cc_columns = max(cc_columns, position)
        pupil_marks[(row["student_id"], row["subject_code"])][position] = Mark(
            decimal_or_none(row["score"]), row["status"] or "present"
        )
    cc_columns = min(cc_columns, 5)
    school_fr = head["display_name"] or head["school_fr"] or ""
    out = []
    for pupil in pupils:
        lines = []
        for row in sorted(
            by_pupil.get(pupil["student_id"], []), key=lambda r: (r["position"] or 10_000, r["subject_code"])
        ):
            got = pupil_marks.get((pupil["student_id"], row["subject_code"]), {})
            lines.append(
                SubjectLine(
                    code=row["subject_code"],
                    name_ar=row["name_ar"] or "",
                    name_fr=row["name_fr"] or row["subject_code"],
                    coefficient=decimal_or_none(row["coefficient"]) or Decimal(1),
                    marks=tuple(got.get(i) for i in range(1, cc_columns + 1)),
                    average=decimal_or_none(row["average"]),
                    class_average=class_means.get(row["subject_code"]),
                )
            )
        out.append(
            BulletinData(
                student_id=pupil["student_id"],
                class_id=class_id,
                term_id=term_id,
                region_id=head["region_id"],
                province_id=head["province_id"],
                school_id=head["school_id"],
                national_code=pupil["national_code"],
                first_name=pupil["first_name"] or "",
                last_name=pupil["last_name"] or "",
                first_name_ar=pupil["first_name_ar"] or "",
                last_name_ar=pupil["last_name_ar"] or "",
                class_name=head["name"],
                level_ar=head["level_ar"] or "",
                level_fr=head["level_fr"] or "",
                school_name_ar=head["school_ar"] or "",
                school_name_fr=school_fr,
                region_name_ar=head["region_ar"] or "",
                region_name_fr=head["region_fr"] or "",
                school_year=head["year_label"] or "",
                term_number=int(head["term_number"] or 1),
                subjects=tuple(lines),
                average=decimal_or_none(pupil["average"]),
                rank=pupil["rank"],
                ranked=int(pupil["ranked"] or 0),
                class_average=class_means.get(""),
                primary_color=head["primary_color"] or "#0b5d3b",
                secondary_color=head["secondary_color"] or "#c1272d",
                cc_columns=cc_columns,
            )
        )
    return out
