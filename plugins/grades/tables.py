"""Tables of the grades module.

A **sheet** is one class × subject × term: its workflow state (draft → submitted → validated →
published) decides who sees its marks. An **assessment** belongs to a sheet; each carries a
``version`` that the mark grid's ``ETag`` reflects. Results (subject and general averages, ranks,
class statistics) are written by the semester close, set-based. A school's **publication
version** (``grade_publication``) counts the changes families can see. Every table carries the
scope columns of its school.
"""

from __future__ import annotations

from decimal import Decimal

from piccolo.columns import JSONB, Date, Integer, Numeric, Serial, Timestamptz, Varchar
from piccolo.table import Table


class _Scoped(Table):
    region_id = Integer(index=True)
    province_id = Integer()
    school_id = Integer(index=True)


class GradeSheet(_Scoped, tablename="grade_sheet"):
    """Marks of one subject for one class and term, and where they are in the workflow."""

    id = Serial(primary_key=True)
    class_id = Integer(index=True)
    subject_code = Varchar(length=16)
    term_id = Integer()
    teacher_id = Integer(index=True)
    state = Varchar(length=12, default="draft")  # draft, submitted, validated, published
    submitted_at = Timestamptz(null=True, default=None)
    validated_by = Integer(null=True, default=None)
    published_at = Timestamptz(null=True, default=None)


class GradeAssessment(_Scoped, tablename="grade_assessment"):
    """A continuous assessment or exam of a sheet."""

    id = Serial(primary_key=True)
    sheet_id = Integer(index=True)
    class_id = Integer(index=True)
    subject_code = Varchar(length=16)
    term_id = Integer()
    kind = Varchar(length=8, default="cc")  # cc (contrôle continu), exam, activity
    position = Integer(default=1)  # order within the sheet: CC1, CC2, CC3 in the Massar layout
    title = Varchar(length=100, default="")
    scheduled_on = Date()
    max_score = Numeric(digits=(5, 2), default=Decimal(20))
    weight = Numeric(digits=(5, 2), default=Decimal(1))
    version = Integer(default=0)  # bumped by every save of the grid (ETag)
    created_at = Timestamptz()


class GradeMark(_Scoped, tablename="grade_mark"):
    """One pupil's mark in an assessment: a score, or absent / excused."""

    id = Serial(primary_key=True)
    assessment_id = Integer(index=True)
    student_id = Integer(index=True)
    score = Numeric(digits=(5, 2), null=True, default=None)
    status = Varchar(length=8, default="present")  # present, absent, excused
    updated_at = Timestamptz()
    updated_by = Integer(null=True, default=None)


class GradePolicy(Table, tablename="grade_policy"):
    """A region's rules (national when ``tenant_id`` is NULL): required assessments, absences, deadlines."""

    id = Serial(primary_key=True)
    tenant_id = Integer(null=True, default=None)
    required_cc = Integer(default=3)
    #: How an unjustified absence counts in a subject average: ``zero`` or ``ignore``.
    absent_counts_as = Varchar(length=8, default="zero")
    #: How an excused absence counts: ``ignore`` (left out) or ``zero``.
    excused_counts_as = Varchar(length=8, default="ignore")


class GradeDeadline(Table, tablename="grade_deadline"):
    """The last day of mark entry for a term, national or a region's."""

    id = Serial(primary_key=True)
    tenant_id = Integer(null=True, default=None)
    term_id = Integer()
    entry_deadline = Date()


class GradeTermClose(_Scoped, tablename="grade_term_close"):
    """A school's term is closed: marks are locked and results computed."""

    id = Serial(primary_key=True)
    term_id = Integer()
    closed_at = Timestamptz()
    closed_by = Integer(null=True, default=None)


class GradeSubjectResult(_Scoped, tablename="grade_subject_result"):
    """A pupil's average in a subject for a term (computed at close)."""

    id = Serial(primary_key=True)
    term_id = Integer()
    class_id = Integer(index=True)
    student_id = Integer(index=True)
    subject_code = Varchar(length=16)
    average = Numeric(digits=(6, 3), null=True, default=None)
    coefficient = Numeric(digits=(5, 2))


class GradeGeneralResult(_Scoped, tablename="grade_general_result"):
    """A pupil's general average and rank in the class for a term (computed at close)."""

    id = Serial(primary_key=True)
    term_id = Integer()
    class_id = Integer(index=True)
    student_id = Integer(index=True)
    average = Numeric(digits=(6, 3), null=True, default=None)
    rank = Integer(null=True, default=None)
    ranked = Integer(default=0)  # how many pupils were ranked in the class


class GradeClassStats(_Scoped, tablename="grade_class_stats"):
    """Statistics of a class for a term: per subject, or general when ``subject_code`` is empty."""

    id = Serial(primary_key=True)
    term_id = Integer()
    class_id = Integer(index=True)
    subject_code = Varchar(length=16, default="")
    count = Integer(default=0)
    mean = Numeric(digits=(6, 3), null=True, default=None)
    median = Numeric(digits=(6, 3), null=True, default=None)
    minimum = Numeric(digits=(6, 3), null=True, default=None)
    maximum = Numeric(digits=(6, 3), null=True, default=None)
    pass_share = Numeric(digits=(5, 4), null=True, default=None)  # share of averages ≥ 10/20
    distribution = JSONB(default="[]")  # counts per band [0,2), [2,4), … [18,20]


class GradeBulletin(_Scoped, tablename="grade_bulletin"):
    """A generated report card (PDF in object storage)."""

    id = Serial(primary_key=True)
    term_id = Integer()
    student_id = Integer(index=True)
    class_id = Integer()
    storage_key = Varchar(length=400)
    locale = Varchar(length=4, default="ar")
    created_at = Timestamptz()


class GradePublication(_Scoped, tablename="grade_publication"):
    """A school's publication version: bumped by every change families can see (one row per school).

    Publishing a sheet, correcting marks past draft, scheduling an assessment, computing or
    closing a term's results all add one, in the writing transaction; the results-day caches
    (``ETag``, the shared cache, stored report cards) are keyed by it.
    """

    id = Serial(primary_key=True)
    version = Integer(default=0)
    changed_at = Timestamptz()


SCOPED_TABLES: list[type[Table]] = [
    GradeSheet,
    GradeAssessment,
    GradeMark,
    GradeTermClose,
    GradeSubjectResult,
    GradeGeneralResult,
    GradeClassStats,
    GradeBulletin,
    GradePublication,
]
GRADES_TABLES: list[type[Table]] = [*SCOPED_TABLES, GradePolicy, GradeDeadline]
