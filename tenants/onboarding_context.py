"""What every onboarding step shares: its limits, who acts (:class:`Actor`), the region's tree, the report.

A report (:class:`Report`) counts every error and lists the first :data:`MAX_LISTED_ERRORS`
(:class:`ErrorLog` keeps them, and writes every one to the batch's error file when it has one).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, Any

import msgspec

from core.context import RequestContext
from core.db import Database
from core.errors import NotFound
from core.identity import Identity
from core.school import pupil_staging
from core.school.guardians import PendingMail
from core.school.pupil_rows import EMAIL_RE, FILE
from core.scope import Scope
from core.services import Services
from core.tenancy import TenantInfo
from tenants.onboarding_rows import COLUMNS, KINDS, CellError, problem

__all__ = [
    "EMAIL_RE",
    "INLINE_ROWS",
    "INLINE_XLSX_BYTES",
    "INVITATION_TTL",
    "JOB_KIND",
    "MAX_LISTED_ERRORS",
    "MAX_ROWS",
    "SAMPLE_ROWS",
    "STALE_CLAIM",
    "VALIDATE_JOB_KIND",
    "Actor",
    "BatchOut",
    "ErrorLog",
    "Progress",
    "Report",
    "SampleRow",
    "Tree",
    "actor_of",
    "load_tree",
    "make_report",
    "now",
    "require_region",
]

#: Errors listed in a report (all are counted).
MAX_LISTED_ERRORS = 500
#: Rows shown in a preview.
SAMPLE_ROWS = 50
#: Files with more rows than this are committed by a background job.
INLINE_ROWS = 2000
MAX_ROWS = {"schools": 5000, "staff": 200_000, "students": 1_000_000}
INVITATION_TTL = timedelta(days=7)
JOB_KIND = "onboarding.commit"
VALIDATE_JOB_KIND = "onboarding.validate"
#: An XLSX file larger than this is previewed by a background job (its rows are not counted up front).
INLINE_XLSX_BYTES = 256 * 1024
#: A batch ``committing`` for longer than this lost its worker: a new commit may claim it.
STALE_CLAIM = timedelta(minutes=15)

Progress = Callable[[int, int, str], Awaitable[None]]


class SampleRow(msgspec.Struct):
    """A row of the preview: its line, what identifies it, and what committing will do with it."""

    row: int
    key: str
    label: str
    status: str  # new, unchanged, error


class Report(msgspec.Struct, kw_only=True):
    """What validating (and, once committed, writing) a file found."""

    ok: bool
    kind: str
    rows: int = 0
    #: What committing creates (or created), by kind of object.
    created: dict[str, int] = {}
    unchanged: int = 0
    error_count: int = 0
    errors: list[CellError] = []
    errors_truncated: bool = False
    sample: list[SampleRow] = []
    committed: bool = False


class BatchOut(msgspec.Struct, kw_only=True):
    """An onboarding batch."""

    id: str
    kind: str
    filename: str
    file_format: str
    status: str
    rows: int
    error_count: int
    job_id: str | None
    created_at: datetime
    committed_at: datetime | None
    report: Report


@dataclass
class Actor:
    """Who runs an onboarding step, with which scope, in which region."""

    services: Services
    scope: Scope
    identity: Identity | None
    region: TenantInfo
    #: Directors a committed staff file made, to be invited once the commit is over.
    new_directors: list[int] = field(default_factory=list)
    #: Guardian invitations a committed pupils file made, to be mailed once the commit is over.
    guardian_invitations: list[PendingMail] = field(default_factory=list)

    @property
    def person_id(self) -> int | None:
        """The acting person's id."""
        return self.identity.id if self.identity else None

    @property
    def db(self) -> Database:
        """The application database."""
        return self.services.db

    @property
    def max_bytes(self) -> int:
        """The largest file onboarding accepts (``MADRASA_ONBOARDING_MAX_BYTES``)."""
        return self.services.settings.onboarding_max_bytes

    def request_context(self) -> RequestContext:
        """A request context for services written for handlers (the tenants service)."""
        return RequestContext(
            services=self.services,
            permission="tenants.manage",
            identity=self.identity,
            tenant=self.region,
            scope=self.scope,
        )


def actor_of(ctx: RequestContext) -> Actor:
    """The request's actor; the request must name a region (``/t/<region>/…``)."""
    return Actor(ctx.services, ctx.scope, ctx.identity, require_region(ctx))


def require_region(ctx: RequestContext) -> TenantInfo:
    """The request's tenant, which must be a region."""
    tenant = ctx.tenant
    if tenant is None or tenant.kind != "region":
        raise NotFound("Onboarding works inside a region: use /t/<region>/….")
    return tenant


class ErrorLog(pupil_staging.ErrorLog):
    """Every error counted; the first :data:`MAX_LISTED_ERRORS` kept, and every one written to ``sink``."""

    def __init__(self, sink: IO[bytes] | None = None) -> None:
        super().__init__(sink, MAX_LISTED_ERRORS)


_ORDER = {kind: {FILE: -1, **{c: i for i, c in enumerate(COLUMNS[kind])}} for kind in KINDS}


def make_report(kind: str, errors: ErrorLog, **values: Any) -> Report:
    """The report of a kind's file: errors in row, then column, order."""
    order = _ORDER[kind]
    return Report(
        ok=errors.count == 0,
        kind=kind,
        error_count=errors.count,
        errors=sorted(errors.listed, key=lambda e: (e.row, order.get(e.column, len(order)))),
        errors_truncated=errors.count > len(errors.listed),
        **values,
    )


def now() -> datetime:
    """The current time (UTC)."""
    return datetime.now(UTC)


# -- the tenant tree as onboarding sees it ------------------------------------------------------


@dataclass
class Tree:
    """Schools and provinces by code and slug: this region's, and which belong to other regions."""

    region: TenantInfo
    schools: dict[str, tuple[int, int]]  # key → (school id, province id), this region
    provinces: dict[str, int]  # key → province id, this region
    foreign_schools: set[str]
    foreign_provinces: set[str]
    school_rows: dict[int, dict[str, Any]]

    def school(self, raw: str) -> tuple[int, int] | None:
        return self.schools.get(raw.upper()) or self.schools.get(raw.lower())

    def school_problem(self, line: int, raw: str) -> CellError:
        foreign = raw.upper() in self.foreign_schools or raw.lower() in self.foreign_schools
        return problem(line, "school", raw, "school_foreign" if foreign else "school_unknown", school=repr(raw))


async def load_tree(db: Database, region: TenantInfo) -> Tree:
    """The region's schools and provinces (a few thousand rows at most)."""
    rows = await db.fetch(
        "SELECT id, kind, slug, code, path, parent_id, name_ar, name_fr, name_en FROM tenant "
        "WHERE kind IN ('province', 'school')"
    )
    prefix = "/".join(str(p) for p in region.path) + "/"
    tree = Tree(region, {}, {}, set(), set(), {})
    for r in rows:
        keys = [r["slug"].lower()] + ([r["code"].upper()] if r["code"] else [])
        inside = r["path"].startswith(prefix)
        if r["kind"] == "school":
            if inside:
                province = int(r["path"].split("/")[2])
                for k in keys:
                    tree.schools[k] = (int(r["id"]), province)
                tree.school_rows[int(r["id"])] = r
            else:
                tree.foreign_schools.update(keys)
        elif inside:
            for k in keys:
                tree.provinces[k] = int(r["id"])
        else:
            tree.foreign_provinces.update(keys)
    return tree
