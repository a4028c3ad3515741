"""Onboarding pages: upload and preview, form errors, commit, one school, invitation page, region boundaries."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import new_client
from tests.test_onboarding import HOME_SCHOOL, PROVINCE_A, own_nodes

REGION = "casablanca-settat"
ADMIN = "region.casa@madrasa.demo"


def page(world, method: str, path: str, *, as_: str = ADMIN, tenant: str | None = REGION, **kwargs):
    return world.api(method, path, as_=as_, tenant=tenant, **kwargs)


async def test_home_is_labelled_and_translated(world):
    for lang, heading in (("fr", "Intégration"), ("ar", "الإدماج"), ("en", "Onboarding")):
        response = await page(world, "GET", f"/admin/onboarding/?lang={lang}")
        assert response.status_code == 200, response.text
        html = response.text
        assert f"<h1>{heading}" in html
        for field in ("upload-kind", "upload-file", "school-code", "invite-email"):
            assert f'for="{field}"' in html and f'id="{field}"' in html  # every control has a label
    assert 'dir="rtl"' in (await page(world, "GET", "/admin/onboarding/?lang=ar")).text


async def test_upload_preview_and_commit_through_pages(world):
    await own_nodes(world)  # the school goes to onboarding's own province
    tag = world.backend
    data = (
        "code,name_ar,name_fr,cycle,province,address\n"
        f"{'14170' if tag == 'sqlite' else '14171'}W,ثانوية الصفحة,Lycée Page {tag},lycée,{PROVINCE_A[0]},Rue 1\n"
    ).encode()
    response = await page(
        world,
        "POST",
        "/admin/onboarding/upload",
        data={"kind": "schools"},
        files={"file": ("schools.csv", data, "text/csv")},
    )
    assert response.status_code == 303, response.text
    target = response.headers["location"]
    assert target.startswith(f"/t/{REGION}/admin/onboarding/batches/")
    preview = await world.client.get(target, headers={"cookie": _cookie(world), "accept": "text/html"})
    assert preview.status_code == 200
    assert 'id="commit-batch"' in preview.text and f"Lycée Page {tag}" in preview.text
    batch_id = target.rsplit("/", 1)[1]
    done = await page(world, "POST", f"/admin/onboarding/batches/{batch_id}/commit", data={})
    assert done.status_code == 303
    shown = await page(world, "GET", f"/admin/onboarding/batches/{batch_id}")
    assert 'id="batch-done"' in shown.text
    assert await world.sql("SELECT COUNT(*) FROM tenant WHERE name_fr = {}", f"Lycée Page {tag}") == 1
    parent = await world.sql("SELECT parent_id FROM tenant WHERE name_fr = {}", f"Lycée Page {tag}")
    assert parent == world.ids[PROVINCE_A[0]]
    again = await page(world, "POST", f"/admin/onboarding/batches/{batch_id}/commit", data={})
    assert again.status_code == 409


async def test_bad_file_shows_every_error_and_no_commit_button(world):
    data = b"code,name_ar,name_fr,cycle,province\nBAD!,,X,moon,nowhere\n"
    response = await page(
        world, "POST", "/admin/onboarding/upload", data={"kind": "schools"}, files={"file": ("b.csv", data, "text/csv")}
    )
    assert response.status_code == 303
    shown = await page(world, "GET", response.headers["location"].removeprefix(f"/t/{REGION}"))
    assert 'id="batch-error-table"' in shown.text and 'id="commit-batch"' not in shown.text
    for column in ("code", "name_ar", "cycle", "province"):
        assert f"<code>{column}</code>" in shown.text


async def test_form_errors_are_shown_next_to_the_fields(world):
    missing = await page(world, "POST", "/admin/onboarding/upload", data={"kind": "planets"}, files={"x": ("a", b"")})
    assert missing.status_code == 400
    assert 'id="upload-kind-error"' in missing.text and 'id="upload-file-error"' in missing.text
    school = await page(
        world,
        "POST",
        "/admin/onboarding/schools",
        data={"code": "1", "name_fr": "", "name_ar": "", "cycle": "lycee", "province": "rabat"},
    )
    assert school.status_code == 422
    assert 'id="school-code-error"' in school.text and 'aria-invalid="true"' in school.text
    invite = await page(world, "POST", "/admin/onboarding/invitations", data={"school": "lycee-moulay-youssef"})
    assert invite.status_code == 400
    assert "Choisissez un établissement de cette région." in invite.text  # the admin's language is French


async def test_other_region_and_other_roles_are_refused(world):
    assert (await page(world, "GET", "/admin/onboarding/", tenant="rabat-sale-kenitra")).status_code == 403
    director = "director.lycee-ibn-batouta@test.ma"
    assert (await page(world, "GET", "/admin/onboarding/", as_=director)).status_code == 403


async def test_invitation_page_sets_the_password_once(world):
    await own_nodes(world)  # the new director joins onboarding's own school
    address = f"page.director.{world.backend}@test.ma"
    response = await page(
        world,
        "POST",
        "/admin/onboarding/invitations",
        data={"school": HOME_SCHOOL, "email": address, "full_name": "Page Director", "locale": "fr"},
    )
    assert response.status_code == 200, response.text
    mail = world.services.mailer.sent[-1]
    assert mail.to == address
    token = re.search(r"Token: (\S+)", mail.body).group(1)
    client = new_client(world.app, ip="10.7.0.1")
    form = await client.get(f"/onboarding/invitations/{token}?lang=fr")
    assert form.status_code == 200 and 'for="password"' in form.text and "Page Director" in form.text
    differ = await client.post(
        f"/onboarding/invitations/{token}", data={"password": "page-pass-2026", "confirm": "page-pass-2027"}
    )
    assert differ.status_code == 400
    ok = await client.post(
        f"/onboarding/invitations/{token}", data={"password": "page-pass-2026", "confirm": "page-pass-2026"}
    )
    assert ok.status_code == 200 and "/login" in ok.text
    used = await client.get(f"/onboarding/invitations/{token}")
    assert used.status_code == 404
    login = await client.post("/api/v1/auth/token", json={"email": address, "password": "page-pass-2026"})
    assert login.status_code == 200
    await client.aclose()


def _cookie(world) -> str:
    cookie, _ = world._cookies[ADMIN]
    return f"madrasa_session={cookie}"


async def test_progress_fragment(world):
    data = b"code,name_ar,name_fr,cycle,province\n"
    response = await page(
        world, "POST", "/admin/onboarding/upload", data={"kind": "schools"}, files={"file": ("e.csv", data, "text/csv")}
    )
    batch_id = response.headers["location"].rsplit("/", 1)[1]
    fragment = await page(world, "GET", f"/admin/onboarding/batches/{batch_id}/progress")
    assert fragment.status_code == 200 and "<html" not in fragment.text.lower()
    assert "Rien n&#39;a été écrit" in fragment.text


async def test_platform_admin_creates_a_region_and_a_region_admin_a_province(world):
    platform = "admin@madrasa.demo"
    slug = f"oriental-{world.backend}"
    home = await page(world, "GET", "/admin/onboarding/", as_=platform, tenant=None)
    assert home.status_code == 200 and 'id="node-slug"' in home.text
    made = await page(
        world,
        "POST",
        "/admin/onboarding/nodes",
        as_=platform,
        tenant=None,
        data={"slug": slug, "code": "02", "name_fr": "Oriental", "name_ar": "جهة الشرق"},
    )
    assert made.status_code == 200, made.text
    region = await world.services.tenants.by_slug(slug)
    assert region is not None and region.kind == "region"
    taken = await page(
        world, "POST", "/admin/onboarding/nodes", as_=platform, tenant=None, data={"slug": slug, "name_fr": "Again"}
    )
    assert taken.status_code == 409 and 'role="alert"' in taken.text
    # a region admin adds a province to their own region, and cannot create regions
    province = await page(
        world, "POST", "/admin/onboarding/nodes", data={"slug": f"mediouna-{world.backend}", "name_fr": "Médiouna"}
    )
    assert province.status_code == 200
    node = await world.services.tenants.by_slug(f"mediouna-{world.backend}")
    assert node is not None and node.kind == "province" and node.parent_id == world.ids[REGION]
    refused = await page(
        world, "POST", "/admin/onboarding/nodes", tenant=None, data={"slug": "rogue-region", "name_fr": "Rogue"}
    )
    assert refused.status_code == 404
    assert await world.services.tenants.by_slug("rogue-region") is None


async def test_row_errors_and_form_errors_are_in_the_page_language(world):
    data = b"code,name_ar,name_fr,cycle,province\nBAD!,,X,moon,nowhere\nBAD!,,X,moon,nowhere\n"
    response = await page(
        world, "POST", "/admin/onboarding/upload", data={"kind": "schools"}, files={"file": ("b.csv", data, "text/csv")}
    )
    path = response.headers["location"].removeprefix(f"/t/{REGION}")
    arabic = await page(world, "GET", f"{path}?lang=ar")
    assert "رمز المؤسسة من 4 إلى 12 حرفا أو رقما" in arabic.text and "a school code is" not in arabic.text
    assert "يجب أن يكون ابتدائي أو إعدادي أو ثانوي" in arabic.text
    french = await page(world, "GET", f"{path}?lang=fr")
    assert "doit être primaire, collège ou lycée" in french.text
    assert 'id="batch-errors-csv"' in french.text
    listing = await page(world, "GET", f"{path}/errors.csv?lang=ar")
    assert listing.status_code == 200 and listing.headers["content-type"].startswith("text/csv")
    text = listing.content.decode("utf-8-sig")
    assert text.splitlines()[0] == "row,column,value,code,message"
    assert "school_code" in text and "رمز المؤسسة من 4 إلى 12 حرفا أو رقما" in text
    # a form error of the one-school form, in Arabic
    school = await page(
        world,
        "POST",
        "/admin/onboarding/schools?lang=ar",
        data={"code": "1", "name_fr": "X", "name_ar": "س", "cycle": "lycee", "province": "casablanca-anfa"},
    )
    assert school.status_code == 422 and "رمز المؤسسة من 4 إلى 12 حرفا أو رقما" in school.text


async def test_a_commit_conflict_and_a_taken_slug_are_translated(world):
    data = b"code,name_ar,name_fr,cycle,province\n"
    response = await page(
        world, "POST", "/admin/onboarding/upload", data={"kind": "schools"}, files={"file": ("e.csv", data, "text/csv")}
    )
    batch_id = response.headers["location"].rsplit("/", 1)[1]
    conflict = await page(world, "POST", f"/admin/onboarding/batches/{batch_id}/commit?lang=fr", data={})
    assert conflict.status_code == 409
    assert "seul un lot validé peut être écrit" in conflict.text
    slug = f"taken-{world.backend}"
    made = await page(world, "POST", "/admin/onboarding/nodes", data={"slug": slug, "name_fr": "Prise"})
    assert made.status_code == 200
    again = await page(world, "POST", "/admin/onboarding/nodes?lang=ar", data={"slug": slug, "name_fr": "Encore"})
    assert again.status_code == 409 and f"هذا المعرف مستعمل مسبقا: {slug}" in again.text


async def test_an_upload_over_the_onboarding_cap_is_a_form_error(world, monkeypatch):
    import msgspec

    monkeypatch.setattr(world.services, "settings", msgspec.structs.replace(world.settings, onboarding_max_bytes=1000))
    before = await world.sql("SELECT COUNT(*) FROM onboarding_batch")
    data = b"code,name_ar,name_fr,cycle,province\n" + b"x" * 2000
    response = await page(
        world, "POST", "/admin/onboarding/upload", data={"kind": "schools"}, files={"file": ("h.csv", data, "text/csv")}
    )
    assert response.status_code == 413 and 'id="upload-file-error"' in response.text
    assert await world.sql("SELECT COUNT(*) FROM onboarding_batch") == before


def test_every_error_message_has_arabic_and_french_translations():
    from admin_ui import onboarding_pages
    from core.i18n import translations
    from tenants.onboarding import Conflict
    from tenants.onboarding_rows import MESSAGES

    dirs = (Path(onboarding_pages.__file__).parent / "locale",)
    msgids = [
        *MESSAGES.values(),
        *onboarding_pages.NODE_MESSAGES.values(),
        onboarding_pages.PASSWORDS_DIFFER,
        onboarding_pages.WEAK_PASSWORD,
        onboarding_pages.INVALID_LINK,
        "This batch is being committed by someone else.",
        "This batch is {status}: only a batch that validated can be committed.",
    ]
    assert Conflict("{a}", code="x", a=1).detail == "1"
    for lang in ("ar", "fr"):
        catalogue = translations(lang, dirs)
        missing = [m for m in msgids if catalogue.gettext(m) == m]
        assert not missing, (lang, missing)
        for msgid in msgids:
            assert set(re.findall(r"\{\w+\}", catalogue.gettext(msgid))) == set(re.findall(r"\{\w+\}", msgid))
