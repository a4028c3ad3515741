"""Attendance portal pages: the register (form posts, errors shown on the page), the family's page with the
justification form (413/415 as form errors), the director's review, statistics and the home per role."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from plugins.attendance.errors import MESSAGES
from plugins.attendance.notify import translated
from tests.test_attendance import PDF, A, Setup, code, count, school_day, today, write  # noqa: F401 (fixture)


def form_url(s: Setup, slot: int | None = None) -> str:
    return f"/attendance/sessions/{slot or s.slots[0]}/{today().isoformat()}"


class ControlNames(HTMLParser):
    """The accessible names the HTML itself gives the register's controls: the text of the enclosing
    ``<label>`` (or of a ``<label for>``, or ``aria-label``), and the legend of the enclosing fieldset."""

    def __init__(self) -> None:
        super().__init__()
        self.names: dict[str, str] = {}
        self.groups: dict[str, str] = {}
        self._labels: list[list[str]] = []
        self._legend: list[str] | None = None
        self._group = ""
        self._pending: list[str] = []
        self._for: dict[str, str] = {}
        self._ids: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "label":
            self._labels.append([])
            if a.get("for"):
                self._for[a["for"] or ""] = ""
        elif tag == "legend":
            self._legend = []
        elif tag == "fieldset":
            self._group = ""
        elif tag == "input" and a.get("type") != "hidden":
            key = f"{a.get('name')}={a.get('value')}" if a.get("type") == "checkbox" else str(a.get("name"))
            self.names[key] = a.get("aria-label") or ""
            self.groups[key] = self._group
            if self._labels:
                self._pending.append(key)
            if a.get("id"):
                self._ids[a["id"] or ""] = key

    def handle_endtag(self, tag: str) -> None:
        if tag == "label" and self._labels:
            text = " ".join("".join(self._labels.pop()).split())
            for key in self._pending:
                self.names[key] = (self.names[key] + " " + text).strip()
            self._pending = []
        elif tag == "legend" and self._legend is not None:
            self._group = " ".join("".join(self._legend).split())
            self._legend = None

    def handle_data(self, data: str) -> None:
        for label in self._labels:
            label.append(data)
        if self._legend is not None:
            self._legend.append(data)


def control_names(html: str) -> tuple[dict[str, str], dict[str, str]]:
    parser = ControlNames()
    parser.feed(html)
    return parser.names, parser.groups


async def test_every_register_control_is_named_by_text_in_the_html(world):
    s = await Setup(world).build()
    for lang, absent, late in (("fr", "Absent", "Minutes de retard"), ("ar", "غائب", None)):
        page = await world.api("GET", form_url(s), as_=s.teacher, tenant=A, params={"lang": lang})
        assert page.status_code == 200, page.text
        names, groups = control_names(page.text)
        for pupil in s.pupils:
            # The box and the minutes are named by their label's text; the fieldset's legend names the pupil.
            assert names[f"a={pupil}"] == absent, names
            assert names[f"m{pupil}"] and (late is None or names[f"m{pupil}"] == late), names
            assert groups[f"a={pupil}"].startswith("Test ") and groups[f"m{pupil}"] == groups[f"a={pupil}"]
        assert all(names.values()), names
        # No label text hidden in generated content.
        assert "content:" not in page.text and "::after" not in page.text and "::before" not in page.text
    css = await world.client.get("/static/attendance/attendance.css")
    assert "content:" not in css.text


async def test_teacher_takes_attendance_with_the_form(world):
    s = await Setup(world).build()
    home = await world.api("GET", "/attendance/", as_=s.teacher, tenant=A)
    assert home.status_code == 200
    assert form_url(s) in home.text and f'data-slot="{s.slots[0]}"' in home.text

    page = await world.api("GET", form_url(s), as_=s.teacher, tenant=A)
    assert page.status_code == 200, page.text
    for pupil in s.pupils:
        # Each pupil's choices and minutes sit in a fieldset named by the pupil; every control has a label.
        [row] = [chunk for chunk in page.text.split("<li><fieldset>") if f"name=m{pupil} " in chunk]
        assert re.match(r"<legend>Test \w+ <bdi>[A-Z][0-9]{9}</bdi></legend>", row)
        assert f"<label><input type=checkbox name=a value={pupil}> Absent</label>" in row
        assert f"<label>Minutes de retard <input name=m{pupil} inputmode=numeric></label>" in row
        assert row.count("<label>") == 2
    assert page.text.count("<label><input type=checkbox") == len(s.pupils)
    form = {"a": str(s.pupils[0]), f"m{s.pupils[1]}": "8", f"m{s.pupils[2]}": ""}
    response = await world.api("POST", form_url(s), as_=s.teacher, tenant=A, data=form)
    assert response.status_code == 303, response.text
    assert response.headers["location"].endswith(f"{form_url(s)}?saved=1")
    page = await world.api("GET", response.headers["location"].removeprefix(f"/t/{A}"), as_=s.teacher, tenant=A)
    assert 'id="register-notice"' in page.text
    assert f"name=a value={s.pupils[0]} checked>" in page.text
    assert f'name=m{s.pupils[1]} value="8"' in page.text
    assert await count(world, "SELECT COUNT(*) FROM attendance_mark WHERE class_id = {}", s.class_id) == 2


async def test_register_errors_are_shown_on_the_page_and_nothing_is_saved(world):
    s = await Setup(world).build()
    form = {f"m{s.pupils[0]}": "beaucoup", "a": str(s.pupils[1])}
    response = await world.api("POST", form_url(s), as_=s.teacher, tenant=A, data=form)
    assert response.status_code == 400
    assert 'id="register-error"' in response.text and f'name=m{s.pupils[0]} value="beaucoup"' in response.text
    assert f"name=a value={s.pupils[1]} checked>" in response.text  # what was posted is shown again
    form = {f"m{s.pupils[0]}": "500"}
    response = await world.api("POST", form_url(s), as_=s.teacher, tenant=A, data=form, params={"lang": "fr"})
    assert response.status_code == 400 and "entre 1 et 120" in response.text and "between 1 and" not in response.text
    assert await count(world, "SELECT COUNT(*) FROM attendance_session WHERE class_id = {}", s.class_id) == 0
    # Another teacher's lesson: refused.
    other = await Setup(world).build()
    assert (await world.api("GET", form_url(other), as_=s.teacher, tenant=A)).status_code == 403


async def test_family_justifies_with_a_document_and_the_director_accepts(world):
    s = await Setup(world).build()
    response = await world.api("POST", form_url(s), as_=s.teacher, tenant=A, data={"a": str(s.pupils[0])})
    assert response.status_code == 303
    parent = s.guardians[0]
    page = await world.api("GET", f"/attendance/pupils/{s.pupils[0]}", as_=parent, tenant=A)
    assert page.status_code == 200
    mark = int(re.search(r'name="absence" value="(\d+)"', page.text).group(1))
    assert 'enctype="multipart/form-data"' in page.text and '<label for="document">' in page.text

    # Too large and wrong type: the page says so, nothing is stored.
    big = PDF + b"0" * (5 * 1024 * 1024)
    response = await world.api(
        "POST",
        f"/attendance/pupils/{s.pupils[0]}/justify",
        as_=parent,
        tenant=A,
        data={"absence": str(mark), "reason": "illness"},
        files={"document": ("big.pdf", big, "application/pdf")},
    )
    assert response.status_code == 413 and 'id="pupil-error"' in response.text
    response = await world.api(
        "POST",
        f"/attendance/pupils/{s.pupils[0]}/justify",
        as_=parent,
        tenant=A,
        data={"absence": str(mark), "reason": "illness"},
        files={"document": ("a.txt", b"hello", "text/plain")},
    )
    assert response.status_code == 415 and 'id="pupil-error"' in response.text
    response = await world.api(
        "POST",
        f"/attendance/pupils/{s.pupils[0]}/justify",
        as_=parent,
        tenant=A,
        data={"reason": "illness"},
        files={"document": ("", b"", "application/octet-stream")},
    )
    assert response.status_code == 400  # no absence ticked
    assert await count(world, "SELECT COUNT(*) FROM attendance_justification WHERE student_id = {}", s.pupils[0]) == 0

    response = await world.api(
        "POST",
        f"/attendance/pupils/{s.pupils[0]}/justify",
        as_=parent,
        tenant=A,
        data={"absence": str(mark), "reason": "illness", "note": "Grippe"},
        files={"document": ("certificat.pdf", PDF, "application/pdf")},
    )
    assert response.status_code == 303, response.text
    page = await world.api("GET", f"/attendance/pupils/{s.pupils[0]}?sent=1", as_=parent, tenant=A)
    assert 'data-state="pending"' in page.text

    review = await world.api("GET", "/attendance/review", as_=s.director, tenant=A)
    assert review.status_code == 200 and "Grippe" in review.text
    jid = await world.sql("SELECT id FROM attendance_justification WHERE student_id = {}", s.pupils[0])
    assert f'data-justification="{jid}"' in review.text
    document = await world.api("GET", f"/attendance/justifications/{jid}/document", as_=s.director, tenant=A)
    assert document.status_code == 200 and document.content == PDF
    response = await world.api(
        "POST", f"/attendance/justifications/{jid}/review", as_=s.director, tenant=A, data={"decision": "accepted"}
    )
    assert response.status_code == 303
    page = await world.api("GET", f"/attendance/pupils/{s.pupils[0]}", as_=parent, tenant=A)
    assert f'data-mark="{mark}" data-state="accepted"' in page.text


async def test_statistics_page_for_a_director_and_a_region(world):
    s = await Setup(world).build()
    await world.api("POST", form_url(s), as_=s.teacher, tenant=A, data={"a": str(s.pupils[0])})
    page = await world.api("GET", "/attendance/stats", as_=s.director, tenant=A)
    assert page.status_code == 200 and 'id="stats-table"' in page.text and s.class_id and "stats.csv" in page.text
    region = await world.api("GET", "/attendance/stats", as_="region.casa@madrasa.demo", tenant="casablanca-settat")
    assert region.status_code == 200 and 'id="stats-table"' in region.text
    assert (await world.api("GET", "/attendance/stats", as_=s.teacher, tenant=A)).status_code == 403
    home = await world.api("GET", "/", as_=s.director, tenant=A)
    assert "/attendance/review" in home.text  # the director's dashboard card


async def test_the_statistics_csv_link_works_with_the_portal_session(world):
    """The page's download link answers the logged-in browser (director, province and region admins)."""
    s = await Setup(world).build()
    for who, tenant in (
        (s.director, A),
        ("province.anfa@madrasa.demo", "casablanca-anfa"),
        ("region.casa@madrasa.demo", "casablanca-settat"),
    ):
        page = await world.api("GET", "/attendance/stats", as_=who, tenant=tenant)
        assert page.status_code == 200, (who, page.status_code)
        link = re.search(r'href="([^"]*stats\.csv[^"]*)"', page.text)
        assert link is not None and "/api/" not in link.group(1)
        download = await world.api("GET", link.group(1).replace("&amp;", "&"), as_=who)
        assert download.status_code == 200, (who, download.text)
        assert download.headers["content-type"].startswith("text/csv")
        assert "attachment" in download.headers["content-disposition"]
    assert (await world.api("GET", "/attendance/stats.csv", as_=s.teacher, tenant=A)).status_code == 403


