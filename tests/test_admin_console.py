"""The administration console: role-aware pages, the tenant tree, programmes and their module matrix, boundaries.

Each test builds its own region → province → schools through the API (slugs carry the backend and a
tag), so the demo schools other tests rely on keep their settings.
"""

from __future__ import annotations

import re
from typing import Any

from tenants import branding, service

ADMIN = "admin@madrasa.demo"
CASA = "region.casa@madrasa.demo"
PM = "programme@madrasa.demo"


async def fresh_tree(world: Any, tag: str, schools: int = 2) -> dict[str, str]:
    """A new region, province and schools (created by the platform administrator through the API)."""
    b = world.backend
    names = {"region": f"r-{tag}-{b}", "province": f"p-{tag}-{b}"}
    bodies = [
        {"parent": "platform", "kind": "region", "slug": names["region"], "name_fr": f"Région {tag}", "name_ar": "جهة"},
        {"parent": names["region"], "kind": "province", "slug": names["province"], "name_fr": f"Province {tag}"},
    ]
    for i in range(1, schools + 1):
        names[f"school{i}"] = f"s{i}-{tag}-{b}"
        bodies.append(
            {"parent": names["province"], "kind": "school", "slug": names[f"school{i}"], "name_fr": f"École {i} {tag}"}
        )
    for body in bodies:
        response = await world.api("POST", "/api/v1/tenants", as_=ADMIN, json=body)
        assert response.status_code == 201, response.text
        world.ids[body["slug"]] = response.json()["id"]
    return names


async def make_programme(world: Any, slug: str, schools: list[str]) -> None:
    """A programme created and filled through the console's forms by the platform administrator."""
    created = await world.api("POST", "/admin/programmes/", as_=ADMIN, data={"slug": slug, "name_fr": f"Prog {slug}"})
    assert created.status_code == 303, created.text
    for school in schools:
        added = await world.api("POST", f"/admin/programmes/{slug}/schools", as_=ADMIN, data={"school": school})
        assert added.status_code == 303, added.text


async def make_manager(world: Any, programme: str, email: str) -> str:
    """Assign a new person as manager through the console, then give them a password to log in with."""
    response = await world.api(
        "POST", f"/admin/programmes/{programme}/managers", as_=ADMIN, data={"email": email, "full_name": "Manager"}
    )
    assert response.status_code == 303, response.text
    db = world.services.db
    await db.execute(
        "UPDATE person SET password_hash = {} WHERE email = {}", world.services.identity.hash_password("pw-x-42"), email
    )
    world.passwords[email] = "pw-x-42"
    return email


def cell(html: str, school: str, module: str) -> tuple[str, str]:
    """``(state, source)`` of one matrix cell."""
    row = re.search(rf'<tr data-school="{re.escape(school)}">(.*?)</tr>', html, re.S)
    assert row, f"no matrix row for {school}"
    found = re.search(rf'data-module="{module}" data-state="(\w+)" data-source="(\w+)"', row.group(1))
    assert found, f"no cell {module} for {school}"
    return found.group(1), found.group(2)


# -- pure functions --------------------------------------------------------------------------


def test_contrast_ratio_follows_wcag():
    assert round(branding.contrast_ratio("#000000", "#ffffff"), 2) == 21.0
    assert round(branding.contrast_ratio("#ffffff", "#ffffff"), 2) == 1.0
    assert 4.4 < branding.contrast_ratio("#777777", "#ffffff") < 4.5
    assert branding.colour_error("#777777") is not None  # just under 4.5:1
    assert branding.colour_error("#0b5d3b") is None
    assert branding.colour_error("#ffff00")[0].startswith("Text would be unreadable")
    assert branding.colour_error("green")[0] == "Enter a colour as #rrggbb."
    assert branding.colour_error("#12345") is not None


