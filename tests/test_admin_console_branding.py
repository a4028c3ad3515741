"""The administration console: branding (colours, logo, domains, live preview) and the tenant lifecycle."""

from __future__ import annotations

import io
import re

from PIL import Image

from tenants.branding import branding_version
from tests.test_admin_console import ADMIN, fresh_tree

GOOD = {
    "display_name": "Lycée Pilote",
    "primary_color": "#1d4ed8",
    "secondary_color": "#9f1239",
    "default_locale": "fr",
}


async def version(world, slug: str) -> str:
    """The branding version a freshly opened form carries."""
    return branding_version(await world.services.tenants.by_slug(slug))


def png(width: int = 64, height: int = 32, noise: bool = False) -> bytes:
    """A real PNG (random pixels when ``noise``, so it does not compress)."""
    import os

    image = (
        Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
        if noise
        else Image.new("RGB", (width, height), (11, 93, 59))
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


async def test_unreadable_colours_are_refused_and_good_ones_reach_the_portal_at_once(world):
    tree = await fresh_tree(world, "br", schools=1)
    school = tree["school1"]
    url = f"/admin/tenants/{school}/branding"
    page = await world.api("GET", url, as_=ADMIN)
    assert page.status_code == 200
    assert 'hx-post="/admin/tenants/' in page.text and 'id="preview"' in page.text

    before = await world.services.tenants.by_slug(school)
    assert f'name="version" value="{branding_version(before)}"' in page.text
    v = await version(world, school)
    for field, colour in (("primary_color", "#ffff00"), ("secondary_color", "#aaaaaa"), ("primary_color", "blue")):
        bad = await world.api("POST", url, as_=ADMIN, data={**GOOD, field: colour, "version": v})
        assert bad.status_code == 400, bad.text
        error_id = field.replace("_", "-") + "-error"
        assert f'id="{error_id}"' in bad.text and f'aria-describedby="{error_id}' in bad.text
        assert 'aria-invalid="true"' in bad.text
    assert "4.5:1" in bad.text or "#rrggbb" in bad.text
    after = await world.services.tenants.by_slug(school)
    assert (after.primary_color, after.secondary_color, after.display_name) == (
        before.primary_color,
        before.secondary_color,
        before.display_name,
    )

    # live preview: proposed values rendered, nothing saved
    preview = await world.api("POST", f"{url}/preview", as_=ADMIN, data={**GOOD, "primary_color": "#7c2d12"})
    assert preview.status_code == 200
    assert 'data-primary="#7c2d12"' in preview.text and "Lycée Pilote" in preview.text and "<html" not in preview.text
    refused = await world.api("POST", f"{url}/preview", as_=ADMIN, data={**GOOD, "primary_color": "#ffff00"})
    assert 'data-preview-error="primary_color"' in refused.text and 'data-primary="#ffff00"' not in refused.text
    assert (await world.services.tenants.by_slug(school)).primary_color == before.primary_color

    saved = await world.api("POST", url, as_=ADMIN, data={**GOOD, "version": v})
    assert saved.status_code == 303, saved.text
    # a second form opened before that save is refused, and shows what is saved now
    stale = await world.api("POST", url + "?lang=en", as_=ADMIN, data={**GOOD, "display_name": "Stale", "version": v})
    assert stale.status_code == 409 and 'id="version-error"' in stale.text and "changed the branding" in stale.text
    assert 'value="Lycée Pilote"' in stale.text
    login = await world.client.get(f"/t/{school}/login", headers={"accept": "text/html"})
    assert "--brand: #1d4ed8" in login.text and "--accent: #9f1239" in login.text and "Lycée Pilote" in login.text
    assert (await world.services.tenants.by_slug(school)).default_locale == "fr"
    audited = await world.sql(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'tenant.branding' AND tenant_id = {}", world.ids[school]
    )
    assert audited == 1


async def test_logo_must_be_a_small_real_image(world):
    tree = await fresh_tree(world, "lg", schools=1)
    school = tree["school1"]
    url = f"/admin/tenants/{school}/logo?lang=en"

    async def upload(name: str, data: bytes, content_type: str) -> object:
        return await world.api("POST", url, as_=ADMIN, files={"logo": (name, data, content_type)})

    not_image = await upload("logo.png", b"this is not a picture at all", "image/png")
    assert not_image.status_code == 400 and 'id="logo-error"' in not_image.text
    assert "not an image" in not_image.text
    truncated = await upload("logo.png", png()[:40], "image/png")
    assert truncated.status_code == 400
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    refused_svg = await upload("logo.svg", svg, "image/svg+xml")
    assert refused_svg.status_code == 400 and "SVG" in refused_svg.text
    disguised = await upload("logo.png", svg, "image/png")
    assert disguised.status_code == 400
    big = png(500, 500, noise=True)
    assert len(big) > 512 * 1024
    too_large = await upload("logo.png", big, "image/png")
    assert too_large.status_code == 400 and "512" in too_large.text
    wide = await upload("logo.png", png(3000, 10), "image/png")
    assert wide.status_code == 400 and "2048" in wide.text
    assert (await world.services.tenants.by_slug(school)).logo_key is None

    data = png()
    ok = await upload("logo.png", data, "image/png")
    assert ok.status_code == 303, ok.text
    node = await world.services.tenants.by_slug(school)
    assert node.logo_key and node.logo_key.startswith(f"t/{node.id}/branding/")
    served = await world.client.get(f"/t/{school}/logo")
    assert served.status_code == 200 and served.content == data
    assert served.headers["content-type"].startswith("image/png")
    assert served.headers["x-content-type-options"] == "nosniff"
    login = await world.client.get(f"/t/{school}/login", headers={"accept": "text/html"})
    assert re.search(rf'<img src="/t/{school}/logo\?v=[0-9a-f]+"', login.text)
    # a tenant without a logo answers 404
    assert (await world.client.get(f"/t/{tree['province']}/logo")).status_code == 404


async def test_custom_domains_are_validated_unique_and_resolve(world):
    tree = await fresh_tree(world, "dm", schools=2)
    s1, s2 = tree["school1"], tree["school2"]
    host = f"portail-{world.backend}.example.ma"
    for bad in (
        "https://x.example.ma",
        "x.example.ma:8443",
        "no_underscore.ma",
        "localhost",
        "10.0.0.1",
        f"{s1}.{world.settings.base_domain}",
        "nodot",
    ):
        response = await world.api("POST", f"/admin/tenants/{s1}/domains", as_=ADMIN, data={"host": bad})
        assert response.status_code == 400, bad
        assert 'id="host-error"' in response.text and 'aria-describedby="host-error' in response.text
    assert await world.sql("SELECT COUNT(*) FROM tenant_domain WHERE tenant_id = {}", world.ids[s1]) == 0

    added = await world.api("POST", f"/admin/tenants/{s1}/domains", as_=ADMIN, data={"host": host.upper() + "."})
    assert added.status_code == 303, added.text
    saved = await world.api(
        "POST",
        f"/admin/tenants/{s1}/branding",
        as_=ADMIN,
        data={**GOOD, "display_name": "Portail S1", "version": await version(world, s1)},
    )
    assert saved.status_code == 303
    response = await world.client.get("/login", headers={"host": host, "accept": "text/html"})
    assert response.status_code == 200 and "Portail S1" in response.text

    taken = await world.api("POST", f"/admin/tenants/{s2}/domains?lang=en", as_=ADMIN, data={"host": host})
    assert taken.status_code == 400 and "another portal" in taken.text

    removed = await world.api("POST", f"/admin/tenants/{s1}/domains/remove", as_=ADMIN, data={"host": host})
    assert removed.status_code == 303
    gone = await world.client.get("/login", headers={"host": host, "accept": "text/html"})
    assert "Portail S1" not in gone.text


async def test_suspend_and_reactivate_a_school_and_a_region(world):
    tree = await fresh_tree(world, "lc", schools=1)
    school, region = tree["school1"], tree["region"]
    teacher = await world.add_person(f"t.lc.{world.backend}@test.ma", "teacher", school)
    assert (await world.api("GET", "/", as_=teacher, tenant=school)).status_code == 200

    page = await world.api("GET", f"/admin/tenants/{school}/status", as_=ADMIN)
    assert page.status_code == 200 and 'name="reason"' in page.text
    no_reason = await world.api("POST", f"/admin/tenants/{school}/status", as_=ADMIN, data={"status": "suspended"})
    assert no_reason.status_code == 400 and 'aria-describedby="status-reason-error"' in no_reason.text
    wrong = await world.api(
        "POST", f"/admin/tenants/{school}/status", as_=ADMIN, data={"status": "deleted", "reason": "whatever"}
    )
    assert wrong.status_code == 400
    assert (await world.services.tenants.by_slug(school)).status == "active"

    done = await world.api(
        "POST", f"/admin/tenants/{school}/status", as_=ADMIN, data={"status": "suspended", "reason": "Contract ended"}
    )
    assert done.status_code == 303
    blocked = await world.api("GET", "/", as_=teacher, tenant=school)
    assert blocked.status_code == 403 and "suspendu" in blocked.text
    assert await world.sql("SELECT COUNT(*) FROM membership WHERE tenant_id = {}", world.ids[school]) == 1
    status_page = await world.api("GET", f"/admin/tenants/{school}/status", as_=ADMIN)
    assert "Contract ended" in status_page.text and 'data-status="suspended"' in status_page.text

    back = await world.api(
        "POST", f"/admin/tenants/{school}/status", as_=ADMIN, data={"status": "active", "reason": "Contract renewed"}
    )
    assert back.status_code == 303
    assert (await world.api("GET", "/", as_=teacher, tenant=school)).status_code == 200

    # a region: its schools' users see the page too, then get their portal back
    await world.api(
        "POST", f"/admin/tenants/{region}/status", as_=ADMIN, data={"status": "suspended", "reason": "Audit"}
    )
    assert (await world.api("GET", "/", as_=teacher, tenant=school)).status_code == 403
    await world.api("POST", f"/admin/tenants/{region}/status", as_=ADMIN, data={"status": "active", "reason": "Done"})
    assert (await world.api("GET", "/", as_=teacher, tenant=school)).status_code == 200


async def test_one_colour_has_one_contrast_figure_in_the_preview_and_the_error(world):
    """#ffd700 once read 1.40:1 in the preview (white text only) and 1.31:1 in the error (the worse of the two)."""
    import re

    from tenants.branding import worst_contrast

    tree = await fresh_tree(world, "cf", schools=1)
    url = f"/admin/tenants/{tree['school1']}/branding"
    expected = f"{worst_contrast('#ffd700'):.2f}"
    preview = await world.api("POST", f"{url}/preview", as_=ADMIN, data={**GOOD, "primary_color": "#ffd700"})
    refused = await world.api(
        "POST",
        url,
        as_=ADMIN,
        data={**GOOD, "primary_color": "#ffd700", "version": await version(world, tree["school1"])},
    )
    figures = set(re.findall(r"(\d+\.\d+):1", preview.text)) | set(re.findall(r"(\d+\.\d+):1", refused.text))
    figures.discard("4.5")
    figures -= {f"{worst_contrast(GOOD['secondary_color']):.2f}"}
    assert figures == {expected}, figures
