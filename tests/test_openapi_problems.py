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


def _media_matches(documented: str, received: str) -> bool:
    """Whether a received media type falls under a documented one (``*/*``, ``type/*`` or exact)."""
    main, _, sub = documented.partition("/")
    got_main, _, got_sub = received.split(";", 1)[0].strip().partition("/")
    return main in ("*", got_main) and sub in ("*", got_sub)


async def test_a_download_documents_the_files_own_media_type(world):
    """A stored PDF comes back as ``application/pdf``, which the document allows (it once said octet-stream)."""
    school = "lycee-ibn-batouta"
    schema = (await world.client.get("/schema/openapi.json")).json()
    response = await world.api(
        "GET", f"/api/v1/files/{world.files[school]}", as_=f"director.{school}@test.ma", tenant=school
    )
    assert response.status_code == 200, response.text
    received = response.headers["content-type"]
    assert received.startswith("application/pdf")
    documented = schema["paths"]["/api/v1/files/{file_id}"]["get"]["responses"]["200"]["content"]
    assert any(_media_matches(media, received) for media in documented), (received, list(documented))


async def test_a_guardian_invitation_is_a_documented_status(world):
    """Linking someone outside the school's reach answers 202 (an invitation), which the document lists."""
    school = "college-al-khawarizmi"
    schema = (await world.client.get("/schema/openapi.json")).json()
    response = await world.api(
        "POST",
        f"/api/v1/school/students/{world.objects[school]['student_id']}/guardians",
        as_=f"director.{school}@test.ma",
        tenant=school,
        json={"email": "outsider.openapi@elsewhere.test", "full_name": "Outsider"},
    )
    assert response.status_code == 202, response.text
    documented = schema["paths"]["/api/v1/school/students/{student_id}/guardians"]["post"]["responses"]
    assert {"201", "202"} <= set(documented)
    assert documented["202"]["content"]["application/json"]["schema"], documented["202"]
