"""Reach: a write under a tenant needs a scope covering that tenant, on every route (``check_reach``).

A school's members hold their school's scope anywhere above it (``scope_for`` narrows a grant
below the requested tenant to the grant's subtree). Reading under the region's address with that
narrowed scope is harmless; writing is not, since handlers write at ``ctx.tenant``. The routes are
enumerated from the application, like the isolation suite does.
"""

from __future__ import annotations

from typing import Any

import pytest

from core.context import RequestContext
from core.errors import Forbidden
from core.middleware import check_reach
from core.permissions import AUTHENTICATED, PUBLIC
from core.scope import Scope
from core.tenancy import TenantInfo
from tests.test_isolation import HOME, app_routes, call, home_values

REGION = "casablanca-settat"  # HOME's region
MUTATING = ("POST", "PUT", "PATCH", "DELETE")
COEFFICIENT = {"level_code": "TC", "track_code": "TCS", "subject_code": "MATH", "coefficient": 9, "weekly_hours": 5}


def mutating_routes(world: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """Every unsafe route that needs a tenant role (public and person-level routes have no tenant scope)."""
    return [r for r in app_routes(world) if r[0] in MUTATING and r[2].get("permission") not in (PUBLIC, AUTHENTICATED)]


async def test_every_mutating_route_is_enumerated(world):
    routes = {(m, p) for m, p, _ in mutating_routes(world)}
    assert ("PUT", "/api/v1/coefficients") in routes
    assert ("POST", "/api/v1/files") in routes
    assert any(p.startswith("/api/v1/example") for _, p in routes) or len(routes) >= 30


@pytest.mark.parametrize("actor", [f"director.{HOME}@test.ma", f"teacher.{HOME}@test.ma"])
async def test_school_members_cannot_write_under_their_region(world, actor):
    """Under ``/t/<region>/`` every mutating route answers 403 (or 404 where hidden), never 2xx or 5xx."""
    values = await home_values(world)  # the actor's own school's objects: only the address is wrong
    failures = []
    for method, path, _ in mutating_routes(world):
        response = await call(world, method, path, actor, REGION, values)
        if response.status_code not in (403, 404):
            failures.append(f"{method} {path}: {response.status_code} {response.text[:120]}")
    assert not failures, "\n".join(failures)


async def test_director_cannot_override_region_coefficients(world):
    """The probe's finding: a director's PUT at the region's address is refused with a clear problem."""
    before = await world.sql("SELECT COUNT(*) FROM subject_coefficient WHERE tenant_id = {}", world.ids[REGION])
    response = await world.api(
        "PUT", "/api/v1/coefficients", as_=f"director.{HOME}@test.ma", tenant=REGION, json=COEFFICIENT
    )
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "tenant_not_covered" and "own school" in body["detail"]
    assert await world.sql("SELECT COUNT(*) FROM subject_coefficient WHERE tenant_id = {}", world.ids[REGION]) == before


async def test_reads_under_the_region_keep_the_narrowed_scope(world):
    """Reading at the region's address still works (writes at home: tests/test_calendar.py)."""
    director = f"director.{HOME}@test.ma"
    response = await world.api(
        "GET", "/api/v1/coefficients", as_=director, tenant=REGION, params={"level": "TC", "track": "TCS"}
    )
    assert response.status_code == 200


def node(id_: int, kind: str, path: tuple[int, ...]) -> TenantInfo:
    """A tenant node for the pure rule."""
    return TenantInfo(
        id=id_,
        kind=kind,  # type: ignore[arg-type]
        parent_id=path[-2] if len(path) > 1 else None,
        path=path,
        slug=f"n{id_}",
        code=None,
        name_ar="",
        name_fr=f"Node {id_}",
        name_en="",
        status="active",
        default_locale="fr",
        display_name=None,
        logo_key=None,
        primary_color="#000000",
        secondary_color="#ffffff",
    )


def test_check_reach_rule():
    """Pure rule: unsafe method, a tenant, a tenant permission and a scope not covering the tenant → 403."""
    region = node(2, "region", (1, 2))
    school = node(9, "school", (1, 2, 5, 9))

    def ctx(tenant: TenantInfo | None, scope: Scope, permission: str = "coefficients.manage") -> RequestContext:
        return RequestContext(services=None, permission=permission, tenant=tenant, scope=scope)  # type: ignore[arg-type]

    below = Scope(frozenset({9}))
    with pytest.raises(Forbidden):
        check_reach("PUT", ctx(region, below))
    with pytest.raises(Forbidden):
        check_reach("DELETE", ctx(region, below))
    check_reach("GET", ctx(region, below))  # reads keep the narrowed scope
    check_reach("PUT", ctx(school, below))
    check_reach("PUT", ctx(school, Scope(frozenset({2}))))  # granted above
    check_reach("PUT", ctx(region, Scope.everything()))
    check_reach("PUT", ctx(None, below))  # no tenant: handlers name their target
    check_reach("POST", ctx(region, Scope.nothing(), PUBLIC))
    check_reach("POST", ctx(region, Scope.nothing(), AUTHENTICATED))
