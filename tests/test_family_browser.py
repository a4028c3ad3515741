"""The teacher's Massar workbook and the family's report cards in a real browser on a phone.

Runs once (not per database backend), like ``tests/test_grades_browser.py``: a real ``madrasa`` server on
SQLite (``madrasa demo --no-serve`` then ``madrasa serve``) and Debian's Chromium driven headless by
Playwright at 390×844.

* A teacher opens the grid of an assessment, downloads the Massar workbook from the page, fills it in with
  openpyxl, uploads it through the page's form and reads the report; the marks are read back through the API.
* The demo parent, whose two children are in two schools of two regions, downloads each child's report cards
  from the child's marks page. The closed term's results and the stored PDFs are put in place beside the
  server (the demo has no director for the second school to close its term).
"""

from __future__ import annotations

import io
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from openpyxl import load_workbook

from core.config import load_settings
from core.storage import make_storage
from plugins.grades.bulletins.cards import card_key
from tests.test_browser import CHROMIUM_ARGS, SCHOOL, account, chromium, demo_server  # noqa: F401 (fixtures)
from tests.test_grades_browser import seed_class, stored_marks, term_id

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def read_bytes(path: Any) -> bytes:
    return Path(path).read_bytes()


def rows_by_code(data: bytes) -> dict[str, int]:
    ws = load_workbook(io.BytesIO(data))["Notes"]
    return {ws[f"C{r}"].value: r for r in range(18, ws.max_row + 1) if ws[f"C{r}"].value}


async def log_in(page: Any, base: str, who: dict[str, str], tenant: str = SCHOOL) -> None:
    from playwright.async_api import expect

    await page.goto(f"{base}/t/{tenant}/login?lang=fr")
    await page.locator("#email").fill(who["email"])
    await page.locator("#password").fill(who["password"])
    await page.locator("main form button[type=submit]").click()
    await expect(page.locator("form.logout")).to_be_visible()
    await page.goto(f"{base}/lang/fr?next=/t/{tenant}/")


async def test_teacher_round_trips_the_massar_workbook_from_the_grid_page(chromium, demo_server, tmp_path):  # noqa: F811
    from playwright.async_api import async_playwright, expect

    base, accounts = demo_server
    seeded = seed_class(base, accounts, term_id(Path(tmp_path)))
    amina, bilal, chaima = seeded["pupils"]
    grid_url = f"/t/{SCHOOL}/grades/assessments/{seeded['assessment_id']}"
    shot = tmp_path / "workbook-phone.png"
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(
                viewport={"width": 390, "height": 844},
                is_mobile=True,
                has_touch=True,
                locale="fr-FR",
                accept_downloads=True,
            )
            page = await context.new_page()
            page.set_default_timeout(15_000)
            try:
                await log_in(page, base, seeded["teacher"])
                await page.goto(f"{base}{grid_url}")
                async with page.expect_download() as info:
                    await page.locator("#workbook-download").tap()
                download = await info.value
                blank = read_bytes(await download.path())
                assert download.suggested_filename.endswith(".xlsx")

                at = rows_by_code(blank)
                codes = {v: k for k, v in at.items()}
                assert len(codes) == 3
                wb = load_workbook(io.BytesIO(blank))
                ws = wb["Notes"]
                rows = sorted(at.values())
                ws[f"G{rows[0]}"], ws[f"G{rows[1]}"], ws[f"G{rows[2]}"] = 16.5, "11,75", "غ"
                filled = tmp_path / "rempli.xlsx"
                wb.save(filled)

                await page.locator("input[type=file][name=file]").set_input_files(str(filled))
                await page.locator("#workbook-upload").tap()
                report = page.locator("#workbook-report")
                await expect(report).to_contain_text("3 notes modifiées")

                # A wrong cell: listed on the page, nothing written.
                ws[f"G{rows[0]}"] = 25
                wb.save(filled)
                await page.locator("input[type=file][name=file]").set_input_files(str(filled))
                await page.locator("#workbook-upload").tap()
                await expect(page.locator(f'tr.cell-error[data-cell="G{rows[0]}"]')).to_be_visible()
                width = await page.evaluate("document.documentElement.scrollWidth")
            except Exception as exc:
                await page.screenshot(path=str(shot), full_page=True)
                raise AssertionError(f"{exc}\nscreenshot: {shot}, page: {page.url}") from exc
        finally:
            await browser.close()

    assert width <= 390, f"the report page is {width}px wide on a 390px phone"
    stored = stored_marks(base, seeded["as_teacher"], seeded["assessment_id"])
    scores = {(m["score"], m["status"]) for m in stored.values() if m["student_id"] in (amina, bilal, chaima)}
    assert scores == {(16.5, "present"), (11.75, "present"), (None, "absent")}, stored


