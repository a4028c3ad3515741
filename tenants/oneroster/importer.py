"""Importing a checked OneRoster bundle at a tenant node: all of it in one scoped transaction, or nothing.

Mapping: orgs → the tenant tree (state → region, district/local → province, school → school),
academicSessions → school years and terms, courses → subjects per level, classes → classes
(a scheduled class naming its homeroom in ``metadata.homeroomClass`` adds a subject to that class;
any other scheduled class is a class of its own), users + roles → persons and memberships, pupils,
guardians, enrollments → enrolments, homeroom teachers and teaching assignments, demographics → a
pupil's birth date and sex, lineItems/results → grade assessments and marks, written by the grades module
through ``madrasa_gradebook_write`` (where it is off for a school, they are left out with a warning).

Every sourcedId is remembered per importing tenant (``oneroster_link``), so importing the same
bundle again updates what it created instead of creating it twice. A dry run does the whole import
and rolls it back, so its report is exactly what a real run would do.

A guardian's relation (mother, father, guardian) belongs to each guardian–pupil link: it is read from the
pupil's ``metadata.agentRelations`` (``guardianSourcedId=relation``, as the export writes it), else from the
guardian's ``metadata.relation``; a link given no relation is created as "guardian" and an existing one is left
as it is. An existing link's relation is changed only when the bundle names another one, and every such change
is reported as a warning.

Mark sheets past draft (submitted, validated, published) are never changed: a lineItem or result that says
exactly what is stored is matched as it is, anything else for such a sheet is refused (by the grades module).
An imported mark is saved like a grid save: the assessment's version is bumped and each change audited.

People are matched by e-mail. An existing person is linked (and given roles) only when the importer
already reaches them: a role at a node where the importer holds the import permission, or the account
of a pupil of the importing scope.
Any other existing address is refused with one neutral message ("cannot be used by this import; ask the
platform administrator"): it names no region, school, role or name, and the report's counts only ever
count persons the importer may see, so an import reveals no more than that the address is taken, which
creating an account with it would reveal anyway. A platform administrator's import links any address.
Every membership an import adds is written to the audit log (``membership.add``), like one added by hand.

A mark (results.csv) is taken only for a pupil of the lineItem's school who is, or was, enrolled in
the lineItem's class; the grades module then saves it as a grid save does (for a pupil of the class).

One module per part of the bundle (:mod:`tenants.oneroster.importing`): ``orgs``, ``sessions``,
``classes`` (courses and classes), ``users`` (users, roles, guardians), ``enrollments`` (and
demographics) and ``gradebook`` (lineItems and results), sharing the state of ``base``.
"""

from __future__ import annotations

import msgspec
from litestar.exceptions import HTTPException

from core import audit
from core.context import RequestContext
from core.invalidation import CALENDAR
from core.school.csv_import import WRITE_CONFLICTS
from core.tenancy import TenantInfo
from tenants.oneroster.bundle import MAX_ISSUES, Bundle, Issue, tr
from tenants.oneroster.importing.classes import ClassesImport
from tenants.oneroster.importing.enrollments import EnrollmentsImport
from tenants.oneroster.importing.gradebook import GradebookImport
from tenants.oneroster.importing.orgs import OrgsImport
from tenants.oneroster.importing.sessions import SessionsImport
from tenants.oneroster.importing.users import UsersImport

__all__ = ["ImportReport", "Importer", "build_report", "import_bundle"]


class ImportReport(msgspec.Struct, kw_only=True):
    """What an import found and did: ``ok`` only when nothing was wrong (and, unless a dry run, it was written)."""

    ok: bool
    dry_run: bool
    version: str = ""
    tenant: str = ""
    error_count: int = 0
    errors: list[Issue] = []
    warnings: list[Issue] = []
    #: object kind → {"created": n, "updated": n, "linked": n}
    counts: dict[str, dict[str, int]] = {}
    #: Another import or edit wrote the same rows meanwhile: nothing was written, try again.
    conflict: bool = False


class _Abort(Exception):
    """Rolls the transaction back (a dry run, or errors found while mapping)."""


class Importer(OrgsImport, SessionsImport, ClassesImport, UsersImport, EnrollmentsImport, GradebookImport):
    """One import at one tenant node, inside the caller's ``db.scoped`` transaction."""

    async def run(self) -> None:
        """Map every file in dependency order."""
        path = self.anchor.path
        #: National reference data (school years, terms, subjects) is added by region or platform administrators.
        self.may_add_reference = (await self.ctx.scope_for("calendar.manage")).covers(path)
        await self.load_links()
        await self.import_orgs()
        if self.errors:
            return
        await self.import_sessions()
        await self.import_courses()
        await self.import_classes()
        await self.collect_roles()
        await self.import_users()
        await self.import_enrollments()
        await self.import_demographics()
        if "lineItems" in self.bundle.rows:
            await self.import_gradebook()
        if not self.errors:
            await self.flush_links()


async def import_bundle(
    ctx: RequestContext, anchor: TenantInfo, bundle: Bundle, issues: list[Issue], *, dry_run: bool
) -> ImportReport:
    """Map a checked bundle in one scoped transaction; roll back on any error, or at the end of a dry run."""
    importer = Importer(ctx, anchor, bundle)
    db = ctx.services.db
    conflict = False
    try:
        async with db.scoped(ctx.scope):
            try:
                await importer.run()
            except WRITE_CONFLICTS as exc:
                detail = exc.detail if isinstance(exc, HTTPException) else str(exc).splitlines()[0]
                importer.errors.append(
                    Issue(
                        "bundle",
                        0,
                        "",
                        tr(
                            "someone changed the same data meanwhile ({detail}): nothing was imported; try again",
                            detail=detail,
                        ),
                    )
                )
                conflict = True
            if not importer.errors:
                await audit.record(
                    db,
                    actor_id=ctx.person_id,
                    action="oneroster.import",
                    object_type="tenant",
                    object_id=anchor.id,
                    tenant=anchor,
                    after={k: dict(v) for k, v in importer.counts.items()},
                )
            if importer.errors or dry_run:
                raise _Abort
    except _Abort:
        pass
    finally:
        ctx.services.tenants.invalidate()
        ctx.services.invalidation.publish(CALENDAR)  # academic sessions become school years and terms
        for person in importer.touched_people:
            ctx.services.grants.invalidate(person)
        if ctx.person_id is not None:
            ctx.services.grants.invalidate(ctx.person_id)
    report = build_report(
        issues + importer.errors + importer.warnings, bundle.version, anchor, dry_run, importer.counts
    )
    report.conflict = conflict
    return report


def build_report(
    issues: list[Issue],
    version: str,
    anchor: TenantInfo,
    dry_run: bool,
    counts: dict[str, dict[str, int]] | None = None,
) -> ImportReport:
    """The report of an import: errors first (capped), then warnings."""
    errors = [i for i in issues if i.severity == "error"]
    warnings = [i for i in issues if i.severity == "warning"]
    return ImportReport(
        ok=not errors,
        dry_run=dry_run,
        version=version,
        tenant=anchor.slug,
        error_count=len(errors),
        errors=errors[:MAX_ISSUES],
        warnings=warnings[:MAX_ISSUES],
        counts={k: dict(v) for k, v in (counts or {}).items()} if not errors else {},
    )
