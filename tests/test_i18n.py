"""Every string the portal shows through ``_()`` has an Arabic and a French translation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from core.app import build_plugin_host
from core.portal import CORE_MENU
from tests.conftest import make_settings

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
    response = await world.client.get("/t/lycee-ibn-batouta/lang/ar", params={"next": shown})
    assert response.status_code in (302, 303)
    assert response.headers["location"] == back_to
