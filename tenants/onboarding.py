"""Onboarding a region: schools, staff, pupils and guardians from CSV or XLSX files, all or nothing.

This module gathers the public names of onboarding; the work is done in modules named for what
they hold:

* :mod:`tenants.onboarding_context` — limits, the acting :class:`Actor`, the region's tree, reports;
* :mod:`tenants.onboarding_files` — reading CSV and XLSX files as a stream of records;
* :mod:`tenants.onboarding_rows` — header names, the check of each row, error codes and messages
  (a pupil row is checked by :func:`core.school.pupil_rows.check_pupil`, as in a director's import);
* :mod:`tenants.onboarding_staging` — temporary staging tables and set-based checks over them;
* :mod:`tenants.onboarding_schools`, :mod:`tenants.onboarding_pupils`, :mod:`tenants.onboarding_staff`
  — checking and writing each kind of file;
* :mod:`tenants.onboarding_batches` — upload, validation and commit of a batch, and their jobs;
* :mod:`tenants.onboarding_invitations` — one-time invitations of school directors.

Errors are those of :mod:`core.errors` (``Conflict`` with a ``code``, ``Invalid``, ``TooLarge``).
"""

from __future__ import annotations

from core.errors import Conflict, Invalid, TooLarge
from core.school.pupil_rows import EMAIL_RE
from tenants.onboarding_batches import (
    BATCH_COLUMNS,
    PART_BYTES,
    RUNNERS,
    RolledBack,
    add_school,
    batch_out,
    commit_job,
    errors_csv,
    get_batch,
    list_batches,
    run_commit,
    run_validation,
    start_commit,
    upload,
    validate_job,
    validate_stream,
)
from tenants.onboarding_context import (
    INLINE_ROWS,
    JOB_KIND,
    MAX_LISTED_ERRORS,
    MAX_ROWS,
    SAMPLE_ROWS,
    VALIDATE_JOB_KIND,
    Actor,
    BatchOut,
    Report,
    SampleRow,
    Tree,
    actor_of,
    load_tree,
    require_region,
)
from tenants.onboarding_invitations import accept_invitation, invitation_for, invite, invite_directors
from tenants.onboarding_rows import KINDS

__all__ = [
    "BATCH_COLUMNS",
    "EMAIL_RE",
    "INLINE_ROWS",
    "JOB_KIND",
    "KINDS",
    "MAX_LISTED_ERRORS",
    "MAX_ROWS",
    "PART_BYTES",
    "RUNNERS",
    "SAMPLE_ROWS",
    "VALIDATE_JOB_KIND",
    "Actor",
    "BatchOut",
    "Conflict",
    "Invalid",
    "Report",
    "RolledBack",
    "SampleRow",
    "TooLarge",
    "Tree",
    "accept_invitation",
    "actor_of",
    "add_school",
    "batch_out",
    "commit_job",
    "errors_csv",
    "get_batch",
    "invitation_for",
    "invite",
    "invite_directors",
    "list_batches",
    "load_tree",
    "require_region",
    "run_commit",
    "run_validation",
    "start_commit",
    "upload",
    "validate_job",
    "validate_stream",
]
