"""The director's modules page (``/school/modules``): each module's state and where it comes from, and the
school's own switch with a reason — what ``PUT /api/v1/tenants/{school}/modules/{module}`` does, with the session."""

from __future__ import annotations

import pytest

from tenants import module_school_pages
from tests.test_director_portal import fresh_school
from tests.test_school_manage_pages import Director

OWN = "SELECT COUNT(*) FROM module_setting WHERE tenant_id = {} AND module = {}"


@pytest.mark.parametrize("locale", ["ar", "fr"])
def test_the_pages_messages_are_translated(locale):
    from tests.test_i18n import catalogue

    messages = catalogue(locale)
    missing = [m for m in module_school_pages.PAGE_MESSAGES if not messages.get(m)]
    assert not missing, missing


async def test_the_director_switches_a_module_for_the_school_with_a_reason(world):
    d = Director(world, await fresh_school(world, "modules"))
    home = await d.page("GET", "/")
    assert f'href="/t/{d.slug}/school/modules"' in home.text
    assert f'href="/t/{d.slug}/attendance/' in home.text
    assert "/school/modules" not in (await d.page("GET", "/", d.teacher)).text
    assert (await d.page("GET", "/school/modules", d.teacher)).status_code == 403

    listed = await d.page("GET", "/school/modules")
    assert listed.status_code == 200
    assert 'data-module="attendance" data-state="on"' in listed.text
    assert 'data-module="hr" data-state="off"' in listed.text
    assert "Réglage par défaut du module" in listed.text
    assert (await d.api("GET", "/api/v1/attendance/notices")).status_code == 200

    # Bad input: the errors beside the module's form, nothing written.
    bad = await d.page("POST", "/school/modules", data={"module": "attendance", "state": "maybe", "reason": "x"})
    assert bad.status_code == 400
    assert 'id="module-attendance-state-error"' in bad.text and 'id="module-attendance-reason-error"' in bad.text
    unknown = await d.page("POST", "/school/modules", data={"module": "nothing", "state": "off", "reason": "test"})
    assert unknown.status_code == 400 and 'id="modules-error"' in unknown.text
    arabic = await world.api(
        "POST",
        "/school/modules?lang=ar",
        as_=d.director,
        tenant=d.slug,
        data={"module": "attendance", "state": "off", "reason": ""},
    )
    assert arabic.status_code == 400 and 'dir="rtl"' in arabic.text and "module-attendance-reason-error" in arabic.text
    assert await world.sql(OWN, d.school_id, "attendance") == 0

    # Off for this school: the page says so, the module's menu entry and routes are gone here.
    off = await d.page(
        "POST",
        "/school/modules",
        data={"module": "attendance", "state": "off", "reason": "Pas de registre cette année"},
    )
    assert off.status_code == 303 and off.headers["location"].endswith("/school/modules?done=switched")
    after = await d.page("GET", "/school/modules?done=switched")
    assert 'data-module="attendance" data-state="off"' in after.text
    assert "Réglé pour cet établissement" in after.text and "Pas de registre cette année" in after.text
    assert "Le réglage du module a été enregistré." in after.text
    assert f'href="/t/{d.slug}/attendance/' not in (await d.page("GET", "/")).text
    assert (await d.api("GET", "/api/v1/attendance/notices")).status_code == 404
    audited = await world.sql(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'module.set' AND object_id = 'attendance' AND reason = {}",
        "Pas de registre cette année",
    )
    assert audited == 1

    # Back to inherit: the school's own switch is removed and the module is on again.
    back = await d.page(
        "POST", "/school/modules", data={"module": "attendance", "state": "inherit", "reason": "Retour"}
    )
    assert back.status_code == 303
    assert await world.sql(OWN, d.school_id, "attendance") == 0
    assert 'data-module="attendance" data-state="on"' in (await d.page("GET", "/school/modules")).text
