"""Tables of onboarding: uploaded batches with their validation report, school profiles, invitations.

Every table here is tenant-owned: it carries the scope columns (an onboarding batch belongs to
its region, a school profile and an invitation to their school) and has forced row-level
security on PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from piccolo.columns import JSONB, BigInt, Integer, Text, Timestamptz, Varchar
from piccolo.columns.column_types import Serial
from piccolo.table import Table


class OnboardingBatch(Table, tablename="onboarding_batch"):
    """An uploaded file (schools, staff or pupils), its validation report and what committing it did."""

    id = Varchar(length=36, primary_key=True)
    kind = Varchar(length=16)
    filename = Varchar(length=200)
    #: Key prefix of the stored file (kept in parts ``<key>.00000``, ``<key>.00001``…) and its size.
    file_key = Varchar(length=400)
    file_bytes = BigInt(default=0)
    file_format = Varchar(length=8)
    sha256 = Varchar(length=64, index=True)
    #: ``validating`` (a job is checking a large file), ``invalid`` (errors found), ``ready`` (may be
    #: committed), ``committing``, ``committed``.
    status = Varchar(length=12)
    rows = Integer(default=0)
    error_count = Integer(default=0)
    #: Every error of the last validation (JSON lines, stored in parts like the file), for download.
    errors_key = Varchar(length=400, default="")
    errors_bytes = BigInt(default=0)
    #: Counts and the listed errors of the last validation or commit.
    report = JSONB(default="{}")
    job_id = Varchar(length=36, null=True, default=None)
    created_by = Integer(null=True, default=None)
    created_at = Timestamptz()
    #: When the batch was last claimed for committing (a stale claim may be taken over).
    claimed_at = Timestamptz(null=True, default=None)
    committed_at = Timestamptz(null=True, default=None)
    region_id = Integer(index=True)
    province_id = Integer(null=True, default=None)
    school_id = Integer(null=True, default=None)


class SchoolProfile(Table, tablename="school_profile"):
    """What onboarding records about a school beyond the tenant node: its cycle and address."""

    id = Serial(primary_key=True)
    cycle = Varchar(length=16)
    address = Text(default="")
    updated_at = Timestamptz()
    region_id = Integer(index=True)
    province_id = Integer()
    school_id = Integer(unique=True)


class OnboardingInvitation(Table, tablename="onboarding_invitation"):
    """A one-time, expiring link inviting a person (a school director) to set a password."""

    id = Serial(primary_key=True)
    person_id = Integer(index=True)
    email = Varchar(length=254)
    role = Varchar(length=32)
    token_hash = Varchar(length=64, unique=True)
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)
    created_by = Integer(null=True, default=None)
    created_at = Timestamptz()
    region_id = Integer(index=True)
    province_id = Integer(null=True, default=None)
    school_id = Integer(null=True, default=None)


SCOPED_TABLES: list[type[Table]] = [OnboardingBatch, SchoolProfile, OnboardingInvitation]
ONBOARDING_TABLES: list[Any] = [*SCOPED_TABLES]
