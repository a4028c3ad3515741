"""Roles taken away: a membership removed, audited, and forgotten by every process's grant cache."""

from __future__ import annotations

from litestar.exceptions import NotFoundException

from core import audit
from core.context import RequestContext
from core.errors import Invalid
from core.tenancy import TenantInfo
from tenants.service import _changed


async def remove_membership(ctx: RequestContext, person_id: int, role: str, node: TenantInfo, reason: str) -> None:
    """Take a role at a node away from a person, with a reason (audited); it stops counting in every process.

    404 when the person does not hold that role there, so two concurrent removals audit once.
    """
    reason = reason.strip()
    if len(reason) < 3:
        raise Invalid("reason", "Give a reason (at least 3 characters): it goes into the history.")
    if len(reason) > 2000:
        raise Invalid("reason", "At most 2000 characters.")
    svc = ctx.services
    removed = await svc.db.fetchval(
        "DELETE FROM membership WHERE person_id = {} AND role = {} AND tenant_id = {} RETURNING id",
        person_id,
        role,
        node.id,
    )
    if removed is None:
        raise NotFoundException(f"person {person_id} holds no {role} role at {node.slug}.")
    await audit.record(
        svc.db,
        actor_id=ctx.person_id,
        action="membership.remove",
        object_type="person",
        object_id=person_id,
        tenant=node,
        before={"role": role},
        reason=reason,
    )
    _changed(ctx, person_id)
