"""The director's school management in the portal: the pupils' CSV import (more pages below it).

Each test works in a school of its own (:func:`tests.test_director_portal.fresh_school`), with the
session of its director (``school.manage``) and of its teacher (who may not manage).
"""

from __future__ import annotations

import re
import secrets
from typing import Any

import pytest

from core.middleware import SESSION_COOKIE
from core.school import manage_pages, pupil_pages, slot_pages, timetable
from tests.test_director_portal import OTHER, fresh_school

HEADER = "code_massar;nom;prenom;classe;tuteur_email;tuteur_nom;lien"


def code() -> str:
    """A pupil code unlikely to collide with any other test's."""
    return f"M{secrets.randbelow(10**9):09d}"


class Director:
    """A fresh school with one class, seen through its director's and teacher's sessions."""

    def __init__(self, world: Any, slug: str) -> None:
        self.world, self.slug = world, slug
        self.director, self.teacher = f"director.{slug}@test.ma", f"teacher.{slug}@test.ma"
        self.school_id = world.ids[slug]

    async def page(self, method: str, path: str, actor: str | None = None, **kw: Any) -> Any:
        separator = "&" if "?" in path else "?"
        url = f"{path}{separator}lang=fr"
        return await self.world.api(method, url, as_=actor or self.director, tenant=self.slug, **kw)

    async def api(self, method: str, path: str, **kw: Any) -> Any:
        return await self.world.api(method, path, as_=self.director, tenant=self.slug, **kw)

    async def setup(self) -> Director:
        made = await self.api(
            "POST", "/api/v1/school/classes", json={"name": "TC-M1", "level_code": "TC", "track_code": "TCS"}
        )
        assert made.status_code == 201, made.text
        self.class_id = made.json()["id"]
        return self

    async def pupils(self) -> int:
        return int(await self.world.sql("SELECT COUNT(*) FROM student WHERE school_id = {}", self.school_id))


def csv_file(*lines: str) -> dict[str, Any]:
    return {"file": ("eleves.csv", ("\r\n".join([HEADER, *lines]) + "\r\n").encode(), "text/csv")}


async def test_the_director_imports_pupils_all_or_nothing(world, inbox):
    d = await Director(world, await fresh_school(world, "import")).setup()

    search = await d.page("GET", "/school/pupils")
    assert search.status_code == 200 and f'href="/t/{d.slug}/school/import"' in search.text
    form = await d.page("GET", "/school/import")
    assert form.status_code == 200 and 'enctype="multipart/form-data"' in form.text
    assert 'name="csrf_token"' in form.text and 'value="check"' in form.text
    assert (await d.page("GET", "/school/import", d.teacher)).status_code == 403

    good, bad = code(), "X12"
    parent = f"parent.{secrets.token_hex(4)}@example.ma"
    # A bad code and an unknown class: the report names both cells in French; nothing is written.
    wrong = await d.page(
        "POST",
        "/school/import",
        data={"action": "import"},
        files=csv_file(f"{good};Alaoui;Sara;TC-M1;{parent};Mme Alaoui;mère", f"{bad};Bennani;Omar;TC-9;;;"),
    )
    assert wrong.status_code == 422 and 'data-ok="no"' in wrong.text
    assert re.search(r'<tr data-row="3" data-column="national_code">.*?Code Massar.*?</tr>', wrong.text, re.S)
    assert "aucune classe nommée &#39;TC-9&#39; dans cet établissement" in wrong.text
    assert await d.pupils() == 0 and not inbox.messages

    # Fixed: a check writes nothing, then the import creates both and invites the new guardian.
    fixed = csv_file(f"{good};Alaoui;Sara;TC-M1;{parent};Mme Alaoui;mère", f"{code()};Bennani;Omar;TC-M1;;;")
    checked = await d.page("POST", "/school/import", data={"action": "check"}, files=fixed)
    assert checked.status_code == 200 and 'data-dry-run="yes"' in checked.text and 'data-ok="yes"' in checked.text
    assert "Toutes les lignes sont valides (2 élèves)" in checked.text
    assert await d.pupils() == 0
    done = await d.page("POST", "/school/import", data={"action": "import"}, files=fixed)
    assert done.status_code == 200 and 'data-dry-run="no"' in done.text, done.text
    counts = dict(re.findall(r'data-count="(\w+)">(\d+)<', done.text))
    assert counts == {"created": "2", "linked": "0", "invited": "1"}
    assert await d.pupils() == 2
    assert [m["To"] for m in inbox.messages] == [parent]

    # The same file again: both codes are taken now; nothing more is written.
    again = await d.page("POST", "/school/import", data={"action": "import"}, files=fixed)
    assert again.status_code == 422 and "déjà inscrit" in again.text
    assert await d.pupils() == 2

    # The teacher may not import.
    refused = await d.page("POST", "/school/import", d.teacher, data={"action": "import"}, files=fixed)
    assert refused.status_code == 403