def test_host_names_are_validated():
    assert branding.normalise_host(" Ecole.Example.MA. ") == "ecole.example.ma"
    assert branding.normalise_host("مدرسة.example.ma").startswith("xn--")
    for bad in (
        "",
        "http://ecole.ma",
        "ecole.ma:8080",
        "ecole.ma/x",
        "localhost",
        "ecole",
        "1.2.3.4",
        "-x.ma",
        "a_b.ma",
        "a..b.ma",
        "x" * 64 + ".ma",
        "ecole .ma",
        "user@ecole.ma",
    ):
        try:
            branding.normalise_host(bad)
        except service.Invalid as exc:
            assert exc.field == "host"
        else:
            raise AssertionError(f"{bad!r} was accepted")


# -- home and tree -----------------------------------------------------------------------------


async def test_home_is_role_aware(world):
    admin = await world.api("GET", "/admin/", as_=ADMIN)
    assert admin.status_code == 200, admin.text
    assert 'data-node="casablanca-settat"' in admin.text and 'data-node="rabat-sale-kenitra"' in admin.text
    assert 'data-programme="nouveau-lycee"' in admin.text
    assert 'href="/admin/onboarding/"' in admin.text and 'href="/admin/oneroster/"' in admin.text

    region = await world.api("GET", "/admin/", as_=CASA)
    assert region.status_code == 200
    assert 'data-node="casablanca-settat"' in region.text and "rabat-sale-kenitra" not in region.text
    assert 'href="/admin/onboarding/"' in region.text
    assert 'href="/admin/programmes/"' not in region.text

    nav = re.search(r'<nav class="admin-nav".*?</nav>', region.text, re.S).group(0)
    assert 'href="/admin/tenants/"' in nav and 'href="/admin/onboarding/"' in nav
    assert 'href="/admin/oneroster/"' in nav and 'href="/admin/programmes/"' not in nav

    pm = await world.api("GET", "/admin/", as_=PM)
    pm_nav = re.search(r'<nav class="admin-nav".*?</nav>', pm.text, re.S).group(0)
    assert 'href="/admin/programmes/"' in pm_nav and 'href="/admin/tenants/"' not in pm_nav
    assert pm.status_code == 200
    assert 'data-programme="nouveau-lycee"' in pm.text
    assert 'href="/admin/tenants/"' not in pm.text and 'href="/admin/onboarding/"' not in pm.text

    province = await world.api("GET", "/admin/", as_="province.anfa@madrasa.demo")
    assert province.status_code == 200 and 'data-node="casablanca-anfa"' in province.text

    teacher = await world.api("GET", "/admin/", as_="teacher.lycee-ibn-batouta@test.ma")
    assert teacher.status_code == 403


async def test_platform_admin_creates_a_region_and_a_province(world):
    region = f"console-region-{world.backend}"
    bad = await world.api("POST", "/admin/tenants/", as_=ADMIN, data={"parent": "platform", "slug": "Bad Slug!"})
    assert bad.status_code == 400
    assert 'aria-describedby="new-slug-error' in bad.text and 'id="new-slug-error"' in bad.text
    assert 'id="new-name-fr-error"' in bad.text
    assert await world.services.db.fetchval("SELECT COUNT(*) FROM tenant WHERE slug = 'bad slug!'") == 0

    body = {"parent": "platform", "slug": region, "name_fr": "Région console", "name_ar": "جهة", "default_locale": "ar"}
    created = await world.api("POST", "/admin/tenants/", as_=ADMIN, data=body)
    assert created.status_code == 303, created.text
    assert created.headers["location"] == f"/admin/tenants/{region}?done=created"
    node = await world.services.tenants.by_slug(region)
    assert node.kind == "region" and node.default_locale == "ar"
    again = await world.api("POST", "/admin/tenants/", as_=ADMIN, data=body)
    assert again.status_code == 400 and "new-slug-error" in again.text

    province = await world.api(
        "POST",
        "/admin/tenants/",
        as_=ADMIN,
        data={
            "parent": region,
            "slug": f"console-prov-{world.backend}",
            "name_fr": "Province console",
            "default_locale": "fr",
        },
    )
    assert province.status_code == 303
    page = await world.api("GET", f"/admin/tenants/{region}", as_=ADMIN)
    assert f'data-node="console-prov-{world.backend}"' in page.text

    # a region administrator cannot create a region
    refused = await world.api("POST", "/admin/tenants/", as_=CASA, data={**body, "slug": f"x-{region}"})
    assert refused.status_code == 403
    assert await world.services.tenants.by_slug(f"x-{region}") is None


