"""Every string the portal shows through ``_()`` has an Arabic and a French translation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from core.app import build_plugin_host
from core.portal import CORE_MENU
from tests.conftest import make_settings, new_client

ROOT = Path(__file__).resolve().parents[1]
CALL = re.compile(r"""_\(\s*(["'])(.+?)\1""")


def template_strings() -> set[str]:
    """``_("…")`` in core's and every built-in plugin's templates."""
    found = set()
    folders = [ROOT / "core" / "templates", *ROOT.glob("*/templates"), *ROOT.glob("plugins/*/templates")]
    for folder in folders:
        for path in folder.rglob("*.html"):
            found |= {m.group(2) for m in CALL.finditer(path.read_text())}
    return found


def plugin_strings(tmp_path) -> set[str]:
    host = build_plugin_host(make_settings("sqlite", tmp_path, None, allowed_plugins=()))
    found = {item.label for item in CORE_MENU}
    for name in host.names:
        module = host._objects[name]
        menu = getattr(module, "madrasa_menu_items", None)
        if menu is not None:
            found |= {item.label for item in menu(ctx=None)}
    return found


def catalogue(locale: str) -> dict[str, str]:
    """Core's catalogue merged with every built-in plugin's (core wins, as at run time)."""
    merged: dict[str, str] = {}
    folders = [ROOT / "core" / "locale", *ROOT.glob("*/locale"), *ROOT.glob("plugins/*/locale")]
    for folder in folders:
        for po in sorted((folder / locale / "LC_MESSAGES").glob("*.po")):
            with po.open("rb") as handle:
                for m in read_po(handle):
                    if m.id and m.string and not merged.get(m.id):
                        merged[m.id] = m.string
    return merged


@pytest.mark.parametrize("locale", ["ar", "fr"])
def test_every_portal_string_is_translated(locale, tmp_path):
    messages = catalogue(locale)
    wanted = template_strings() | plugin_strings(tmp_path)
    assert len(wanted) > 30
    missing = sorted(s for s in wanted if not messages.get(s))
    assert not missing, f"missing {locale} translations:\n" + "\n".join(missing)


def test_arabic_is_really_arabic():
    messages = catalogue("ar")
    assert all(re.search(r"[\u0600-\u06FF]", text) for text in messages.values() if text)


@pytest.mark.parametrize(
    ("shown", "back_to"),
    [
        # after a posted form the address is the form's action, which has no page: back to the page it is on
        ("/t/lycee-ibn-batouta/attendance/pupils/12/justify", "/t/lycee-ibn-batouta/attendance/pupils/12"),
        ("/t/lycee-ibn-batouta/grades/?term_id=3", "/t/lycee-ibn-batouta/grades/?term_id=3"),
        ("/t/lycee-ibn-batouta/no/such/page", "/t/lycee-ibn-batouta/"),
        ("/login", "/login"),
    ],
)
async def test_switching_language_returns_to_a_page_that_exists(world, shown, back_to):
    async with new_client(world.app) as client:  # the language cookie stays in this client
        response = await client.get("/t/lycee-ibn-batouta/lang/ar", params={"next": shown})
    assert response.status_code in (302, 303)
    assert response.headers["location"] == back_to


@pytest.mark.parametrize("locale", ["ar", "fr"])
def test_every_error_page_string_is_translated(locale):
    from http import HTTPStatus

    from core.problems import _PAGE_DETAILS, CORE_MESSAGES, PAGE_STATUSES

    messages = catalogue(locale)
    wanted = {HTTPStatus(s).phrase for s in PAGE_STATUSES} | set(_PAGE_DETAILS.values()) | set(CORE_MESSAGES)
    missing = sorted(s for s in wanted if not messages.get(s))
    assert not missing, f"missing {locale} translations:\n" + "\n".join(missing)


SCHOOL = "lycee-ibn-batouta"


async def error_page(world, path: str, locale: str, as_: str | None = None):
    headers = {"cookie": f"madrasa_lang={locale}", "accept": "text/html"}
    if as_ is not None:
        cookie, _ = await world.web_session(as_)
        headers["cookie"] += f"; madrasa_session={cookie}"
    return await world.client.get(f"/t/{SCHOOL}{path}", headers=headers)


@pytest.mark.parametrize(
    ("path", "as_", "status", "english", "arabic"),
    [
        ("/no/such/page", None, 404, "Not Found", "هذه الصفحة غير موجودة"),
        ("/admin/tenants/", "teacher.lycee-ibn-batouta@test.ma", 403, "administration console", "وحدة الإدارة مخصصة"),
        ("/attendance/stats", "teacher.lycee-ibn-batouta@test.ma", 403, "You have no access", "ليس لديك حق الولوج"),
        ("/logout", "teacher.lycee-ibn-batouta@test.ma", 405, "Method Not Allowed", "لا يمكن فتح هذا العنوان"),
        ("/grades/pupils/999999999", "parent@madrasa.demo", 404, "No such pupil", "التلميذ غير موجود"),
    ],
)
async def test_error_pages_speak_the_readers_language_and_keep_the_school(world, path, as_, status, english, arabic):
    page = await error_page(world, path, "ar", as_)
    assert page.status_code == status, page.text[:300]
    assert 'lang="ar"' in page.text and 'dir="rtl"' in page.text
    main = page.text[page.text.index("<main>") :]
    assert arabic in page.text and english not in page.text, main
    assert "ثانوية ابن بطوطة" in page.text  # the school's name: its branding, not the platform's
    assert "/lang/fr" in page.text  # the language links are there
    french = await error_page(world, path, "fr", as_)
    assert english not in french.text and "Lycée Ibn Batouta" in french.text


#: Exceptions whose message an error page shows; ``Invalid``'s message is its second argument.
REFUSALS = {
    "PermissionDeniedException",
    "NotFoundException",
    "NotAuthorizedException",
    "ClientException",
    "Forbidden",
    "NotFound",
    "Conflict",
    "TooLarge",
    "UnsupportedMedia",
    "Locked",
    "PreconditionRequired",
    "DomainError",
    "PayloadTooLarge",
    "UnsupportedMediaType",
    "TooManyRequests",
    "TenantSuspended",
    "Invalid",
}


def refusal_messages() -> dict[str, str]:
    """Every literal message of a refusal raised in core, the built-in plugins, tenants and the console."""
    import ast

    found: dict[str, str] = {}
    for folder in ("core", "plugins", "tenants", "admin_ui"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name not in REFUSALS:
                    continue
                position = 1 if name == "Invalid" else 0
                if len(node.args) > position and isinstance(node.args[position], ast.Constant):
                    value = node.args[position].value
                    if isinstance(value, str) and value:
                        found.setdefault(value, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


@pytest.mark.parametrize("locale", ["ar", "fr"])
def test_every_refusal_message_is_translated(locale):
    """What a refusal says reaches error pages and forms in the reader's language."""
    messages = catalogue(locale)
    found = refusal_messages()
    assert len(found) > 50
    missing = sorted(f"{where} {text!r}" for text, where in found.items() if not messages.get(text))
    assert not missing, f"missing {locale} translations:\n" + "\n".join(missing)


@pytest.mark.parametrize(
    ("locale", "hours", "share", "mark", "whole"),
    [
        ("fr", "2,0", "12,5\xa0%", "12,40", "20"),
        ("ar", "2,0", "12,5%", "12,40", "20"),
        ("en", "2.0", "12.5%", "12.40", "20"),
    ],
)
def test_numbers_follow_the_readers_convention(locale, hours, share, mark, whole):
    from core.i18n import format_number, format_percent

    assert format_number(2, locale, 1) == hours
    assert format_percent(0.125, locale) == share
    assert format_number("12.4", locale, 2) == mark
    assert format_number(20.0, locale) == whole
    assert format_number(None, locale) == ""


async def test_attendance_statistics_write_numbers_in_the_page_language(world):
    cookie, _ = await world.web_session("director@madrasa.demo")
    for locale, decimal in (("fr", ","), ("en", ".")):
        page = await world.client.get(
            f"/t/{SCHOOL}/attendance/stats",
            headers={"cookie": f"madrasa_session={cookie}; madrasa_lang={locale}", "accept": "text/html"},
        )
        assert page.status_code == 200
        table = page.text[page.text.index('id="stats-table"') :]
        cells = re.findall(r"<td>([0-9][0-9.,\s\u00a0\u202f%]*)</td>", table)
        assert cells, table[:500]
        other = "." if decimal == "," else ","
        assert not [c for c in cells if re.search(rf"\d\{other}\d", c)], cells
        assert any(decimal in c for c in cells), cells
