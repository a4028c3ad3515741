"""Exporting a tenant's rosters as a OneRoster 1.2 CSV bundle: only what the caller's scope covers.

Every query runs inside ``db.scoped(ctx.scope)`` (row-level security on PostgreSQL) and names the
schools of the exported subtree that the scope covers, so another region's rows can't appear.

Our model → OneRoster: region → state org, province → district, school → school; a school year →
``schoolYear`` session and its terms → ``semester`` sessions; a class → a ``homeroom`` class (course:
its level) plus one ``scheduled`` class per subject taught in it (course: subject × level, extension
column ``metadata.homeroomClass`` naming the homeroom); pupils, teachers, directors and guardians →
users with roles (a guardian's relation to each pupil — mother, father, guardian — is a property of the link,
so it travels on the pupil's row: ``metadata.agentRelations`` lists ``guardianSourcedId=relation`` for each of
the pupil's ``agentSourcedIds``; the guardian's own ``metadata.relation`` is filled only when all their links
share one relation); enrolments and teaching assignments → enrollments; a pupil's birth date and sex →
demographics; with the grades module on for a school, assessments → lineItems and marks → results (read
through the grades module's ``madrasa_gradebook_read``; where it is off, the manifest's ``source.note`` says
that lineItems and results were left out).

Free-text cells (names, titles, ``metadata.*``, and ``classCode``, which carries a class's name) that a
spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab, CR first) leave with a leading
apostrophe; sourcedIds, codes, dates and e-mail addresses are written as they are. Importing such a bundle
back keeps the apostrophe: the importer refuses free text that starts like a formula.

One module per part of the bundle (:mod:`tenants.oneroster.exporting`): ``orgs``, ``sessions``,
``classes`` (courses and classes), ``users`` (users, roles, demographics), ``enrollments`` and
``gradebook`` (categories, lineItems, results).
"""

from __future__ import annotations

import csv
import io
import zipfile

from core.context import RequestContext
from core.tenancy import TenantInfo
from tenants.oneroster.exporting.base import key, text
from tenants.oneroster.exporting.classes import ClassesExport
from tenants.oneroster.exporting.enrollments import EnrollmentsExport
from tenants.oneroster.exporting.gradebook import CATEGORIES, STATUS_SCORE, GradebookExport
from tenants.oneroster.exporting.orgs import OrgsExport
from tenants.oneroster.exporting.sessions import SessionsExport
from tenants.oneroster.exporting.users import UsersExport, agent_relations, one_relation
from tenants.oneroster.spec import EXPORTED_AS_TEXT, MANIFEST_FILES, MANIFEST_NOTE, SPECS_12, csv_safe, free_text

__all__ = [
    "CATEGORIES",
    "EXTENSIONS",
    "STATUS_SCORE",
    "Exporter",
    "agent_relations",
    "export_bundle",
    "key",
    "one_relation",
    "pack",
    "text",
]

EXTENSIONS: dict[str, tuple[str, ...]] = {
    "orgs": ("metadata.nameAr", "metadata.nameEn"),
    "courses": ("metadata.titleAr",),
    "classes": ("metadata.track", "metadata.homeroomClass"),
    "users": (
        "metadata.fullName",
        "metadata.fullNameAr",
        "metadata.givenNameAr",
        "metadata.familyNameAr",
        "metadata.relation",
        "metadata.agentRelations",
    ),
}


def _csv(name: str, rows: list[dict[str, str]]) -> bytes:
    """A file's CSV text; free-text cells a spreadsheet would run as a formula get a leading apostrophe."""
    header = [*SPECS_12[name].header, *EXTENSIONS.get(name, ())]
    texts = {c for c in header if free_text(name, c) or c in EXPORTED_AS_TEXT.get(name, ())}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        cells = ((column, row.get(column, "")) for column in header)
        writer.writerow([csv_safe(v) if c in texts and isinstance(v, str) else v for c, v in cells])
    return out.getvalue().encode("utf-8")


def pack(files: dict[str, list[dict[str, str]]], system: str = "madrasa", notes: list[str] | None = None) -> bytes:
    """The zip: ``manifest.csv`` (every ``file.*`` row, and ``source.note`` for what was left out) and the CSV files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        manifest = io.StringIO()
        writer = csv.writer(manifest, lineterminator="\r\n")
        writer.writerow(["propertyName", "value"])
        writer.writerow(["manifest.version", "1.0"])
        writer.writerow(["oneroster.version", "1.2"])
        for name in MANIFEST_FILES:
            writer.writerow([f"file.{name}", "bulk" if name in files else "absent"])
        writer.writerow(["source.systemName", system])
        writer.writerow(["source.systemCode", "madrasa"])
        if notes:
            writer.writerow([MANIFEST_NOTE, csv_safe("; ".join(notes))])
        archive.writestr("manifest.csv", manifest.getvalue().encode("utf-8"))
        for name, rows in files.items():
            archive.writestr(f"{name}.csv", _csv(name, rows))
    return buffer.getvalue()


class Exporter(OrgsExport, ClassesExport, SessionsExport, GradebookExport, UsersExport, EnrollmentsExport):
    """Reads one tenant's rosters inside the caller's scoped transaction."""

    async def build(self) -> dict[str, list[dict[str, str]]]:
        """Every file's rows, read part by part (each part keeps what the later ones need)."""
        orgs = await self.read_orgs()
        await self.read_classes()
        await self.read_calendar()
        await self.read_teaching()
        await self.read_gradebook()
        sessions = self.session_rows({a.term_id for a in self.assessments})
        classes = self.class_rows({(a.class_id, a.subject_code) for a in self.assessments})
        await self.read_people()
        users, roles, demographics = self.user_rows()
        files: dict[str, list[dict[str, str]]] = {
            "orgs": orgs,
            "academicSessions": sessions,
            "courses": list(self.courses.values()),
            "classes": classes,
            "users": users,
            "roles": roles,
            "enrollments": self.enrollment_rows(),
            "demographics": demographics,
        }
        files.update(self.gradebook_rows())
        return files


async def export_bundle(ctx: RequestContext, tenant: TenantInfo) -> bytes:
    """The zip of a tenant's rosters, read inside the caller's scope."""
    async with ctx.services.db.scoped(ctx.scope, write=False):
        exporter = Exporter(ctx, tenant)
        files = await exporter.build()
    return pack(files, notes=exporter.notes)