async def test_the_import_form_shows_a_missing_or_refused_file_beside_the_field(world):
    d = await Director(world, await fresh_school(world, "importfile")).setup()
    empty = await d.page("POST", "/school/import", data={"action": "check"})
    assert empty.status_code == 400 and 'id="import-file-error"' in empty.text
    assert "Choisissez un fichier CSV." in empty.text
    binary = {"file": ("photo.csv", b"\x89PNG\r\n\x1a\n" + b"\x00" * 32, "text/csv")}
    refused = await d.page("POST", "/school/import", data={"action": "import"}, files=binary)
    assert refused.status_code == 400 and "Ce n&#39;est pas un fichier texte CSV en UTF-8" in refused.text
    arabic = await world.api("POST", "/school/import?lang=ar", as_=d.director, tenant=d.slug, data={"action": "check"})
    assert arabic.status_code == 400 and "اختر ملف CSV." in arabic.text and 'dir="rtl"' in arabic.text
    assert await d.pupils() == 0
    # Another school's director cannot post to this school's page.
    outsider = await world.api(
        "POST", "/school/import", as_=f"director.{OTHER}@test.ma", tenant=d.slug, files=csv_file()
    )
    assert outsider.status_code in (403, 404)


@pytest.mark.parametrize("locale", ["ar", "fr"])
def test_the_pages_messages_are_translated(locale):
    from core.school.pupil_rows import SCHOOL_MESSAGES
    from tests.test_i18n import catalogue

    messages = catalogue(locale)
    wanted = [*manage_pages.PAGE_MESSAGES, *pupil_pages.PAGE_MESSAGES, *slot_pages.PAGE_MESSAGES]
    wanted += [*SCHOOL_MESSAGES.values(), *timetable.CLASH_MESSAGES]
    missing = [m for m in wanted if not messages.get(m)]
    assert not missing, missing


