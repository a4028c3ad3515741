"""Results day: families' reads of published results carry an ``ETag`` of the publication (304 when held),
their payloads sit in the shared cache (in-process and real Redis) until a publication or a correction, and
report cards are rendered on their first download and served from storage afterwards."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest

from core.scope import Scope
from core.shared_cache import MemorySharedCache, RedisSharedCache
from plugins.grades import publication, results_cache
from tests.conftest import PASSWORD, link_guardian
from tests.test_grades import Setup
from tests.test_grades_family_portal import close_with_results, past_term, pupil

REDIS_URL = os.environ.get("MADRASA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
HOME = "lycee-ibn-batouta"
PRIVATE = "private, no-cache"


@pytest.fixture(params=["memory", "redis"])
async def shared_cache(request: pytest.FixtureRequest, world: Any) -> AsyncIterator[Any]:
    """The world's shared cache for one test: in-process, or a real Redis under a prefix of this test's own."""
    previous = world.services.shared_cache
    if request.param == "memory":
        cache: Any = MemorySharedCache()
    else:
        cache = RedisSharedCache(REDIS_URL, f"madrasa-test:{secrets.token_hex(6)}:")
    world.services.shared_cache = cache
    try:
        yield cache
    finally:
        world.services.shared_cache = previous
        if isinstance(cache, RedisSharedCache):
            from redis.asyncio import Redis

            client = Redis.from_url(REDIS_URL)
            keys = [key async for key in client.scan_iter(match=f"{cache.prefix}*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()
            await cache.close()


async def family_of_two(world: Any) -> Setup:
    """:class:`tests.test_grades.Setup` (a class, a CC1, a guardian of the first pupil) with the second pupil
    linked to the same guardian."""
    s = await Setup(world).build()
    await link_guardian(world, HOME, s.pupils[1], s.guardian, "Parent")
    return s


async def pupil_with_guardian(world: Any, name: str) -> tuple[dict[str, Any], str]:
    """A pupil of a fresh class and their guardian, who can log in."""
    guardian = f"parent.{name.lower()}.{world.backend}.{secrets.token_hex(3)}@test.ma"
    child = await pupil(world, HOME, name, guardian)
    person = await world.services.db.fetchval("SELECT id FROM person WHERE email = {}", guardian)
    await world.services.identity.set_password(person, PASSWORD)
    world.passwords[guardian] = PASSWORD
    return child, guardian


async def cached_key(world: Any, kind: str, student_id: int) -> str:
    """The shared-cache key of a pupil's payload at the current publication versions."""
    db = world.services.db
    async with db.scoped(Scope.everything(), write=False):
        versions = await publication.pupil_versions(db, Scope.everything(), student_id)
    return results_cache.cache_key(kind, student_id, versions)