async def test_director_lists_the_registers_of_a_day_and_opens_one(world):
    s = await Setup(world).build()
    home = await world.api("GET", "/attendance/", as_=s.director, tenant=A, params={"day": today().isoformat()})
    assert home.status_code == 200
    assert f'data-slot="{s.slots[0]}"' in home.text and f'data-slot="{s.slots[1]}"' in home.text
    page = await world.api("GET", form_url(s), as_=s.director, tenant=A)
    assert page.status_code == 200 and 'id="save-register"' in page.text
    # A teacher's home lists only their own lessons.
    other = await Setup(world).build()
    home = await world.api("GET", "/attendance/", as_=other.teacher, tenant=A)
    assert f'data-slot="{other.slots[0]}"' in home.text and f'data-slot="{s.slots[0]}"' not in home.text


async def test_service_errors_are_translated_on_pages_and_coded_on_the_api(world):
    s = await Setup(world).build()
    other = await Setup(world).build()
    # The API: a stable code, the English detail.
    response = await world.api(
        "PUT",
        f"/api/v1/attendance/sessions/{other.slots[0]}/{today().isoformat()}",
        as_=s.teacher,
        tenant=A,
        json={"entries": []},
    )
    assert response.status_code == 403
    assert response.json()["code"] == "not_your_lesson" and "not in your timetable" in response.json()["detail"]
    # Pages: the same refusal in the reader's language.
    for lang, words in (("fr", "pas dans votre emploi du temps"), ("ar", "ليست في جدولك")):
        page = await world.api(
            "GET", form_url(other), as_=s.teacher, tenant=A, params={"lang": lang}, headers={"accept": "text/html"}
        )
        assert page.status_code == 403 and words in page.text and "not in your timetable" not in page.text
    # A register error, per pupil, in Arabic.
    form = {f"m{s.pupils[0]}": "500"}
    response = await world.api("POST", form_url(s), as_=s.teacher, tenant=A, data=form, params={"lang": "ar"})
    assert response.status_code == 400 and "يجب أن تكون دقائق التأخر بين 1 و120" in response.text