async def test_the_director_registers_a_pupil_and_manages_them_from_their_page(world, inbox):
    d = await Director(world, await fresh_school(world, "pupil")).setup()
    search = await d.page("GET", "/school/pupils")
    assert f'href="/t/{d.slug}/school/pupils/new"' in search.text
    assert (await d.page("GET", "/school/pupils/new")).status_code == 200
    assert (await d.page("GET", "/school/pupils/new", d.teacher)).status_code == 403

    # Errors beside the fields, nothing written.
    empty = await d.page("POST", "/school/pupils/new", data={"national_code": "", "first_name": "Sara"})
    assert empty.status_code == 400 and 'id="pupil-code-error"' in empty.text and 'id="pupil-last-error"' in empty.text
    assert "obligatoire" in empty.text and 'value="Sara"' in empty.text
    bad = await d.page("POST", "/school/pupils/new", data={"national_code": "X1", "first_name": "S", "last_name": "A"})
    assert bad.status_code == 400 and "ce n&#39;est pas un code élève" in bad.text
    foreign_class = world.objects[OTHER]["class_id"]
    pupil = {"national_code": code(), "first_name": "Sara", "last_name": "Alaoui", "birth_date": "2011-03-14"}
    wrong_class = await d.page("POST", "/school/pupils/new", data={**pupil, "class_id": foreign_class})
    assert wrong_class.status_code == 400 and 'id="pupil-class-error"' in wrong_class.text
    assert await d.pupils() == 0  # the pupil is not written without their class

    made = await d.page("POST", "/school/pupils/new", data={**pupil, "class_id": d.class_id, "gender": "F"})
    assert made.status_code == 303, made.text
    student_id = int(made.headers["location"].split("/school/pupils/")[1].split("?")[0])
    assert made.headers["location"] == f"/t/{d.slug}/school/pupils/{student_id}?done=created"
    taken = await d.page("POST", "/school/pupils/new", data=pupil)
    assert taken.status_code == 409 and "déjà inscrit" in taken.text
    assert await d.pupils() == 1

    path = f"/school/pupils/{student_id}"
    shown = await d.page("GET", f"{path}?done=created")
    assert shown.status_code == 200 and "L&#39;élève a été inscrit." in shown.text
    assert re.search(r'id="pupil-class"><a href="[^"]+">\s*<bdi>TC-M1</bdi>', shown.text)
    assert (await d.page("GET", path, d.teacher)).status_code == 403
    assert (await d.page("GET", f"/school/pupils/{world.objects[OTHER]['student_id']}")).status_code == 404
    outsider = await world.api("GET", path, as_=f"director.{OTHER}@test.ma", tenant=OTHER)
    assert outsider.status_code == 404

    # Enrol: another school's class is refused beside the field; a class of the school moves the pupil.
    other = await d.api("POST", "/api/v1/school/classes", json={"name": "TC-M2", "level_code": "TC"})
    refused = await d.page("POST", f"{path}/enrol", data={"class_id": foreign_class})
    assert refused.status_code == 400 and 'id="enrol-class-error"' in refused.text
    assert "Choisissez une classe de cet établissement." in refused.text
    moved = await d.page("POST", f"{path}/enrol", data={"class_id": other.json()["id"]})
    assert moved.status_code == 303 and moved.headers["location"].endswith("?done=enrolled")
    assert "<bdi>TC-M2</bdi>" in (await d.page("GET", path)).text
    assert (await d.page("POST", f"{path}/enrol", d.teacher, data={"class_id": d.class_id})).status_code == 403

    # Guardians: a bad address is refused; a new address is invited, a member of the school linked at once.
    invalid = await d.page("POST", f"{path}/guardians", data={"email": "nope", "full_name": "Mme Alaoui"})
    assert invalid.status_code == 400 and 'id="guardian-email-error"' in invalid.text
    assert "ce n&#39;est pas une adresse e-mail" in invalid.text and not inbox.messages
    parent = f"parent.{secrets.token_hex(4)}@example.ma"
    invited = await d.page(
        "POST",
        f"{path}/guardians",
        data={"email": parent, "full_name": "Mme Alaoui", "relation": "mother", "locale": "fr"},
    )
    assert invited.status_code == 303 and invited.headers["location"].endswith("?done=invited")
    assert [m["To"] for m in inbox.messages] == [parent]
    assert await world.sql("SELECT locale FROM guardian_invitation WHERE email = {}", parent) == "fr"
    linked = await d.page("POST", f"{path}/guardians", data={"email": d.teacher, "full_name": "M. Alaoui"})
    assert linked.status_code == 303 and linked.headers["location"].endswith("?done=linked")
    page = await d.page("GET", path)
    assert len(re.findall(r"data-invitation=", page.text)) == 1 and len(re.findall(r"data-guardian=", page.text)) == 1
    assert parent in page.text and d.teacher in page.text

    # Transfer: an unknown code and this school are refused beside the field; another school takes the pupil.
    unknown = await d.page("POST", f"{path}/transfer", data={"to_school": "no-such-school"})
    assert unknown.status_code == 400 and "Aucun établissement n&#39;a ce code." in unknown.text
    same = await d.page("POST", f"{path}/transfer", data={"to_school": d.slug})
    assert same.status_code == 400 and 'id="transfer-school-error"' in same.text
    assert await world.sql("SELECT school_id FROM student WHERE id = {}", student_id) == d.school_id
    destination = await fresh_school(world, "pupilto")
    done = await d.page("POST", f"{path}/transfer", data={"to_school": destination})
    assert done.status_code == 200 and 'id="transfer-done"' in done.text
    assert await world.sql("SELECT school_id FROM student WHERE id = {}", student_id) == world.ids[destination]
    assert (await d.page("GET", path)).status_code == 404