async def test_region_admin_is_kept_to_the_own_region(world):
    for path in (
        "/admin/tenants/rabat-sale-kenitra",
        "/admin/tenants/lycee-moulay-youssef",
        "/admin/tenants/lycee-moulay-youssef/branding",
        "/admin/tenants/lycee-moulay-youssef/status",
    ):
        response = await world.api("GET", path, as_=CASA)
        assert response.status_code == 403, path
    # even under the own school's prefix
    assert (
        await world.api("GET", "/admin/tenants/rabat-sale-kenitra", as_=CASA, tenant="lycee-ibn-batouta")
    ).status_code == 403
    refused = await world.api(
        "POST", "/admin/tenants/lycee-moulay-youssef/status", as_=CASA, data={"status": "suspended", "reason": "nope"}
    )
    assert refused.status_code == 403
    branding = await world.api(
        "POST",
        "/admin/tenants/lycee-moulay-youssef/branding",
        as_=CASA,
        data={"primary_color": "#000000", "secondary_color": "#000000", "default_locale": "fr", "display_name": "X"},
    )
    assert branding.status_code == 403
    node = await world.services.tenants.by_slug("lycee-moulay-youssef")
    assert node.status == "active" and node.display_name != "X"
    own = await world.api("GET", "/admin/tenants/lycee-ibn-batouta", as_=CASA)
    assert own.status_code == 200 and "data-matrix" in own.text
    assert (await world.api("GET", "/admin/tenants/no-such-node", as_=CASA)).status_code == 404


# -- programmes --------------------------------------------------------------------------------


async def test_matrix_shows_each_state_and_its_source(world):
    tree = await fresh_tree(world, "mx")
    s1, s2 = tree["school1"], tree["school2"]
    programme = f"prog-mx-{world.backend}"
    await make_programme(world, programme, [s1, s2])
    manager = await make_manager(world, programme, f"pm.mx.{world.backend}@test.ma")

    # the region switches attendance off; school 1 overrides homework off
    async def put(slug: str, module: str, enabled: bool) -> None:
        response = await world.api(
            "PUT", f"/api/v1/tenants/{slug}/modules/{module}", as_=ADMIN, json={"enabled": enabled, "reason": "set-up"}
        )
        assert response.status_code == 200, response.text

    await put(tree["region"], "attendance", False)
    await put(s1, "homework", False)

    page = await world.api("GET", f"/admin/programmes/{programme}", as_=manager)
    assert page.status_code == 200, page.text
    assert cell(page.text, s2, "homework") == ("off", "default")
    assert cell(page.text, s2, "attendance") == ("off", "region")
    assert cell(page.text, s2, "grades") == ("on", "default")

    before = await world.sql("SELECT COUNT(*) FROM module_setting")
    missing = await world.api(
        "POST", f"/admin/programmes/{programme}/modules", as_=manager, data={"module": "homework", "state": "on"}
    )
    assert missing.status_code == 400
    assert 'aria-describedby="switch-reason-error"' in missing.text and 'id="switch-reason-error"' in missing.text
    unknown = await world.api(
        "POST",
        f"/admin/programmes/{programme}/modules",
        as_=manager,
        data={"module": "nope", "state": "maybe", "reason": "test"},
    )
    assert unknown.status_code == 400 and "switch-module-error" in unknown.text and "switch-state-error" in unknown.text
    assert await world.sql("SELECT COUNT(*) FROM module_setting") == before

    done = await world.api(
        "POST",
        f"/admin/programmes/{programme}/modules",
        as_=manager,
        data={"module": "homework", "state": "on", "reason": "Pilot cohort 2026"},
    )
    assert done.status_code == 303, done.text
    page = await world.api("GET", f"/admin/programmes/{programme}?done=module", as_=manager)
    assert cell(page.text, s2, "homework") == ("on", "programme")
    assert cell(page.text, s1, "homework") == ("off", "school")  # the school override wins, shown as such
    row = re.search(rf'<tr data-school="{s1}">(.*?)</tr>', page.text, re.S).group(1)
    assert 'class="override"' in row
    assert 'role="status"' in page.text
    # the portals follow: homework is on in school 2, still off in school 1
    assert "homework" not in await world.services.disabled_for((await world.services.tenants.by_slug(s2)).path)
    assert "homework" in await world.services.disabled_for((await world.services.tenants.by_slug(s1)).path)

    history = await world.api("GET", f"/admin/programmes/{programme}/history", as_=manager)
    assert history.status_code == 200
    assert history.text.count('data-module="homework"') == 1  # recorded per school, shown once
    assert "Pilot cohort 2026" in history.text and 'data-action="programme.add_school"' in history.text
    audited = await world.sql(
        "SELECT COUNT(*) FROM audit_log WHERE object_type = 'programme_module' AND object_id = {} AND reason = {}",
        f"{programme}:homework",
        "Pilot cohort 2026",
    )
    assert audited == 2


