"""Core tables: the tenant tree, programmes, identities, memberships, sessions, settings, audit, files.

Tables whose rows belong to a tenant carry the scope columns ``region_id``, ``province_id``
and ``school_id`` (nullable where the row sits higher in the tree); only they use those names,
platform tables refer to a node as ``tenant_id``. On PostgreSQL every such
table has forced row-level security (see :mod:`core.migrate`). The tenant tree, identities and
memberships are platform tables read before any scope exists; only core services touch them.
"""

from __future__ import annotations

from piccolo.columns import (
    JSONB,
    BigInt,
    BigSerial,
    Boolean,
    Integer,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table

SCOPE_COLUMNS = ("region_id", "province_id", "school_id")


class Tenant(Table, tablename="tenant"):
    """A node of the tree: platform → region → province → school."""

    id = Serial(primary_key=True)
    kind = Varchar(length=16)
    parent_id = Integer(null=True, default=None, index=True)
    #: Ancestor ids and own id, slash separated with a trailing slash: ``"1/2/7/"``.
    path = Varchar(length=200, index=True)
    slug = Varchar(length=80, unique=True)
    code = Varchar(length=40, null=True, default=None)
    name_ar = Varchar(length=200, default="")
    name_fr = Varchar(length=200, default="")
    name_en = Varchar(length=200, default="")
    status = Varchar(length=16, default="active")
    default_locale = Varchar(length=8, default="fr")
    display_name = Varchar(length=200, null=True, default=None)
    logo_key = Varchar(length=300, null=True, default=None)
    primary_color = Varchar(length=7, default="#0b5d3b")
    secondary_color = Varchar(length=7, default="#c1272d")
    created_at = Timestamptz()


class TenantDomain(Table, tablename="tenant_domain"):
    """A custom host name that serves a tenant's portal."""

    id = Serial(primary_key=True)
    tenant_id = Integer(index=True)
    host = Varchar(length=253, unique=True)


class Programme(Table, tablename="programme"):
    """A named cohort of schools from any regions."""

    id = Serial(primary_key=True)
    slug = Varchar(length=80, unique=True)
    name_ar = Varchar(length=200, default="")
    name_fr = Varchar(length=200, default="")
    name_en = Varchar(length=200, default="")
    created_at = Timestamptz()


class ProgrammeSchool(Table, tablename="programme_school"):
    """Membership of a school in a programme."""

    id = Serial(primary_key=True)
    programme_id = Integer(index=True)
    #: The school node (named ``tenant_id`` like every reference to a node from platform tables).
    tenant_id = Integer(index=True)


class Person(Table, tablename="person"):
    """One identity per person across the whole platform."""

    id = Serial(primary_key=True)
    email = Varchar(length=254, unique=True)
    password_hash = Varchar(length=200, null=True, default=None)
    full_name = Varchar(length=200, default="")
    full_name_ar = Varchar(length=200, default="")
    locale = Varchar(length=8, default="fr")
    active = Boolean(default=True)
    created_at = Timestamptz()


class Membership(Table, tablename="membership"):
    """A role held by a person at a tenant node (covering its subtree) or for a programme."""

    id = Serial(primary_key=True)
    person_id = Integer(index=True)
    role = Varchar(length=32)
    tenant_id = Integer(null=True, default=None, index=True)
    programme_id = Integer(null=True, default=None, index=True)
    created_at = Timestamptz()


class AuthSession(Table, tablename="auth_session"):
    """A login: a browser session (``web``) or an API refresh-token family (``api``)."""

    id = Varchar(length=64, primary_key=True)
    person_id = Integer(index=True)
    kind = Varchar(length=8)
    #: SHA-256 of the browser cookie or of the current refresh token.
    secret_hash = Varchar(length=64, unique=True)
    csrf_token = Varchar(length=64, default="")
    tenant_id = Integer(null=True, default=None)
    created_at = Timestamptz()
    expires_at = Timestamptz()
    revoked_at = Timestamptz(null=True, default=None)
    user_agent = Varchar(length=300, default="")
    ip = Varchar(length=64, default="")


class LoginAttempt(Table, tablename="login_attempt"):
    """A failed login, counted per (account, address) pair or per known device for throttling."""

    id = Serial(primary_key=True)
    email = Varchar(length=254, index=True)
    ip = Varchar(length=64, index=True)
    at = Timestamptz(index=True)
    #: The nonce of the account's known-device token the client presented, or ``""`` (an unknown device).
    device = Varchar(length=64, default="")


class PasswordReset(Table, tablename="password_reset"):
    """A one-time password-reset token (stored hashed)."""

    id = Serial(primary_key=True)
    person_id = Integer(index=True)
    token_hash = Varchar(length=64, unique=True)
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)


