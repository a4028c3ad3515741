"""Isolation samples for the onboarding routes (``tenants/onboarding_api.py``, ``admin_ui/onboarding_pages.py``)."""

from __future__ import annotations

from typing import Any

from tests.isolation import Multipart

FOREIGN_REGION = "rabat-sale-kenitra"
SCHOOLS_CSV = b"code,name_ar,name_fr,cycle,province,address\n42199Z,x,Intrus,lycee,rabat,x\n"

BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/v1/onboarding/batches"): Multipart(
        files={"file": ("schools.csv", SCHOOLS_CSV, "text/csv")}, data={"kind": "schools"}
    ),
    ("POST", "/api/v1/onboarding/batches/{batch_id:str}/commit"): {},
    ("POST", "/api/v1/onboarding/schools"): {
        "code": "42199Z",
        "name_ar": "x",
        "name_fr": "Intrus",
        "cycle": "lycee",
        "province": "rabat",
    },
    ("POST", "/api/v1/onboarding/invitations"): {
        "school": "lycee-moulay-youssef",
        "email": "intruder@test.ma",
        "full_name": "Intrus",
    },
    ("POST", "/admin/onboarding/upload"): Multipart(
        files={"file": ("schools.csv", SCHOOLS_CSV, "text/csv")}, data={"kind": "schools"}
    ),
    ("POST", "/admin/onboarding/batches/{batch_id:str}/commit"): {"csrf_token": "sent-in-header"},
    ("POST", "/admin/onboarding/schools"): {
        "code": "42199Z",
        "name_fr": "Intrus",
        "cycle": "lycee",
        "province": "rabat",
    },
    ("POST", "/admin/onboarding/invitations"): {
        "school": "lycee-moulay-youssef",
        "email": "intruder@test.ma",
        "full_name": "Intrus",
    },
    ("POST", "/admin/onboarding/nodes"): {"slug": "intruder-province", "name_fr": "Intrus"},
}


async def foreign_values(world: Any) -> dict[str, Any]:
    """A batch of the other region (made once by its region admin).

    It has an error (the file has only a header), so its stored error file exists: ``GET …/errors.csv``
    (API and page) is tried against a real foreign download.
    """
    cache = world.objects.setdefault("onboarding", {})
    if "batch_id" not in cache:
        response = await world.api(
            "POST",
            "/api/v1/onboarding/batches",
            as_="region.rabat@madrasa.demo",
            tenant=FOREIGN_REGION,
            data={"kind": "schools"},
            files={"file": ("schools.csv", b"code,name_ar,name_fr,cycle,province\n", "text/csv")},
        )
        assert response.status_code == 422, response.text
        cache["batch_id"] = response.json()["id"]
        listing = await world.api(
            "GET",
            f"/api/v1/onboarding/batches/{cache['batch_id']}/errors.csv",
            as_="region.rabat@madrasa.demo",
            tenant=FOREIGN_REGION,
        )
        assert listing.status_code == 200 and "only_header" in listing.text, listing.text
    return {"batch_id": cache["batch_id"]}