async def test_marks_api_etag_304_publication_and_correction(world: Any, shared_cache: Any) -> None:
    s = await family_of_two(world)
    first, second = s.pupils[0], s.pupils[1]
    url = f"/api/v1/me/pupils/{first}/marks"

    empty = await world.api("GET", url, as_=s.guardian, tenant=HOME)
    assert empty.status_code == 200 and empty.json() == []
    tag = empty.headers["etag"]
    assert tag.startswith('"g1-') and empty.headers["cache-control"] == PRIVATE
    assert "Authorization" in empty.headers["vary"]
    held = await world.api("GET", url, as_=s.guardian, tenant=HOME, headers={"if-none-match": tag})
    assert held.status_code == 304 and held.content == b"" and held.headers["etag"] == tag
    # A stale or foreign tag is a full answer; another child of the same family has another tag.
    assert (await world.api("GET", url, as_=s.guardian, tenant=HOME, headers={"if-none-match": '"x"'})).json() == []
    sibling = await world.api("GET", f"/api/v1/me/pupils/{second}/marks", as_=s.guardian, tenant=HOME)
    assert sibling.status_code == 200 and sibling.headers["etag"] != tag

    # Marks in draft change nothing families see: same tag, still nothing.
    grid = (await s.grid()).headers["etag"]
    assert (await s.save([{"student_id": first, "score": 15.5}], grid)).status_code == 200
    draft = await world.api("GET", url, as_=s.guardian, tenant=HOME, headers={"if-none-match": tag})
    assert draft.status_code == 304

    # Publication: a new tag and the mark.
    for action in ("submit", "validate", "publish"):
        assert (await s.move(action)).status_code == 200
    published = await world.api("GET", url, as_=s.guardian, tenant=HOME, headers={"if-none-match": tag})
    assert published.status_code == 200 and published.headers["etag"] != tag
    assert [(m["subject_code"], m["score"]) for m in published.json()] == [("PC", 15.5)]
    tag2 = published.headers["etag"]

    # The payload is served from the shared cache: what the cache holds under the publication's key is
    # what the next read answers.
    key = await cached_key(world, "marks", first)
    assert await shared_cache.get(key) is not None
    await shared_cache.set(key, b'[{"from":"the shared cache"}]', 60)
    assert (await world.api("GET", url, as_=s.guardian, tenant=HOME)).json() == [{"from": "the shared cache"}]

    # A correction after publication bumps the version: new key, new tag, the corrected mark.
    grid = (await s.grid(actor=s.director)).headers["etag"]
    fixed = await s.save([{"student_id": first, "score": 17}], grid, actor=s.director, reason="erreur de report")
    assert fixed.status_code == 200, fixed.text
    corrected = await world.api("GET", url, as_=s.guardian, tenant=HOME, headers={"if-none-match": tag2})
    assert corrected.status_code == 200 and corrected.headers["etag"] not in (tag, tag2)
    assert [(m["subject_code"], m["score"]) for m in corrected.json()] == [("PC", 17.0)]
    assert await cached_key(world, "marks", first) != key

    # Another family gets a 404 whatever tag it sends (the access check comes first).
    other = f"guardian.{HOME}@test.ma"
    for headers in ({}, {"if-none-match": corrected.headers["etag"]}):
        assert (await world.api("GET", url, as_=other, tenant=HOME, headers=headers)).status_code == 404


async def test_marks_page_etag_304_and_publication(world: Any, shared_cache: Any) -> None:
    s = await family_of_two(world)
    first, second = s.pupils[0], s.pupils[1]
    page_url = f"/grades/pupils/{first}?lang=fr"

    page = await world.api("GET", page_url, as_=s.guardian, tenant=HOME)
    assert page.status_code == 200 and page.headers["cache-control"] == PRIVATE
    tag = page.headers["etag"]
    held = await world.api("GET", page_url, as_=s.guardian, tenant=HOME, headers={"if-none-match": tag})
    assert held.status_code == 304 and held.content == b""
    sibling = await world.api("GET", f"/grades/pupils/{second}?lang=fr", as_=s.guardian, tenant=HOME)
    assert sibling.status_code == 200 and sibling.headers["etag"] != tag
    arabic = await world.api(
        "GET", f"/grades/pupils/{first}?lang=ar", as_=s.guardian, tenant=HOME, headers={"if-none-match": tag}
    )
    assert arabic.status_code == 200 and arabic.headers["etag"] != tag and 'dir="rtl"' in arabic.text

    grid = (await s.grid()).headers["etag"]
    assert (await s.save([{"student_id": first, "score": 12.25}], grid)).status_code == 200
    for action in ("submit", "validate", "publish"):
        assert (await s.move(action)).status_code == 200
    after = await world.api("GET", page_url, as_=s.guardian, tenant=HOME, headers={"if-none-match": tag})
    assert after.status_code == 200 and after.headers["etag"] != tag and "12,25" in after.text
    other = f"guardian.{HOME}@test.ma"
    refused = await world.api("GET", page_url, as_=other, tenant=HOME, headers={"if-none-match": tag})
    assert refused.status_code == 404


