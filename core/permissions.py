"""Roles, named permissions and which roles hold them."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

ROLES: tuple[str, ...] = (
    "platform_admin",
    "region_admin",
    "province_admin",
    "programme_manager",
    "school_director",
    #: The school's supervisor (surveillant général): pupils' attendance and discipline.
    "supervisor",
    "teacher",
    "parent",
    "student",
)
STAFF_ROLES = frozenset({"platform_admin", "region_admin", "province_admin", "programme_manager", "school_director"})
ALL_ROLES = frozenset(ROLES)

#: Handler ``opt`` value for routes anyone may call without logging in.
PUBLIC = "public"
#: Any logged-in person, with no tenant role needed (``/api/v1/me``, logout, …).
AUTHENTICATED = "authenticated"


class Permission(msgspec.Struct, frozen=True):
    """A named permission (``plugin.verb``) and the roles that hold it."""

    name: str
    description: str
    roles: frozenset[str]


CORE_PERMISSIONS: list[Permission] = [
    Permission("tenants.view", "See tenant nodes and their settings", ALL_ROLES),
    Permission(
        "tenants.manage",
        "Create and edit regions, provinces and schools",
        frozenset({"platform_admin", "region_admin"}),
    ),
    Permission("tenants.suspend", "Suspend or reactivate a tenant", frozenset({"platform_admin", "region_admin"})),
    Permission("programmes.manage", "Create programmes and choose their schools", frozenset({"platform_admin"})),
    Permission("modules.view", "See which modules are enabled", ALL_ROLES),
    Permission(
        "modules.manage",
        "Switch modules on or off",
        frozenset({"platform_admin", "region_admin", "province_admin", "programme_manager", "school_director"}),
    ),
    Permission(
        "audit.read",
        "Read the audit log",
        frozenset({"platform_admin", "region_admin", "province_admin", "programme_manager", "school_director"}),
    ),
    Permission("files.upload", "Upload files", ALL_ROLES),
    Permission("files.read", "Download files", ALL_ROLES),
    Permission(
        "people.manage",
        "Create identities and memberships",
        frozenset({"platform_admin", "region_admin", "province_admin", "school_director"}),
    ),
    Permission("portal.view", "Use the tenant portal", ALL_ROLES),
    Permission("jobs.view", "Follow the progress of background jobs", ALL_ROLES),
    Permission(
        "school.manage",
        "Manage a school's classes, rooms, pupils, enrolments, assignments and timetable",
        frozenset({"platform_admin", "region_admin", "province_admin", "school_director"}),
    ),
    Permission(
        "school.view",
        "See a school's classes, pupils and timetables",
        frozenset(
            {"platform_admin", "region_admin", "province_admin", "programme_manager", "school_director", "teacher"}
        ),
    ),
    Permission(
        "calendar.manage", "Set a region's term dates and holidays", frozenset({"platform_admin", "region_admin"})
    ),
    Permission(
        "coefficients.manage",
        "Override subject coefficients for a region or a school",
        frozenset({"platform_admin", "region_admin", "school_director"}),
    ),
    Permission("timetable.view", "See one's own timetable, or one's children's", ALL_ROLES),
    Permission("family.view", "See one's children (guardians) or oneself (pupils)", frozenset({"parent", "student"})),
    Permission("notifications.read", "Read one's notifications and choose how they arrive", ALL_ROLES),
    Permission(
        "notifications.configure",
        "Set which notification kinds may use SMS and which are mandatory",
        frozenset({"platform_admin", "region_admin", "province_admin", "school_director"}),
    ),
    Permission(
        "notifications.stats",
        "See notification delivery statistics",
        frozenset({"platform_admin", "region_admin", "province_admin", "school_director"}),
    ),
    Permission(
        "privacy.configure",
        "Set a region's retention periods for personal data",
        frozenset({"platform_admin", "region_admin"}),
    ),
]


class PermissionRegistry:
    """Every permission known to the process, from core and plugins."""

    def __init__(self) -> None:
        self._by_name: dict[str, Permission] = {}

    def register(self, permissions: Iterable[Permission]) -> None:
        """Add permissions; a name registered twice with other roles is an error."""
        for perm in permissions:
            unknown = perm.roles - ALL_ROLES
            if unknown:
                raise ValueError(f"permission {perm.name}: unknown roles {sorted(unknown)}")
            existing = self._by_name.get(perm.name)
            if existing and existing != perm:
                raise ValueError(f"permission {perm.name} registered twice with different definitions")
            self._by_name[perm.name] = perm

    def __contains__(self, name: object) -> bool:
        return name in self._by_name or name in (PUBLIC, AUTHENTICATED)

    def roles_for(self, name: str) -> frozenset[str]:
        """Roles that hold a permission."""
        return self._by_name[name].roles

    def all(self) -> list[Permission]:
        """Every registered permission, by name."""
        return sorted(self._by_name.values(), key=lambda p: p.name)