def test_every_error_message_has_arabic_and_french():
    for name, (_, message) in MESSAGES.items():
        for locale in ("fr", "ar"):
            assert translated(locale, message) != message, (name, locale)


async def test_the_register_page_of_a_class_of_45_is_small(world):
    s = await Setup(world).build()
    for number in range(42):
        body = {"national_code": code(), "first_name": "Élève", "last_name": f"Nom {number}", "class_id": s.class_id}
        response = await s.post("/api/v1/school/students", body)
        assert response.status_code == 201, response.text
    await write(
        world,
        "UPDATE enrolment SET starts_on = (SELECT starts_on FROM school_year WHERE id = enrolment.school_year_id) "
        "WHERE class_id = {}",
        s.class_id,
    )
    page = await world.api("GET", form_url(s), as_=s.teacher, tenant=A)
    assert page.status_code == 200 and page.text.count("<li><fieldset>") == 45
    assert len(page.content) < 15_000, len(page.content)
    names, _ = control_names(page.text)
    assert len(names) == 90 and all(names.values())
    # In Arabic too (two bytes a letter), the labels' text keeps the page small.
    arabic = await world.api("GET", form_url(s), as_=s.teacher, tenant=A, params={"lang": "ar"})
    assert arabic.status_code == 200 and len(arabic.content) < 15_000, len(arabic.content)
    # The style sheet is a cacheable static file, not inline styles.
    assert (
        '<link rel="stylesheet" href="/static/attendance/attendance.css">' in page.text and " style=" not in page.text
    )
    css = await world.client.get("/static/attendance/attendance.css")
    assert css.status_code == 200 and ".register" in css.text