class ModuleSetting(Table, tablename="module_setting"):
    """An explicit on/off for a module at a tenant node or for a programme."""

    id = Serial(primary_key=True)
    module = Varchar(length=64)
    tenant_id = Integer(null=True, default=None)
    programme_id = Integer(null=True, default=None)
    enabled = Boolean()
    updated_by = Integer(null=True, default=None)
    reason = Text(default="")
    updated_at = Timestamptz()


class AuditLog(Table, tablename="audit_log"):
    """Append-only record of changes: who, when, which tenant and object, before and after."""

    id = BigSerial(primary_key=True)
    at = Timestamptz(index=True)
    actor_id = Integer(null=True, default=None)
    action = Varchar(length=64)
    object_type = Varchar(length=64)
    object_id = Varchar(length=64, default="")
    tenant_id = Integer(null=True, default=None)
    region_id = Integer(null=True, default=None, index=True)
    province_id = Integer(null=True, default=None)
    school_id = Integer(null=True, default=None, index=True)
    before = JSONB(null=True, default=None)
    after = JSONB(null=True, default=None)
    reason = Text(default="")
    request_id = Varchar(length=64, default="")


class StoredFile(Table, tablename="stored_file"):
    """A file in object storage, owned by a tenant node.

    Being in scope is not enough to read it: the uploader (``owner_id``), the people it is
    addressed to (:class:`StoredFileReader`) and the tenant's managers may (``core/api/platform.py``).
    """

    id = Serial(primary_key=True)
    key = Varchar(length=400, unique=True)
    tenant_id = Integer()
    region_id = Integer(null=True, default=None, index=True)
    province_id = Integer(null=True, default=None)
    school_id = Integer(null=True, default=None, index=True)
    category = Varchar(length=40)
    filename = Varchar(length=200)
    content_type = Varchar(length=100)
    size = BigInt()
    owner_id = Integer(null=True, default=None)
    created_at = Timestamptz()


class StoredFileReader(Table, tablename="stored_file_reader"):
    """A person a stored file is addressed to: they may read it (with the file's scope columns)."""

    id = Serial(primary_key=True)
    file_id = Integer(index=True)
    person_id = Integer(index=True)
    region_id = Integer(null=True, default=None, index=True)
    province_id = Integer(null=True, default=None)
    school_id = Integer(null=True, default=None, index=True)


class GuardianInvitation(Table, tablename="guardian_invitation"):
    """A pending guardian link: a one-time, expiring token (stored hashed) mailed to the guardian's address.

    The guardianship and the parent role are granted only when the token is used (``used_at``, ``person_id``).
    """

    id = Serial(primary_key=True)
    student_id = Integer(index=True)
    email = Varchar(length=254)
    full_name = Varchar(length=200)
    full_name_ar = Varchar(length=100)
    relation = Varchar(length=16)
    locale = Varchar(length=8)
    token_hash = Varchar(length=64, unique=True)
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)
    person_id = Integer(null=True, default=None)
    created_by = Integer(null=True, default=None)
    created_at = Timestamptz()
    region_id = Integer(null=True, default=None, index=True)
    province_id = Integer(null=True, default=None)
    school_id = Integer(null=True, default=None, index=True)


class RetentionPeriod(Table, tablename="retention_period"):
    """How many days a region (or, as the default of every region, the platform) keeps a kind of record.

    Kinds are those of :data:`core.privacy.retention.KINDS`; without a row the documented default applies.
    """

    id = Serial(primary_key=True)
    tenant_id = Integer(index=True)
    kind = Varchar(length=16)
    days = Integer()
    updated_by = Integer(null=True, default=None)
    updated_at = Timestamptz()


CORE_TABLES: list[type[Table]] = [
    Tenant,
    TenantDomain,
    Programme,
    ProgrammeSchool,
    Person,
    Membership,
    AuthSession,
    LoginAttempt,
    PasswordReset,
    ModuleSetting,
    AuditLog,
    StoredFile,
    StoredFileReader,
    GuardianInvitation,
    RetentionPeriod,
]
