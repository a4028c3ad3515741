"""A first check that both worlds come up."""


async def test_world_comes_up(world):
    response = await world.client.get("/readyz")
    assert response.status_code == 200, response.text
    response = await world.api("GET", "/api/v1/plugins", as_="teacher@madrasa.demo", tenant="lycee-ibn-batouta")
    assert response.status_code == 200
    assert {p["name"] for p in response.json()} >= {"grades", "attendance", "homework", "hr", "example"}