def place_report_cards(data_dir: Path) -> list[dict[str, Any]]:
    """The demo parent's children, each with a closed first term's results and two report cards recorded at the
    storage keys of their school's publication version (as a first download or the class job stores them)."""
    now = datetime.now(UTC).isoformat()
    with sqlite3.connect(data_dir / "madrasa.sqlite3") as db:
        db.row_factory = sqlite3.Row
        parent = db.execute("SELECT id FROM person WHERE email = 'parent@madrasa.demo'").fetchone()["id"]
        children = db.execute(
            "SELECT s.id, s.school_id, t.slug, s.region_id, s.province_id, s.national_code, e.class_id, "
            "COALESCE((SELECT p.version FROM grade_publication p WHERE p.school_id = s.school_id), 0) AS version "
            "FROM guardianship g "
            "JOIN student s ON s.id = g.student_id JOIN tenant t ON t.id = s.school_id "
            "JOIN enrolment e ON e.student_id = s.id AND e.ends_on IS NULL WHERE g.person_id = ? ORDER BY s.id",
            (parent,),
        ).fetchall()
        first_term = db.execute(
            "SELECT id, number FROM term WHERE tenant_id IS NULL ORDER BY number LIMIT 1"
        ).fetchone()
        term = first_term["id"]
        out = []
        for child in children:
            cols = (child["region_id"], child["province_id"], child["school_id"])
            if not db.execute(
                "SELECT id FROM grade_term_close WHERE school_id = ? AND term_id = ?", (child["school_id"], term)
            ).fetchone():
                db.execute(
                    "INSERT INTO grade_term_close (region_id, province_id, school_id, term_id, closed_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (*cols, term, now),
                )
            db.execute("DELETE FROM grade_general_result WHERE student_id = ? AND term_id = ?", (child["id"], term))
            db.execute(
                "INSERT INTO grade_general_result (region_id, province_id, school_id, term_id, class_id, student_id, "
                "average, rank, ranked) VALUES (?, ?, ?, ?, ?, ?, 13.5, 4, 30)",
                (*cols, term, child["class_id"], child["id"]),
            )
            cards = {}
            for locale in ("ar", "fr"):
                filename = f"{child['national_code']}-S{first_term['number']}-{locale}.pdf"
                key = card_key(child["school_id"], child["version"], child["id"], filename)
                cards[locale] = (
                    db.execute(
                        "INSERT INTO grade_bulletin (region_id, province_id, school_id, term_id, student_id, "
                        "class_id, storage_key, locale, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                        (*cols, term, child["id"], child["class_id"], key, locale, now),
                    ).fetchone()["id"],
                    key,
                )
            out.append(
                {
                    "id": child["id"],
                    "school_id": child["school_id"],
                    "slug": child["slug"],
                    "cards": cards,
                    "term": term,
                }
            )
    return out


async def test_parent_downloads_both_childrens_report_cards(chromium, demo_server, tmp_path):  # noqa: F811
    from playwright.async_api import async_playwright, expect

    base, accounts = demo_server
    children = place_report_cards(Path(tmp_path))
    assert len(children) == 2 and len({c["slug"] for c in children}) == 2, children
    storage = make_storage(load_settings({"MADRASA_DATA_DIR": str(tmp_path)}))
    for child in children:
        for locale, (_, key) in child["cards"].items():
            await storage.put(
                key, PDF + f"% {child['id']} {locale}\n".encode(), "application/pdf", tenant_id=child["school_id"]
            )
    parent = account(accounts, "parent")
    shot = tmp_path / "report-cards-phone.png"
    got: dict[tuple[int, str], bytes] = {}
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(
                viewport={"width": 390, "height": 844},
                is_mobile=True,
                has_touch=True,
                locale="fr-FR",
                accept_downloads=True,
            )
            page = await context.new_page()
            page.set_default_timeout(15_000)
            widths = []
            try:
                await log_in(page, base, parent)
                await page.locator(f'nav.menu a[href="/t/{SCHOOL}/grades/"]').tap()
                for child in children:
                    await page.goto(f"{base}/t/{SCHOOL}/grades/")
                    await page.locator(f'a[href="/t/{child["slug"]}/grades/pupils/{child["id"]}"]').first.tap()
                    await page.wait_for_url(f"**/t/{child['slug']}/grades/pupils/{child['id']}")
                    await expect(page.locator("#results-title")).to_have_text("Résultats et bulletins")
                    await expect(page.locator("dd.rank").first).to_contain_text("4 sur 30")
                    for locale in child["cards"]:
                        link = page.locator(f'a.bulletin[data-locale="{locale}"]')
                        await expect(link).to_have_attribute(
                            "href", f"/t/{child['slug']}/grades/pupils/{child['id']}/bulletins/{child['term']}/{locale}"
                        )
                        async with page.expect_download() as info:
                            await link.tap()
                        download = await info.value
                        got[(child["id"], locale)] = read_bytes(await download.path())
                    widths.append(await page.evaluate("document.documentElement.scrollWidth"))
            except Exception as exc:
                await page.screenshot(path=str(shot), full_page=True)
                raise AssertionError(f"{exc}\nscreenshot: {shot}, page: {page.url}") from exc
        finally:
            await browser.close()

    for child in children:
        for locale in ("ar", "fr"):
            assert got[(child["id"], locale)] == PDF + f"% {child['id']} {locale}\n".encode()
    assert max(widths) <= 390, f"the marks page is {max(widths)}px wide on a 390px phone"