async def test_the_pupil_page_speaks_arabic(world):
    d = await Director(world, await fresh_school(world, "pupilar")).setup()
    made = await d.api(
        "POST",
        "/api/v1/school/students",
        json={"national_code": code(), "first_name": "Sara", "last_name": "Alaoui", "last_name_ar": "العلوي"},
    )
    path = f"/t/{d.slug}/school/pupils/{made.json()['id']}"
    shown = await world.api("GET", f"/school/pupils/{made.json()['id']}?lang=ar", as_=d.director, tenant=d.slug)
    assert shown.status_code == 200 and 'dir="rtl"' in shown.text and "ربط ولي أمر" in shown.text, path
    refused = await world.api(
        "POST", f"/school/pupils/{made.json()['id']}/guardians?lang=ar", as_=d.director, tenant=d.slug, data={}
    )
    assert refused.status_code == 400 and "إلزامي" in refused.text


async def test_the_director_opens_a_class_from_the_classes_page(world):
    d = await Director(world, await fresh_school(world, "classes")).setup()
    home = await d.page("GET", "/")
    assert f'href="/t/{d.slug}/school/classes"' in home.text
    teacher_home = await d.page("GET", "/", d.teacher)
    assert f'href="/t/{d.slug}/school/classes"' not in teacher_home.text
    assert (await d.page("GET", "/school/classes", d.teacher)).status_code == 403
    assert (
        await d.page("POST", "/school/classes", d.teacher, data={"name": "X", "level_code": "TC"})
    ).status_code == 403

    listed = await d.page("GET", "/school/classes")
    assert listed.status_code == 200 and f'<tr data-class="{d.class_id}">' in listed.text
    assert "Tronc commun scientifique" in listed.text

    def count() -> Any:
        return world.sql("SELECT COUNT(*) FROM school_class WHERE school_id = {}", d.school_id)

    # Errors beside the fields; nothing is written.
    empty = await d.page("POST", "/school/classes", data={"name": "", "level_code": "", "capacity": "99"})
    assert empty.status_code == 400
    for field in ("class-name", "class-level", "class-capacity"):
        assert f'id="{field}-error"' in empty.text, field
    wrong_track = await d.page(
        "POST", "/school/classes", data={"name": "1BAC-9", "level_code": "1BAC", "track_code": "TCS"}
    )
    assert wrong_track.status_code == 400 and "Cette filière n&#39;existe pas à ce niveau." in wrong_track.text
    assert 'value="1BAC-9"' in wrong_track.text
    # Without the session's CSRF token the form is refused.
    cookie, _ = await world.web_session(d.director)
    forged = await world.client.post(
        f"/t/{d.slug}/school/classes",
        headers={"cookie": f"{SESSION_COOKIE}={cookie}", "accept": "text/html"},
        data={"name": "FORGED", "level_code": "TC"},
    )
    assert forged.status_code == 403
    taken = await d.page("POST", "/school/classes", data={"name": "TC-M1", "level_code": "TC"})
    assert taken.status_code == 409 and "Une classe porte déjà ce nom cette année." in taken.text
    assert await count() == 1

    made = await d.page(
        "POST", "/school/classes", data={"name": "1BAC-SM1", "level_code": "1BAC", "track_code": "SM", "capacity": "32"}
    )
    assert made.status_code == 303 and made.headers["location"] == f"/t/{d.slug}/school/classes?done=created"
    assert await count() == 2
    after = await d.page("GET", "/school/classes?done=created")
    assert (
        "La classe a été ouverte." in after.text and "1BAC-SM1" in after.text and "Sciences mathématiques" in after.text
    )
    arabic = await world.api("GET", "/school/classes?lang=ar", as_=d.director, tenant=d.slug)
    assert "الجذع المشترك" in arabic.text and "فتح القسم" in arabic.text