async def test_programme_manager_boundaries(world):
    tree = await fresh_tree(world, "pb", schools=3)
    programme = f"prog-pb-{world.backend}"
    await make_programme(world, programme, [tree["school1"], tree["school2"]])
    manager = await make_manager(world, programme, f"pm.pb.{world.backend}@test.ma")

    assert (await world.api("GET", f"/admin/tenants/{tree['school1']}", as_=manager)).status_code == 200
    outside = await world.api("GET", f"/admin/tenants/{tree['school3']}", as_=manager)
    assert outside.status_code == 403
    assert (await world.api("GET", "/admin/tenants/lycee-ibn-batouta", as_=manager)).status_code == 403
    # another programme is not theirs
    other = await world.api(
        "POST",
        "/admin/programmes/nouveau-lycee/modules",
        as_=manager,
        data={"module": "homework", "state": "off", "reason": "not mine"},
    )
    assert other.status_code == 404
    assert (await world.api("GET", "/admin/programmes/nouveau-lycee", as_=manager)).status_code == 404
    # only the platform administrator adds schools and managers
    add = await world.api(
        "POST", f"/admin/programmes/{programme}/schools", as_=manager, data={"school": tree["school3"]}
    )
    assert add.status_code == 403
    members = await world.sql(
        "SELECT COUNT(*) FROM programme_school ps JOIN programme p ON p.id = ps.programme_id WHERE p.slug = {}",
        programme,
    )
    assert members == 2
    # a region administrator does not manage programmes
    assert (await world.api("GET", f"/admin/programmes/{programme}", as_=CASA)).status_code == 404
    unknown = await world.api("POST", f"/admin/programmes/{programme}/schools", as_=ADMIN, data={"school": "ghost"})
    assert unknown.status_code == 400 and 'id="add-school-error"' in unknown.text


async def test_translations_render_in_arabic(world):
    page = await world.api("GET", "/admin/?lang=ar", as_=ADMIN)
    assert page.status_code == 200
    assert 'dir="rtl"' in page.text and 'lang="ar"' in page.text
    assert "لوحة الإدارة" in page.text and "Administration console" not in page.text
    programme = await world.api("GET", "/admin/programmes/nouveau-lycee?lang=ar", as_=ADMIN)
    assert "الوحدات في مدارس البرنامج" in programme.text
    french = await world.api("GET", "/admin/programmes/nouveau-lycee?lang=fr", as_=ADMIN)
    assert "Modules dans les écoles du programme" in french.text
    bad = await world.api(
        "POST",
        "/admin/tenants/lycee-ibn-batouta/branding?lang=ar",
        as_=CASA,
        data={
            "primary_color": "#ffff00",
            "secondary_color": "#c1272d",
            "default_locale": "ar",
            "display_name": "",
            "version": branding.branding_version(await world.services.tenants.by_slug("lycee-ibn-batouta")),
        },
    )
    assert bad.status_code == 400 and "لن يكون النص مقروءا" in bad.text