async def test_results_api_etag_follows_the_close(world: Any, shared_cache: Any) -> None:
    child, guardian = await pupil_with_guardian(world, "Ilyas")
    term_id = await past_term(world)
    url = f"/api/v1/me/pupils/{child['id']}/results"
    assert (await world.api("GET", url, as_=guardian, tenant=HOME)).status_code == 404  # no closed term yet
    await close_with_results(world, child, term_id, rank=2)
    school = await world.services.tenants.by_slug(HOME)
    async with world.services.db.scoped(Scope.everything()):
        await publication.bump(world.services.db, [school.id])  # what the close does in its transaction
    first = await world.api("GET", url, as_=guardian, tenant=HOME)
    assert first.status_code == 200 and first.headers["cache-control"] == PRIVATE
    assert [(t["term_id"], t["average"], t["rank"]) for t in first.json()["terms"]] == [(term_id, 14.25, 2)]
    tag = first.headers["etag"]
    assert (await world.api("GET", url, as_=guardian, tenant=HOME, headers={"if-none-match": tag})).status_code == 304
    async with world.services.db.scoped(Scope.everything()):  # results computed again, with a new rank
        await world.services.db.execute(
            "UPDATE grade_general_result SET rank = 1 WHERE student_id = {} AND term_id = {}", child["id"], term_id
        )
        await publication.bump(world.services.db, [school.id])
    again = await world.api("GET", url, as_=guardian, tenant=HOME, headers={"if-none-match": tag})
    assert again.status_code == 200 and again.headers["etag"] != tag
    assert again.json()["terms"][0]["rank"] == 1


async def bulletin_rows(world: Any, student_id: int, term_id: int) -> list[dict[str, Any]]:
    async with world.services.db.scoped(Scope.everything(), write=False):
        return await world.services.db.fetch(
            "SELECT id, locale, storage_key, school_id FROM grade_bulletin WHERE student_id = {} AND term_id = {} "
            "ORDER BY locale",
            student_id,
            term_id,
        )