async def test_the_director_adds_and_removes_lessons_on_the_class_week(world):
    d = await Director(world, await fresh_school(world, "slots")).setup()
    teacher_id = await world.sql("SELECT id FROM person WHERE email = {}", d.teacher)
    second = (
        await d.api("POST", "/api/v1/school/classes", json={"name": "TC-M2", "level_code": "TC", "track_code": "TCS"})
    ).json()["id"]
    for class_id in (d.class_id, second):
        assigned = await d.api(
            "POST",
            "/api/v1/school/assignments",
            json={"teacher_id": teacher_id, "class_id": class_id, "subject_code": "MATH"},
        )
        assert assigned.status_code == 201, assigned.text
    room = (await d.api("POST", "/api/v1/school/rooms", json={"name": "Salle 12"})).json()["id"]
    path = f"/timetable/classes/{d.class_id}"

    def lessons() -> Any:
        return world.sql("SELECT COUNT(*) FROM timetable_slot WHERE school_id = {}", d.school_id)

    week = await d.page("GET", path)
    assert week.status_code == 200 and 'id="slot-form"' in week.text and 'value="MATH"' in week.text
    as_teacher = await d.page("GET", path, d.teacher)
    assert as_teacher.status_code == 200 and 'id="slot-form"' not in as_teacher.text
    lesson = {
        "weekday": "1",
        "starts_at": "08:00",
        "ends_at": "10:00",
        "subject_code": "MATH",
        "teacher_id": str(teacher_id),
        "room_id": str(room),
    }
    assert (await d.page("POST", f"{path}/slots", d.teacher, data=lesson)).status_code == 403

    # Errors beside the fields; nothing written.
    empty = await d.page("POST", f"{path}/slots", data={"starts_at": "8h"})
    assert empty.status_code == 400
    for field in ("slot-day", "slot-start", "slot-end", "slot-subject", "slot-teacher"):
        assert f'id="{field}-error"' in empty.text, field
    assert "Une heure au format HH:MM." in empty.text
    inverted = await d.page("POST", f"{path}/slots", data={**lesson, "ends_at": "07:00"})
    assert inverted.status_code == 400 and "La séance doit finir après son début." in inverted.text
    unassigned = await d.page("POST", f"{path}/slots", data={**lesson, "subject_code": "FR"})
    assert unassigned.status_code == 400 and 'id="slot-teacher-error"' in unassigned.text
    assert await lessons() == 0

    added = await d.page("POST", f"{path}/slots", data=lesson)
    assert added.status_code == 303 and added.headers["location"] == f"/t/{d.slug}{path}?done=added"
    assert await lessons() == 1
    shown = await d.page("GET", f"{path}?done=added")
    assert "La séance a été ajoutée." in shown.text and "Salle 12" in shown.text
    slot_id = int(re.findall(r'data-slot="(\d+)"', shown.text)[0])

    # The same teacher at an overlapping hour in the other class: the clash is named in the page.
    clash = await d.page(
        "POST", f"/timetable/classes/{second}/slots", data={**lesson, "starts_at": "09:00", "ends_at": "11:00"}
    )
    assert clash.status_code == 409
    named = re.search(r'id="slot-clash">(.*?)</p>', clash.text, re.S)
    assert named and "Conflit" in named.group(1) and "TC-M1" in named.group(1) and "08:00–10:00" in named.group(1)
    assert await lessons() == 1
    api = await d.api(
        "POST",
        "/api/v1/school/timetable",
        json={**lesson, "class_id": second, "teacher_id": teacher_id, "weekday": 1, "room_id": None},
    )
    assert api.status_code == 409 and "Clash: the teacher already teaches TC-M1 on Monday 08:00–10:00." in api.text

    # Another school's class is a 404; removing: teacher 403, the wrong class 404, the director removes it.
    foreign = world.objects[OTHER]["class_id"]
    assert (await d.page("POST", f"/timetable/classes/{foreign}/slots", data=lesson)).status_code == 404
    assert (await d.page("POST", f"{path}/slots/{slot_id}/delete", d.teacher)).status_code == 403
    assert (await d.page("POST", f"/timetable/classes/{second}/slots/{slot_id}/delete")).status_code == 404
    removed = await d.page("POST", f"{path}/slots/{slot_id}/delete")
    assert removed.status_code == 303 and removed.headers["location"].endswith("?done=removed")
    assert await lessons() == 0
