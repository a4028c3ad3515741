"""The OpenAPI document lists the problem responses of every ``/api/v1`` operation (``core/openapi.py``)."""

from __future__ import annotations

from typing import Any

from core.openapi import uses_if_match
from core.permissions import PUBLIC

PROBLEM_JSON = "application/problem+json"
REF = "#/components/schemas/ProblemDetails"
METHODS = ("get", "post", "put", "patch", "delete")


def handlers(world: Any) -> dict[tuple[str, str], Any]:
    """``(method, OpenAPI path) → handler`` for the API routes."""
    out = {}
    for route in world.litestar.routes:
        if not route.path.startswith("/api/v1"):
            continue
        for handler in getattr(route, "route_handlers", []):
            for method in getattr(handler, "http_methods", ()):
                out[(method.lower(), route.path_format)] = handler
    return out


async def test_every_api_operation_documents_its_problems(world):
    response = await world.client.get("/schema/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    problem = schema["components"]["schemas"]["ProblemDetails"]
    assert {"type", "title", "status", "detail"} <= set(problem["properties"])
    assert set(problem["required"]) >= {"title", "status", "detail"}
    by_route = handlers(world)
    conditional = []
    operations = 0
    for path, item in schema["paths"].items():
        if not path.startswith("/api/v1"):
            continue
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            operations += 1
            handler = by_route[(method, path)]
            own = set(handler.responses or {}) - _ours(handler)
            expected = {400, 404}
            if handler.opt.get("permission") != PUBLIC:
                expected |= {401, 403}
            if "requestBody" in operation:
                expected |= {400, 422}
            if uses_if_match(handler):
                expected |= {409, 428}
                conditional.append((method, path))
            documented = operation["responses"]
            for status in sorted(expected):
                what = f"{method.upper()} {path}: {status}"
                assert str(status) in documented, f"{what} not documented"
                if status in own:
                    continue  # the handler documents this status itself (a report, not a problem)
                content = documented[str(status)].get("content") or {}
                assert PROBLEM_JSON in content, f"{what}: {list(content)}"
                assert content[PROBLEM_JSON]["schema"] == {"$ref": REF}, what
    assert operations > 50
    assert ("put", "/api/v1/grades/assessments/{assessment_id}/marks") in conditional


def _ours(handler: Any) -> set[int]:
    """Statuses whose response spec is the problem one (added by ``document_problems``)."""
    from core.openapi import ProblemDetails

    return {status for status, spec in (handler.responses or {}).items() if spec.data_container is ProblemDetails}


async def test_the_log_in_documents_its_refusals(world):
    schema = (await world.client.get("/schema/openapi.json")).json()
    token = schema["paths"]["/api/v1/auth/token"]["post"]["responses"]
    assert {"400", "401", "429"} <= set(token)  # malformed, wrong credentials, throttled
    assert "403" not in token  # public: no permission to lack