async def test_a_region_admin_grants_a_school_role_from_the_console(world):
    """The console's people page does what POST /api/v1/people does: a role of the node's kind, for an identity
    found or created by e-mail; wrong input is shown beside its field and grants nothing."""
    import secrets

    region_admin, school = "region.casa@madrasa.demo", "lycee-ibn-batouta"
    url = f"/admin/tenants/{school}/people"
    page = await world.api("GET", url, as_=region_admin)
    assert page.status_code == 200 and 'id="grant-form"' in page.text and 'value="supervisor"' in page.text
    node = await world.api("GET", f"/admin/tenants/{school}", as_=region_admin)
    assert f"/admin/tenants/{school}/people" in node.text  # linked from the school's page

    email = f"granted.{secrets.token_hex(3)}@test.ma"
    form = {"email": email, "full_name": "Granted Person", "role": "region_admin", "locale": "fr"}
    refused = await world.api("POST", url, as_=region_admin, data=form)  # not a role of a school
    assert refused.status_code == 400 and 'id="grant-role-error"' in refused.text
    bad = await world.api("POST", url, as_=region_admin, data={**form, "email": "not-an-address", "role": "supervisor"})
    assert bad.status_code == 400 and 'id="grant-email-error"' in bad.text
    assert await world.sql("SELECT COUNT(*) FROM person WHERE email = {}", email) == 0

    granted = await world.api("POST", url, as_=region_admin, data={**form, "role": "supervisor"})
    assert granted.status_code == 303, granted.text
    assert "Le rôle a été attribué." in (await world.api("GET", f"{url}?done=granted&lang=fr", as_=region_admin)).text
    roles_sql = (
        "SELECT COUNT(*) FROM membership m JOIN person p ON p.id = m.person_id JOIN tenant t ON t.id = m.tenant_id "
        "WHERE p.email = {} AND m.role = 'supervisor' AND t.slug = {}"
    )
    assert await world.sql(roles_sql, email, school) == 1
    listed = await world.api("GET", url, as_=region_admin)
    assert email in listed.text

    # taking it away: a reason is required (nothing removed without one), then the role is gone and audited
    person = await world.sql("SELECT id FROM person WHERE email = {}", email)
    removal = {"person_id": str(person), "role": "supervisor", "reason": ""}
    no_reason = await world.api("POST", f"{url}/remove", as_=region_admin, data=removal)
    assert no_reason.status_code == 400 and 'id="remove-error"' in no_reason.text
    assert await world.sql(roles_sql, email, school) == 1
    removed = await world.api("POST", f"{url}/remove", as_=region_admin, data={**removal, "reason": "Mutation"})
    assert removed.status_code == 303 and removed.headers["location"].endswith("?done=role-removed")
    assert await world.sql(roles_sql, email, school) == 0
    after = await world.api("GET", f"{url}?done=role-removed&lang=fr", as_=region_admin)
    assert "Le rôle a été retiré." in after.text
    again = await world.api("POST", f"{url}/remove", as_=region_admin, data={**removal, "reason": "Mutation"})
    assert again.status_code == 404

    # another region's school is not this admin's; a teacher has no console
    assert (await world.api("GET", "/admin/tenants/lycee-moulay-youssef/people", as_=region_admin)).status_code == 404
    teacher = await world.api("GET", url, as_=f"teacher.{school}@test.ma")
    assert teacher.status_code == 403