async def test_report_card_rendered_on_first_download_then_served_from_storage(world: Any) -> None:
    child, guardian = await pupil_with_guardian(world, "Hiba")
    term_id = await past_term(world)
    await close_with_results(world, child, term_id, rank=4)
    storage = world.services.storage
    async with world.services.db.scoped(Scope.everything()):  # only the results: no card stored yet
        await world.services.db.execute(
            "DELETE FROM grade_bulletin WHERE student_id = {} AND term_id = {}", child["id"], term_id
        )
    url = f"/grades/pupils/{child['id']}/bulletins/{term_id}/fr"
    api_url = f"/api/v1/me/pupils/{child['id']}/bulletins/{term_id}/fr"

    first = await world.api("GET", url, as_=guardian, tenant=HOME)
    assert first.status_code == 200, first.text
    assert first.content.startswith(b"%PDF") and first.headers["cache-control"] == PRIVATE
    rows = await bulletin_rows(world, child["id"], term_id)
    assert [r["locale"] for r in rows] == ["fr"]  # only the language asked for was rendered
    key = rows[0]["storage_key"]
    version = await world.sql("SELECT version FROM grade_publication WHERE school_id = {}", rows[0]["school_id"])
    assert key.startswith(f"t/{rows[0]['school_id']}/bulletins/v{version or 0}/{child['id']}/")
    assert await storage.get(key, tenant_id=rows[0]["school_id"]) == first.content

    # The second download reads storage: what the stored object holds is what is served (no new render).
    marker = b"%PDF-1.4\n% kept in storage\n"
    await storage.put(key, marker, "application/pdf", tenant_id=rows[0]["school_id"])
    second = await world.api("GET", api_url, as_=guardian, tenant=HOME)
    assert second.status_code == 200 and second.content == marker
    assert second.headers["etag"] == first.headers["etag"]
    assert await bulletin_rows(world, child["id"], term_id) == rows
    held = await world.api("GET", url, as_=guardian, tenant=HOME, headers={"if-none-match": first.headers["etag"]})
    assert held.status_code == 304 and held.content == b""

    # Isolation: another family gets nothing, whatever tag it holds, nor by the card's id.
    for who in (f"guardian.{HOME}@test.ma", f"teacher.{HOME}@test.ma"):
        for path, headers in ((url, {}), (url, {"if-none-match": first.headers["etag"]}), (api_url, {})):
            refused = await world.api("GET", path, as_=who, tenant=HOME, headers=headers)
            assert refused.status_code in (403, 404), (who, path, refused.status_code)
        by_id = await world.api(
            "GET", f"/grades/bulletins/{rows[0]['id']}", as_=f"guardian.{HOME}@test.ma", tenant=HOME
        )
        assert by_id.status_code == 404
    # A language that does not exist, and a term without results, are not found.
    assert (await world.api("GET", url[:-2] + "xx", as_=guardian, tenant=HOME)).status_code == 404
    other_term = f"/grades/pupils/{child['id']}/bulletins/{term_id + 10_000}/fr"
    assert (await world.api("GET", other_term, as_=guardian, tenant=HOME)).status_code == 404

    # A new publication makes a new card; the previous one's file and row are gone.
    async with world.services.db.scoped(Scope.everything()):
        await publication.bump(world.services.db, [rows[0]["school_id"]])
    third = await world.api("GET", url, as_=guardian, tenant=HOME, headers={"if-none-match": first.headers["etag"]})
    assert third.status_code == 200 and third.content.startswith(b"%PDF") and third.content != marker
    assert third.headers["etag"] != first.headers["etag"]
    new_rows = await bulletin_rows(world, child["id"], term_id)
    assert len(new_rows) == 1 and new_rows[0]["storage_key"] != key
    assert not await storage.exists(key, tenant_id=rows[0]["school_id"])


async def test_a_card_rendered_while_the_school_publishes_again_is_served_but_not_kept(world: Any) -> None:
    from core.context import RequestContext
    from core.identity import Identity
    from plugins.grades.bulletins.cards import card_bytes, locate_card

    child, guardian = await pupil_with_guardian(world, "Rayan")
    term_id = await past_term(world)
    await close_with_results(world, child, term_id, rank=6)
    async with world.services.db.scoped(Scope.everything()):
        await world.services.db.execute(
            "DELETE FROM grade_bulletin WHERE student_id = {} AND term_id = {}", child["id"], term_id
        )
    person = await world.services.db.fetchrow(
        "SELECT id, email, full_name, full_name_ar, locale FROM person WHERE email = {}", guardian
    )
    ctx = RequestContext(
        services=world.services,
        permission="family.view",
        identity=Identity(person["id"], person["email"], person["full_name"], person["full_name_ar"], "fr"),
        tenant=await world.services.tenants.by_slug(HOME),
    )
    scope = await ctx.scope_everywhere("family.view")
    db = world.services.db
    async with db.scoped(scope, write=False):
        card = await locate_card(ctx, scope, child["id"], term_id, "ar")
    assert not card.stored
    async with db.scoped(Scope.everything()):  # a publication lands while the card is being rendered
        await publication.bump(db, [card.school_id])
    pdf = await card_bytes(ctx, scope, card)
    assert pdf.startswith(b"%PDF")
    assert await bulletin_rows(world, child["id"], term_id) == []  # nothing recorded for the old version
    assert not await world.services.storage.exists(card.key, tenant_id=card.school_id)
    fresh = await world.api("GET", f"/grades/pupils/{child['id']}/bulletins/{term_id}/ar", as_=guardian, tenant=HOME)
    assert fresh.status_code == 200
    [row] = await bulletin_rows(world, child["id"], term_id)
    assert row["storage_key"] != card.key and f"/bulletins/v{card.version + 1}/" in row["storage_key"]
