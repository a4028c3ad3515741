"""Realistic data generator: regions, provinces, schools, and everything inside the schools.

``madrasa generate --regions R --schools-per-region S --students-per-school N --seed X`` creates
``R`` new regions (slugs ``gen-r<seed>-<n>``), at least two provinces in each, ``S`` schools per
region spread over the provinces (primary schools, collèges and lycées), and fills every school
with :func:`populate_school`:

* teachers (``person`` rows without a password, e-mails ``t<nnnn>@<school-slug>.madrasa.test``),
  their teacher membership at the school and a ``staff`` row with a unique 8-digit staff number;
* rooms (one home room per class, plus laboratories, a computer room and a sports ground);
* classes of the current school year by level (and track, in a lycée) fitting the school's
  cycle, of 30 to 45 pupils — a school of fewer than 60 pupils that cannot be split that way
  gets one smaller *remainder* class (``n < 30``: a single class of ``n``; ``46 ≤ n ≤ 59``: 30
  and ``n - 30``);
* pupils with Arabic and Latin-script names, birth dates that fit their level and national codes
  (one letter and nine digits) unique across the whole database, each enrolled once;
* guardians (father and/or mother, or a tutor) with a guardianship and a parent membership at the
  school; some families have several children in the school, and in every school after the first
  at least one pupil is the sibling of a child of another school (of another region when the
  run has several), so their guardians are shared;
* a teaching assignment for every subject of every class (national ``subject_coefficient`` rows
  of the level and track, with any region or school override), and a weekly timetable without
  any clash: the lessons are placed in day × hour cells (Monday to Friday 08–12 and 14–18,
  Saturday 08–12) as a proper edge colouring of the bipartite class × teacher multigraph, which
  exists because no class or teacher needs more hours than there are cells (König); two-hour
  blocks are placed first, preferring days without the subject, and a lesson that finds no free
  common cell is placed after swapping an alternating (Kempe) chain of lessons — constructed,
  never retried at random. Rooms are given afterwards: a class's home room is its own, and a
  special room (laboratory, sports ground) is used only when it is free in all the slot's cells.

Writes are set-based: ids are allocated in bulk (PostgreSQL: ``nextval`` over
``generate_series``; SQLite: ``MAX(id) + 1`` inside the write transaction), rows are built in
Python and written per table with one ``INSERT … SELECT * FROM unnest($1::int[], …)`` per table
and batch (PostgreSQL: one bind parameter per column, through the transaction's asyncpg
connection; ``COPY`` is not allowed under forced row-level security for the application role) or
``executemany`` (SQLite). :func:`generate` commits per batch of schools (about
:data:`BATCH_PUPILS` pupils), so memory stays flat whatever the size, and reports progress after
each commit. Everything runs as the application role under ``db.scoped(Scope.everything())``:
every tenant-owned row carries the scope columns of its school, so it passes the RLS policies.

Determinism: a seed fixes every name, code and timetable in a fresh database. Pupil codes and
staff numbers come from an affine permutation of a counter (chosen by the seed; the counter starts
at the number of rows already in the table, so a second run with the same seed cannot repeat the
first one's values) and are checked against the database per batch; a value that exists is
skipped.
"""

from __future__ import annotations

import asyncio
import math
import random
import sys
import time as _time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import msgspec

from core.db import Database
from core.scope import Scope
from core.sql import SQL, ident, in_, join, slots
from core.tenancy import TenantInfo, parse_path

# --------------------------------------------------------------------------- names

# fmt: off

#: (Latin script, Arabic script)
MALE_NAMES: list[tuple[str, str]] = [
    ("Mohammed", "محمد"), ("Ahmed", "أحمد"), ("Youssef", "يوسف"), ("Amine", "أمين"), ("Hamza", "حمزة"),
    ("Omar", "عمر"), ("Ayoub", "أيوب"), ("Mehdi", "المهدي"), ("Hicham", "هشام"), ("Rachid", "رشيد"),
    ("Said", "سعيد"), ("Karim", "كريم"), ("Anas", "أنس"), ("Ilyas", "إلياس"), ("Adam", "آدم"),
    ("Yassine", "ياسين"), ("Othmane", "عثمان"), ("Zakaria", "زكرياء"), ("Ismail", "إسماعيل"),
    ("Abdellah", "عبد الله"), ("Abderrahim", "عبد الرحيم"), ("Mustapha", "مصطفى"), ("Khalid", "خالد"),
    ("Nabil", "نبيل"), ("Driss", "إدريس"), ("Jamal", "جمال"), ("Aziz", "عزيز"), ("Redouane", "رضوان"),
    ("Soufiane", "سفيان"), ("Badr", "بدر"), ("Ali", "علي"), ("Hassan", "حسن"), ("Brahim", "إبراهيم"),
    ("Noureddine", "نور الدين"), ("Tarik", "طارق"), ("Walid", "وليد"), ("Marouane", "مروان"),
    ("Reda", "رضا"), ("Saad", "سعد"), ("Imad", "عماد"), ("Abdelaziz", "عبد العزيز"), ("Lahcen", "لحسن"),
]
FEMALE_NAMES: list[tuple[str, str]] = [
    ("Fatima", "فاطمة"), ("Khadija", "خديجة"), ("Aicha", "عائشة"), ("Meryem", "مريم"), ("Salma", "سلمى"),
    ("Hajar", "هاجر"), ("Imane", "إيمان"), ("Sara", "سارة"), ("Nadia", "نادية"), ("Latifa", "لطيفة"),
    ("Zineb", "زينب"), ("Houda", "هدى"), ("Asmae", "أسماء"), ("Hanane", "حنان"), ("Loubna", "لبنى"),
    ("Samira", "سميرة"), ("Naima", "نعيمة"), ("Rajae", "رجاء"), ("Souad", "سعاد"), ("Malika", "مليكة"),
    ("Yasmine", "ياسمين"), ("Ghita", "غيثة"), ("Kawtar", "كوثر"), ("Chaimae", "شيماء"), ("Oumaima", "أميمة"),
    ("Ikram", "إكرام"), ("Wiam", "وئام"), ("Nour", "نور"), ("Hiba", "هبة"), ("Douae", "دعاء"),
    ("Rania", "رانية"), ("Safae", "صفاء"), ("Btissam", "ابتسام"), ("Karima", "كريمة"), ("Laila", "ليلى"),
    ("Najat", "نجاة"), ("Siham", "سهام"), ("Amal", "أمل"), ("Fatima Zahra", "فاطمة الزهراء"),
    ("Nisrine", "نسرين"), ("Ilham", "إلهام"), ("Mouna", "منى"),
]
FAMILY_NAMES: list[tuple[str, str]] = [
    ("Alaoui", "العلوي"), ("Bennani", "بناني"), ("Tazi", "التازي"), ("El Fassi", "الفاسي"),
    ("Idrissi", "الإدريسي"), ("Berrada", "برادة"), ("Amrani", "العمراني"), ("Benjelloun", "بنجلون"),
    ("Chraibi", "الشرايبي"), ("Sqalli", "السقلي"), ("Lahlou", "لحلو"), ("Kettani", "الكتاني"),
    ("Bennis", "بنيس"), ("Guessous", "جسوس"), ("Benkirane", "بنكيران"), ("Ouazzani", "الوزاني"),
    ("El Ouafi", "الوافي"), ("Benali", "بنعلي"), ("Ziani", "الزياني"), ("Haddad", "الحداد"),
    ("Naciri", "الناصري"), ("Mansouri", "المنصوري"), ("Cherkaoui", "الشرقاوي"), ("Filali", "الفيلالي"),
    ("Saidi", "السعيدي"), ("Bouzidi", "البوزيدي"), ("Ait Benhaddou", "آيت بنحدو"), ("Ait Ali", "آيت علي"),
    ("Oukhouya", "أوخويا"), ("Ouhammou", "أوحمو"), ("Boukhari", "البخاري"), ("Sabri", "صبري"),
    ("Karimi", "الكريمي"), ("Rahmouni", "الرحموني"), ("Belhaj", "بلحاج"), ("El Khatib", "الخطيب"),
    ("Jabri", "الجابري"), ("Hajji", "الحجي"), ("Zerouali", "الزروالي"), ("Touzani", "التوزاني"),
    ("Slaoui", "السلاوي"), ("Marrakchi", "المراكشي"), ("Soussi", "السوسي"), ("Doukkali", "الدكالي"),
    ("Rifi", "الريفي"), ("Tahiri", "الطاهري"), ("Benmoussa", "بنموسى"), ("Bouazza", "بوعزة"),
    ("El Hachimi", "الهاشمي"), ("Lamrani", "اللمراني"), ("Raji", "الراجي"), ("Moussaoui", "الموساوي"),
    ("Ennaji", "الناجي"), ("Benslimane", "بنسليمان"), ("El Omari", "العمري"), ("Chafik", "شفيق"),
    ("Daoudi", "الداودي"), ("Hilali", "الهلالي"), ("Kabbaj", "القباج"), ("Lazrak", "الأزرق"),
    ("Mernissi", "المرنيسي"), ("Sbai", "السباعي"), ("Zniber", "زنيبر"), ("Azzouzi", "العزوزي"),
]

# (name_fr, name_ar, name_en, code, provinces [(name_fr, name_ar)])
REGIONS: list[tuple[str, str, str, str, list[tuple[str, str]]]] = [
    ("Tanger-Tétouan-Al Hoceïma", "جهة طنجة تطوان الحسيمة", "Tangier-Tetouan-Al Hoceima", "01",
     [("Tanger-Assilah", "طنجة أصيلة"), ("Tétouan", "تطوان"), ("Larache", "العرائش"), ("Al Hoceïma", "الحسيمة"),
      ("Chefchaouen", "شفشاون")]),
    ("L'Oriental", "جهة الشرق", "Oriental", "02",
     [("Oujda-Angad", "وجدة أنجاد"), ("Nador", "الناظور"), ("Berkane", "بركان"), ("Taourirt", "تاوريرت")]),
    ("Fès-Meknès", "جهة فاس مكناس", "Fez-Meknes", "03",
     [("Fès", "فاس"), ("Meknès", "مكناس"), ("Taza", "تازة"), ("Ifrane", "إفران"), ("Sefrou", "صفرو")]),
    ("Béni Mellal-Khénifra", "جهة بني ملال خنيفرة", "Beni Mellal-Khenifra", "05",
     [("Béni Mellal", "بني ملال"), ("Khouribga", "خريبكة"), ("Khénifra", "خنيفرة"), ("Azilal", "أزيلال")]),
    ("Marrakech-Safi", "جهة مراكش آسفي", "Marrakesh-Safi", "07",
     [("Marrakech", "مراكش"), ("Safi", "آسفي"), ("Essaouira", "الصويرة"), ("Al Haouz", "الحوز"),
      ("El Kelâa des Sraghna", "قلعة السراغنة")]),
    ("Drâa-Tafilalet", "جهة درعة تافيلالت", "Draa-Tafilalet", "08",
     [("Errachidia", "الرشيدية"), ("Ouarzazate", "ورزازات"), ("Zagora", "زاكورة"), ("Tinghir", "تنغير"),
      ("Midelt", "ميدلت")]),
    ("Souss-Massa", "جهة سوس ماسة", "Souss-Massa", "09",
     [("Agadir Ida-Outanane", "أكادير إداوتنان"), ("Inezgane-Aït Melloul", "إنزكان آيت ملول"),
      ("Taroudant", "تارودانت"), ("Tiznit", "تيزنيت"), ("Chtouka-Aït Baha", "اشتوكة آيت باها")]),
    ("Guelmim-Oued Noun", "جهة كلميم واد نون", "Guelmim-Oued Noun", "10",
     [("Guelmim", "كلميم"), ("Tan-Tan", "طانطان"), ("Sidi Ifni", "سيدي إفني"), ("Assa-Zag", "أسا الزاك")]),
    ("Laâyoune-Sakia El Hamra", "جهة العيون الساقية الحمراء", "Laayoune-Sakia El Hamra", "11",
     [("Laâyoune", "العيون"), ("Boujdour", "بوجدور"), ("Es-Semara", "السمارة"), ("Tarfaya", "طرفاية")]),
    ("Dakhla-Oued Ed-Dahab", "جهة الداخلة وادي الذهب", "Dakhla-Oued Ed-Dahab", "12",
     [("Oued Ed-Dahab", "وادي الذهب"), ("Aousserd", "أوسرد")]),
]

#: People and places schools are named after: (Latin script, Arabic script).
NAMESAKES: list[tuple[str, str]] = [
    ("Ibn Rochd", "ابن رشد"), ("Al Farabi", "الفارابي"), ("Ibn Khaldoun", "ابن خلدون"), ("Ibn Sina", "ابن سينا"),
    ("Al Idrissi", "الإدريسي"), ("Moulay Ismail", "مولاي إسماعيل"), ("Hassan II", "الحسن الثاني"),
    ("Mohammed V", "محمد الخامس"), ("Al Massira", "المسيرة"), ("Al Wahda", "الوحدة"), ("Ibn Toufail", "ابن طفيل"),
    ("Abdelkrim Al Khattabi", "عبد الكريم الخطابي"), ("Youssef Ibn Tachfine", "يوسف بن تاشفين"),
    ("Tarik Ibn Ziad", "طارق بن زياد"), ("Al Qods", "القدس"), ("Al Andalous", "الأندلس"),
    ("Allal Al Fassi", "علال الفاسي"), ("Al Mokhtar Soussi", "المختار السوسي"), ("Ibn Al Banna", "ابن البناء"),
    ("Al Jahid", "الجاحظ"), ("Okba Ibn Nafii", "عقبة بن نافع"), ("Al Khansaa", "الخنساء"),
    ("Fatima Al Fihriya", "فاطمة الفهرية"), ("Ibn Zaidoun", "ابن زيدون"), ("Al Moutanabbi", "المتنبي"),
    ("Abou Bakr Seddik", "أبو بكر الصديق"), ("Omar Ibn Al Khattab", "عمر بن الخطاب"), ("Al Amal", "الأمل"),
    ("Annahda", "النهضة"), ("Al Fath", "الفتح"), ("Al Irfane", "العرفان"), ("Ennour", "النور"),
    ("Al Wifaq", "الوفاق"), ("Al Yassamine", "الياسمين"), ("Al Manar", "المنار"), ("Zerktouni", "الزرقطوني"),
]

# cycle: (slug word, French prefix, Arabic prefix, English suffix)
SCHOOL_KINDS: dict[str, tuple[str, str, str, str]] = {
    "primaire": ("ecole", "École", "مدرسة", "Primary School"),
    "college": ("college", "Collège", "إعدادية", "Middle School"),
    "lycee": ("lycee", "Lycée", "ثانوية", "High School"),
}
#: The order in which a region's schools take their cycle: more primary schools than lycées.
CYCLE_PATTERN = ("primaire", "college", "lycee", "primaire", "college", "primaire")

# --------------------------------------------------------------------------- school structure

MIN_CLASS, MAX_CLASS, TARGET_CLASS = 30, 45, 38
#: Pupils per commit in :func:`generate` (memory is bounded by one batch).
BATCH_PUPILS = 5000

# cycle: [(level, track, weight)]
STREAMS: dict[str, list[tuple[str, str | None, float]]] = {
    "primaire": [("1AP", None, 1.2), ("2AP", None, 1.1), ("3AP", None, 1.0), ("4AP", None, 1.0),
                 ("5AP", None, 0.95), ("6AP", None, 0.9)],
    "college": [("1AC", None, 1.1), ("2AC", None, 1.0), ("3AC", None, 0.95)],
    "lycee": [("TC", "TCS", 0.25), ("TC", "TCL", 0.15), ("1BAC", "SE", 0.13), ("1BAC", "SM", 0.05),
              ("1BAC", "LSH", 0.10), ("2BAC", "PC", 0.10), ("2BAC", "SVT", 0.10), ("2BAC", "SM", 0.04),
              ("2BAC", "LET", 0.08)],
}
LEVEL_RANK = {"1AP": 1, "2AP": 2, "3AP": 3, "4AP": 4, "5AP": 5, "6AP": 6, "1AC": 7, "2AC": 8, "3AC": 9,
              "TC": 10, "1BAC": 11, "2BAC": 12}
#: Weekly teaching load of a full-time teacher (hours), by cycle.
MAX_LOAD = {"primaire": 30, "college": 24, "lycee": 21}
#: In primary school one teacher takes the Arabic-side subjects and another the French-side ones.
PRIMARY_SPECIALITY = {"ARA": "AR", "AMZ": "AR", "EI": "AR", "HG": "AR", "ART": "AR", "EPS": "AR",
                      "FRA": "FR", "MATH": "FR", "ACT": "FR"}
GRADES = {
    "primaire": ["Professeur du primaire, 1er grade", "Professeur du primaire, 2e grade",
                 "Professeur du primaire, hors grade"],
    "college": ["Professeur du collège, 1er grade", "Professeur du collège, 2e grade",
                "Professeur du collège, hors grade"],
    "lycee": ["Professeur du qualifiant, 1er grade", "Professeur du qualifiant, 2e grade",
              "Professeur agrégé"],
}
# special rooms: (name, capacity, subjects), one of each per this many classes (at least one)
SPECIAL_ROOMS: dict[str, list[tuple[str, int, tuple[str, ...], int]]] = {
    "primaire": [("Terrain de sport", 200, ("EPS",), 12), ("Salle polyvalente", 45, ("ART", "ACT"), 12)],
    "college": [("Laboratoire de physique", 40, ("PC",), 8), ("Laboratoire de SVT", 40, ("SVT",), 8),
                ("Salle informatique", 30, ("INFO",), 12), ("Terrain de sport", 200, ("EPS",), 10)],
    "lycee": [("Laboratoire de physique", 40, ("PC",), 8), ("Laboratoire de SVT", 40, ("SVT",), 8),
              ("Salle informatique", 30, ("INFO",), 12), ("Terrain de sport", 200, ("EPS",), 10)],
}

# fmt: on

# --------------------------------------------------------------------------- the weekly grid

PERIODS_PER_DAY = 8
DAYS = 6  # Monday … Saturday
PERIOD_TIMES = [
    (time(8), time(9)),
    (time(9), time(10)),
    (time(10), time(11)),
    (time(11), time(12)),
    (time(14), time(15)),
    (time(15), time(16)),
    (time(16), time(17)),
    (time(17), time(18)),
]
#: Saturday has lessons in the morning only.
VALID_CELLS = [d * PERIODS_PER_DAY + p for d in range(DAYS) for p in range(PERIODS_PER_DAY) if d < 5 or p < 4]
VALID = sum(1 << c for c in VALID_CELLS)
CELLS = len(VALID_CELLS)
#: Cells where a two-hour block may start (both hours in the same half-day).
PAIR_STARTS = sum(1 << c for c in VALID_CELLS if c % PERIODS_PER_DAY in (0, 1, 2, 4, 5, 6) and c + 1 in VALID_CELLS)
DAY_CELLS = [sum(1 << c for c in VALID_CELLS if c // PERIODS_PER_DAY == d) for d in range(DAYS)]
#: Cells of any set of days (bit d = day d).
DAYS_MASK = [sum(DAY_CELLS[d] for d in range(DAYS) if bits >> d & 1) for bits in range(1 << DAYS)]

# --------------------------------------------------------------------------- tables written

_SCOPE = [("region_id", "int"), ("province_id", "int"), ("school_id", "int")]
COLUMNS: dict[str, list[tuple[str, str]]] = {
    "tenant": [
        ("id", "int"),
        ("kind", "text"),
        ("parent_id", "int"),
        ("path", "text"),
        ("slug", "text"),
        ("code", "text"),
        ("name_ar", "text"),
        ("name_fr", "text"),
        ("name_en", "text"),
        ("status", "text"),
        ("default_locale", "text"),
        ("created_at", "timestamptz"),
    ],
    "person": [
        ("id", "int"),
        ("email", "text"),
        ("full_name", "text"),
        ("full_name_ar", "text"),
        ("locale", "text"),
        ("active", "bool"),
        ("created_at", "timestamptz"),
    ],
    "membership": [("person_id", "int"), ("role", "text"), ("tenant_id", "int"), ("created_at", "timestamptz")],
    "staff": [*_SCOPE, ("person_id", "int"), ("staff_number", "text"), ("grade", "text")],
    "room": [("id", "int"), *_SCOPE, ("name", "text"), ("capacity", "int")],
    "school_class": [
        ("id", "int"),
        *_SCOPE,
        ("school_year_id", "int"),
        ("level_code", "text"),
        ("track_code", "text"),
        ("name", "text"),
        ("homeroom_teacher_id", "int"),
        ("capacity", "int"),
    ],
    "student": [
        ("id", "int"),
        *_SCOPE,
        ("national_code", "text"),
        ("first_name", "text"),
        ("last_name", "text"),
        ("first_name_ar", "text"),
        ("last_name_ar", "text"),
        ("birth_date", "date"),
        ("gender", "text"),
        ("created_at", "timestamptz"),
    ],
    "enrolment": [
        *_SCOPE,
        ("student_id", "int"),
        ("class_id", "int"),
        ("school_year_id", "int"),
        ("starts_on", "date"),
        ("status", "text"),
    ],
    "guardianship": [*_SCOPE, ("student_id", "int"), ("person_id", "int"), ("relation", "text")],
    "teaching_assignment": [
        *_SCOPE,
        ("person_id", "int"),
        ("class_id", "int"),
        ("subject_code", "text"),
        ("school_year_id", "int"),
    ],
    "timetable_slot": [
        *_SCOPE,
        ("class_id", "int"),
        ("subject_code", "text"),
        ("teacher_id", "int"),
        ("room_id", "int"),
        ("weekday", "int"),
        ("starts_at", "time"),
        ("ends_at", "time"),
        ("valid_from", "date"),
        ("valid_to", "date"),
    ],
}
CODE_COLUMN = [name for name, _ in COLUMNS["student"]].index("national_code")
STAFF_NUMBER_COLUMN = [name for name, _ in COLUMNS["staff"]].index("staff_number")
#: A column of values as one PostgreSQL array parameter, per column kind of :data:`COLUMNS`.
_ARRAY_OF = {
    "bool": "{}::bool[]",
    "date": "{}::date[]",
    "int": "{}::int[]",
    "text": "{}::text[]",
    "time": "{}::time[]",
    "timestamptz": "{}::timestamptz[]",
}
#: Rows per INSERT statement (PostgreSQL arrays) or executemany call (SQLite).
CHUNK = 20_000


class GenerateStats(msgspec.Struct, kw_only=True):
    """What a run wrote."""

    regions: list[str]
    schools: int
    #: Rows written per table.
    counts: dict[str, int]
    rows: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        """Throughput of the run."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0


class SchoolResult(msgspec.Struct, kw_only=True):
    """What :func:`populate_school` created in one school."""

    school_id: int
    cycle: str
    class_ids: list[int]
    teacher_ids: list[int]
    student_ids: list[int]
    counts: dict[str, int]


# --------------------------------------------------------------------------- helpers


def ascii_slug(text: str) -> str:
    """``"Fatima Zahra"`` → ``"fatimazahra"`` (for e-mail addresses)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def ascii_name(text: str) -> str:
    """The name without accents (English names of places)."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _bits(mask: int) -> list[int]:
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


class _Permutation:
    """Distinct values ``offset + (a·n + b) mod m`` for n = start, start+1, … (a bijection on [0, m))."""

    def __init__(self, rng: random.Random, modulus: int, offset: int, start: int) -> None:
        self.modulus = modulus
        self.offset = offset
        a = rng.randrange(modulus // 10, modulus)
        while math.gcd(a, modulus) != 1:
            a += 1
        self.a = a
        self.b = rng.randrange(modulus)
        self.n = start

    def next(self) -> int:
        if self.n >= self.modulus:
            raise RuntimeError("the code space of this run is exhausted")
        value = self.offset + (self.a * self.n + self.b) % self.modulus
        self.n += 1
        return value


def class_sizes(pupils: int, rng: random.Random) -> list[int]:
    """Sizes of a school's classes: 30–45 each, except one remainder class in schools under 60 pupils."""
    if pupils <= 0:
        return []
    if pupils <= MAX_CLASS:
        return [pupils]
    if pupils < 2 * MIN_CLASS:
        return [MIN_CLASS, pupils - MIN_CLASS]
    low, high = math.ceil(pupils / MAX_CLASS), pupils // MIN_CLASS
    k = min(max(round(pupils / TARGET_CLASS), low), high)
    base, extra = divmod(pupils, k)
    sizes = [base + 1] * extra + [base] * (k - extra)
    for _ in range(2 * k):
        i, j, step = rng.randrange(k), rng.randrange(k), rng.randint(1, 3)
        if i != j and sizes[i] + step <= MAX_CLASS and sizes[j] - step >= MIN_CLASS:
            sizes[i] += step
            sizes[j] -= step
    return sizes


def apportion(weights: Sequence[float], k: int, rng: random.Random) -> list[int]:
    """Split ``k`` items by weight (largest remainders, ties broken by the generator)."""
    total = sum(weights)
    raw = [w * k / total for w in weights]
    counts = [int(r) for r in raw]
    keys = {i: (-(raw[i] - counts[i]), rng.random()) for i in range(len(weights))}
    for i in sorted(range(len(weights)), key=keys.__getitem__)[: k - sum(counts)]:
        counts[i] += 1
    return counts


def school_cycle(school: TenantInfo) -> str:
    """A school's cycle, from its slug or French name (``lycee…``, ``college…``, else primary)."""
    words = school.slug.split("-") + [ascii_slug(w) for w in school.name_fr.split(" ")[:1]]
    for cycle in ("lycee", "college"):
        if cycle in words:
            return cycle
    return "primaire"


# --------------------------------------------------------------------------- timetable


def build_timetable(
    lessons: Sequence[Sequence[tuple[str, int, int]]], teachers: int, rng: random.Random
) -> list[dict[int, tuple[str, int]]]:
    """Place every class's weekly hours in the grid; returns per class ``{cell: (subject, teacher)}``.

    ``lessons[c]`` lists ``(subject, teacher index, hours)`` of class ``c``. No class and no teacher
    is ever in two places in the same cell. Raises ``ValueError`` when a class or a teacher needs
    more hours than the grid has cells (the only case without a solution).
    """
    classes = len(lessons)
    for c, items in enumerate(lessons):
        if sum(h for _, _, h in items) > CELLS:
            raise ValueError(f"class {c} needs more than {CELLS} hours a week")
    load = [0] * teachers
    for items in lessons:
        for _, t, h in items:
            load[t] += h
    if any(h > CELLS for h in load):
        raise ValueError(f"a teacher would teach more than {CELLS} hours a week")
    cmask = [0] * classes
    tmask = [0] * teachers
    cgrid: list[dict[int, tuple[str, int]]] = [{} for _ in range(classes)]
    tgrid: list[dict[int, int]] = [{} for _ in range(teachers)]
    sdays: list[dict[str, int]] = [{} for _ in range(classes)]

    def place(c: int, s: str, t: int, cell: int) -> None:
        bit = 1 << cell
        cmask[c] |= bit
        tmask[t] |= bit
        cgrid[c][cell] = (s, t)
        tgrid[t][cell] = c
        sdays[c][s] = sdays[c].get(s, 0) | 1 << (cell // PERIODS_PER_DAY)

    def unplace(c: int, t: int, cell: int) -> None:
        bit = ~(1 << cell)
        cmask[c] &= bit
        tmask[t] &= bit
        del cgrid[c][cell]
        del tgrid[t][cell]

    def kempe(c: int, s: str, t: int) -> None:
        # a: free for the class, b: free for the teacher; swap the a/b chain starting at the teacher.
        a = _bits(VALID & ~cmask[c])[0]
        b = _bits(VALID & ~tmask[t])[0]
        if not tmask[t] >> a & 1:
            place(c, s, t, a)
            return
        if not cmask[c] >> b & 1:
            place(c, s, t, b)
            return
        chain: list[tuple[int, str, int, int]] = []
        vertex, on_teacher, colour = t, True, a
        while True:
            if on_teacher:
                klass = tgrid[vertex].get(colour)
                if klass is None:
                    break
                chain.append((klass, cgrid[klass][colour][0], vertex, colour))
                vertex = klass
            else:
                entry = cgrid[vertex].get(colour)
                if entry is None:
                    break
                chain.append((vertex, entry[0], entry[1], colour))
                vertex = entry[1]
            on_teacher = not on_teacher
            colour = b if colour == a else a
        for klass, _, teacher, colour in chain:
            unplace(klass, teacher, colour)
        for klass, subject, teacher, colour in chain:
            place(klass, subject, teacher, b if colour == a else a)
        place(c, s, t, a)

    pairs: list[tuple[int, str, int]] = []
    singles: list[tuple[int, str, int]] = []
    for c, items in enumerate(lessons):
        for subject, t, hours in items:
            pairs += [(c, subject, t)] * (hours // 2)
            if hours % 2:
                singles.append((c, subject, t))
    rng.shuffle(pairs)
    rng.shuffle(singles)
    for c, s, t in pairs:
        free = VALID & ~(cmask[c] | tmask[t])
        starts = free & (free >> 1) & PAIR_STARTS
        if not starts:
            singles += [(c, s, t), (c, s, t)]
            continue
        preferred = starts & ~DAYS_MASK[sdays[c].get(s, 0)]
        cell = rng.choice(_bits(preferred or starts))
        place(c, s, t, cell)
        place(c, s, t, cell + 1)
    for c, s, t in singles:
        free = VALID & ~(cmask[c] | tmask[t])
        if not free:
            kempe(c, s, t)
            continue
        preferred = free & ~DAYS_MASK[sdays[c].get(s, 0)]
        place(c, s, t, rng.choice(_bits(preferred or free)))
    return cgrid


def slots_of(grid: dict[int, tuple[str, int]]) -> list[tuple[int, int, int, str, int]]:
    """Merge a class's hours into slots: ``(weekday 1–6, first period, hours, subject, teacher)``.

    Consecutive hours of the same subject and teacher in the same half-day make one slot of at
    most two hours.
    """
    out: list[tuple[int, int, int, str, int]] = []
    for day in range(DAYS):
        period = 0
        while period < PERIODS_PER_DAY:
            entry = grid.get(day * PERIODS_PER_DAY + period)
            if entry is None:
                period += 1
                continue
            length = 1
            if period not in (3, 7) and grid.get(day * PERIODS_PER_DAY + period + 1) == entry:
                length = 2
            out.append((day + 1, period, length, entry[0], entry[1]))
            period += length
    return out


# --------------------------------------------------------------------------- the run


class _Family:
    __slots__ = ("guardians", "last", "last_ar")

    def __init__(self, last: str, last_ar: str, guardians: tuple[tuple[int, str], ...]) -> None:
        self.last = last
        self.last_ar = last_ar
        self.guardians = guardians


@dataclass
class _Pending:
    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=lambda: {t: [] for t in COLUMNS})

    def clear(self) -> None:
        for rows in self.rows.values():
            rows.clear()


class GeneratorRun:
    """State shared by the schools of one run: reference data, id and code allocation, the sibling pool."""

    #: Families kept for siblings in later schools (bounded: memory stays flat).
    POOL_SIZE = 4000

    def __init__(self, db: Database, seed: int, *, guardian_domain: str) -> None:
        self.db = db
        self.seed = seed
        self.rng = random.Random(seed)
        self.guardian_domain = guardian_domain
        self.now = datetime.now(UTC)
        self.year: dict[str, Any] = {}
        self.coefficient_rows: list[tuple[int | None, str, str | None, str, float]] = []
        self.pool: list[_Family] = []
        self.counts: dict[str, int] = {t: 0 for t in COLUMNS}
        self.pending = _Pending()
        self.guardian_seq = 0
        self.letter = "A"
        self.codes: _Permutation | None = None
        self.staff_numbers: _Permutation | None = None
        self._sequences: dict[str, str] = {}
        self._next_id: dict[str, int] = {}
        self._id_tx: Any = None

    @classmethod
    async def start(cls, db: Database, seed: int, *, guardian_domain: str | None = None) -> GeneratorRun:
        """Read what the run needs (inside a transaction with the platform scope)."""
        from core.school.service import current_year

        run = cls(db, seed, guardian_domain=guardian_domain or f"parents-{seed}.madrasa.test")
        run.year = await current_year(db)
        rows = await db.fetch(
            "SELECT tenant_id, level_code, track_code, subject_code, weekly_hours FROM subject_coefficient"
        )
        run.coefficient_rows = [
            (r["tenant_id"], r["level_code"], r["track_code"], r["subject_code"], float(r["weekly_hours"]))
            for r in rows
        ]
        students = int(await db.fetchval("SELECT COUNT(*) FROM student") or 0)
        staff = int(await db.fetchval("SELECT COUNT(*) FROM staff") or 0)
        codes_rng = random.Random(f"codes:{seed}")
        run.letter = codes_rng.choice("ABCDEFGHKLMNPRTUVW")
        run.codes = _Permutation(codes_rng, 10**9, 0, students)
        run.staff_numbers = _Permutation(codes_rng, 9 * 10**7, 10**7, staff)
        if db.dialect == "postgres":
            for table in ("tenant", "person", "student", "school_class", "room"):
                run._sequences[table] = await db.fetchval("SELECT pg_get_serial_sequence({}, 'id')", table)
        return run

    # -- ids and codes -------------------------------------------------------------------------

    def _connection(self) -> Any:
        tx = self.db.engine.current_transaction.get()
        if tx is None:
            raise RuntimeError("the generator writes inside a transaction: use db.scoped(Scope.everything())")
        return tx.connection

    async def take_ids(self, wants: dict[str, int]) -> dict[str, Sequence[int]]:
        """Fresh ids for rows about to be inserted, per table."""
        wants = {t: n for t, n in wants.items() if n > 0}
        out: dict[str, Sequence[int]] = {}
        if not wants:
            return out
        if self.db.dialect == "postgres":
            self._connection()  # inside the transaction
            arrays = [
                SQL(
                    "ARRAY(SELECT nextval({}::text::regclass) FROM generate_series(1, {}::int)) AS {}",
                    self._sequences[table],
                    n,
                    ident(table),
                )
                for table, n in wants.items()
            ]
            row = await self.db.fetchrow(SQL("SELECT {}", join(", ", arrays)))
            assert row is not None
            return {table: list(row[table]) for table in wants}
        tx = self.db.engine.current_transaction.get()
        if tx is None:
            raise RuntimeError("the generator writes inside a transaction")
        if tx is not self._id_tx:  # SQLite: MAX(id) + 1 under this write transaction's lock
            self._id_tx = tx
            self._next_id = {}
        for table, n in wants.items():
            if table not in self._next_id:
                top = await self.db.fetchval(SQL("SELECT COALESCE(MAX(id), 0) FROM {}", ident(table)))
                self._next_id[table] = int(top) + 1
            start = self._next_id[table]
            self._next_id[table] = start + n
            out[table] = range(start, start + n)
        return out

    def next_code(self) -> str:
        assert self.codes is not None
        return f"{self.letter}{self.codes.next():09d}"

    def next_staff_number(self) -> str:
        assert self.staff_numbers is not None
        return f"{self.staff_numbers.next():08d}"

    async def _taken(self, table: str, column: str, values: list[str]) -> set[str]:
        if not values:
            return set()
        if self.db.dialect == "postgres":
            rows = await self.db.fetch(
                SQL(
                    "SELECT {} AS v FROM {} WHERE {} = ANY({}::text[])",
                    ident(column),
                    ident(table),
                    ident(column),
                    values,
                )
            )
            return {r["v"] for r in rows}
        taken: set[str] = set()
        for i in range(0, len(values), 900):
            rows = await self.db.fetch(
                SQL(
                    "SELECT {} AS v FROM {} WHERE {} IN {}",
                    ident(column),
                    ident(table),
                    ident(column),
                    in_(values[i : i + 900]),
                )
            )
            taken.update(r["v"] for r in rows)
        return taken

    async def _dedupe(self, table: str, column: str, index: int, fresh: Callable[[], str]) -> None:
        """Replace values of the pending rows that already exist in the database."""
        rows = self.pending.rows[table]
        todo = list(range(len(rows)))
        while todo:
            taken = await self._taken(table, column, [rows[i][index] for i in todo])
            todo = [i for i in todo if rows[i][index] in taken]
            for i in todo:
                row = rows[i]
                rows[i] = (*row[:index], fresh(), *row[index + 1 :])

    # -- writing -------------------------------------------------------------------------------

    async def flush(self) -> int:
        """Write the pending rows of every table (inside the caller's transaction); returns how many."""
        await self._dedupe("student", "national_code", CODE_COLUMN, self.next_code)
        await self._dedupe("staff", "staff_number", STAFF_NUMBER_COLUMN, self.next_staff_number)
        written = 0
        for table, rows in self.pending.rows.items():
            if rows:
                await write_rows(self.db, table, rows)
                self.counts[table] += len(rows)
                written += len(rows)
        self.pending.clear()
        return written

    def add_to_pool(self, families: Iterable[_Family]) -> None:
        """Offer a school's families to later schools (siblings elsewhere); the pool stays bounded."""
        for family in families:
            if len(self.pool) < self.POOL_SIZE:
                self.pool.append(family)
            else:
                self.pool[self.rng.randrange(self.POOL_SIZE)] = family

    def hours(self, school: TenantInfo, level: str, track: str | None) -> list[tuple[str, int]]:
        """Subjects and weekly hours of a level (and track): national rows with any region/school override."""
        best: dict[str, tuple[int, float]] = {}
        rank = {None: 0, school.region_id: 1, school.id: 2}
        for tenant_id, lvl, trk, subject, hours in self.coefficient_rows:
            if lvl != level or trk != track or tenant_id not in rank:
                continue
            if subject not in best or best[subject][0] < rank[tenant_id]:
                best[subject] = (rank[tenant_id], hours)
        return [(s, max(1, int(h + 0.5))) for s, (_, h) in sorted(best.items()) if h > 0]


async def write_rows(db: Database, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert rows (tuples in :data:`COLUMNS` order) set-based, in chunks, inside the open transaction."""
    columns = COLUMNS[table]
    tx = db.engine.current_transaction.get()
    if tx is None:
        raise RuntimeError("write_rows needs an open transaction")
    names = join(", ", [ident(name) for name, _ in columns])
    if db.dialect == "postgres":
        # One statement per chunk: every column travels as one array parameter.
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            arrays = join(
                ", ",
                [
                    SQL(_ARRAY_OF[kind], list(col))
                    for (_, kind), col in zip(columns, zip(*chunk, strict=True), strict=True)
                ],
            )
            await db.execute(SQL("INSERT INTO {} ({}) SELECT * FROM unnest({})", ident(table), names, arrays))
        return
    statement = SQL("INSERT INTO {} ({}) VALUES {}", ident(table), names, slots(len(columns)))
    for start in range(0, len(rows), CHUNK):
        await db.executemany(statement, rows[start : start + CHUNK])


# --------------------------------------------------------------------------- one school


def _person_name(rng: random.Random, gender: str) -> tuple[str, str]:
    return rng.choice(MALE_NAMES if gender == "M" else FEMALE_NAMES)


async def populate_school(
    db: Database,
    school: TenantInfo | dict[str, Any],
    rng: random.Random,
    students: int,
    *,
    run: GeneratorRun | None = None,
    cycle: str | None = None,
    teachers: Sequence[tuple[int, str]] = (),
    fresh: bool = False,
    flush: bool = True,
) -> SchoolResult:
    """Fill one existing school: teachers, rooms, classes, pupils, guardians, assignments, timetable.

    ``school`` is a :class:`TenantInfo` or a ``tenant`` row. ``teachers`` are existing persons who
    take the first teaching post of a speciality (a subject code; ``"AR"``/``"FR"`` in primary
    school); they get a teacher membership and a staff row if they lack them. ``fresh`` says the
    school was just created (no earlier generated teachers to number after). Runs inside the
    caller's transaction if one is open (it must have the platform scope), else in its own.
    """
    info = school if isinstance(school, TenantInfo) else tenant_info(school)
    if info.kind != "school":
        raise ValueError(f"{info.slug} is not a school")
    if not db.in_transaction():
        async with db.scoped(Scope.everything()):
            return await populate_school(
                db, info, rng, students, run=run, cycle=cycle, teachers=teachers, fresh=fresh, flush=flush
            )
    if run is None:
        run = await GeneratorRun.start(db, rng.randrange(2**31), guardian_domain=f"parents.{info.slug}.madrasa.test")
    offset = 0
    taken: set[str] = set()
    if not fresh:  # number after what the school already has: teachers' e-mails, class and room names
        offset = int(
            await db.fetchval("SELECT COUNT(*) FROM person WHERE email LIKE {}", f"t%@{info.slug}.madrasa.test") or 0
        )
        rows = await db.fetch(
            "SELECT 'class:' || name AS name FROM school_class WHERE school_id = {} AND school_year_id = {} "
            "UNION SELECT 'room:' || name AS name FROM room WHERE school_id = {}",
            info.id,
            run.year["id"],
            info.id,
        )
        taken = {r["name"] for r in rows}
    result = await _plan_school(db, run, info, rng, students, cycle or school_cycle(info), teachers, offset, taken)
    if flush:
        await run.flush()
    return result


def tenant_info(row: dict[str, Any]) -> TenantInfo:
    """A :class:`TenantInfo` from a ``tenant`` row (``path`` as stored, ``"1/2/7/"``, or a tuple)."""
    data = {
        "display_name": None,
        "logo_key": None,
        "primary_color": "#0b5d3b",
        "secondary_color": "#c1272d",
        "code": None,
        "status": "active",
        "default_locale": "fr",
        "name_ar": "",
        "name_en": "",
        "name_fr": "",
        **row,
    }
    if isinstance(data["path"], str):
        data["path"] = parse_path(data["path"])
    return msgspec.convert({k: data[k] for k in TenantInfo.__struct_fields__ if k in data}, TenantInfo, strict=False)


async def _plan_school(
    db: Database,
    run: GeneratorRun,
    school: TenantInfo,
    rng: random.Random,
    pupils: int,
    cycle: str,
    extra_teachers: Sequence[tuple[int, str]],
    teacher_offset: int,
    taken: set[str],
) -> SchoolResult:
    scope = (school.region_id, school.province_id, school.id)
    year_id = run.year["id"]
    starts_on, ends_on = run.year["starts_on"], run.year["ends_on"]
    now = run.now
    pending = run.pending.rows

    # classes: sizes, then streams (level, track) by weight
    sizes = class_sizes(pupils, rng)
    streams = STREAMS[cycle]
    per_stream = apportion([w for _, _, w in streams], len(sizes), rng)
    class_streams: list[tuple[str, str | None]] = []
    for (level, track, _), n in zip(streams, per_stream, strict=True):
        class_streams += [(level, track)] * n
    class_names: list[str] = []
    numbering: dict[tuple[str, str | None], int] = {}
    for level, track in class_streams:
        while True:
            numbering[(level, track)] = n = numbering.get((level, track), 0) + 1
            if track is None:
                name = f"{level}-{n}"
            elif level == "TC":
                name = f"{track}-{n}"
            else:
                name = f"{level}-{track}-{n}"
            if f"class:{name}" not in taken:
                break
        class_names.append(name)
    subjects = [run.hours(school, level, track) for level, track in class_streams]

    # teaching posts: per speciality, whole classes packed first-fit up to the cycle's load
    def speciality(subject: str) -> str:
        return PRIMARY_SPECIALITY.get(subject, subject) if cycle == "primaire" else subject

    units: dict[str, list[tuple[int, int]]] = {}
    for c, items in enumerate(subjects):
        per: dict[str, int] = {}
        for subject, hours in items:
            per[speciality(subject)] = per.get(speciality(subject), 0) + hours
        for sp, hours in per.items():
            units.setdefault(sp, []).append((c, hours))
    posts: list[tuple[str, int]] = []  # (speciality, remaining hours)
    post_of: dict[tuple[int, str], int] = {}  # (class, speciality) -> post index
    existing = {sp: pid for pid, sp in extra_teachers}
    existing_posts: dict[int, int] = {}  # post index -> existing person id
    limit = MAX_LOAD[cycle]
    for sp in sorted(units):
        first = len(posts)
        if sp in existing:
            existing_posts[len(posts)] = existing[sp]
            posts.append((sp, limit))
        for c, hours in units[sp]:
            for p in range(first, len(posts)):
                if posts[p][1] >= hours:
                    posts[p] = (sp, posts[p][1] - hours)
                    break
            else:
                p = len(posts)
                posts.append((sp, limit - hours))
            post_of[(c, sp)] = p
    new_posts = [p for p in range(len(posts)) if p not in existing_posts]

    # pupils and their families
    n_pupils = sum(sizes)
    same = round(0.08 * n_pupils) if n_pupils > 1 else 0
    cross = max(1, round(0.05 * n_pupils)) if run.pool and n_pupils > 1 else 0
    special = rng.sample(range(n_pupils), min(n_pupils, same + cross))
    cross_at = set(special[:cross])
    same_at = set(special[cross:])
    kinds = ["cross" if i in cross_at else "same" if i in same_at else "new" for i in range(n_pupils)]
    new_families = kinds.count("new")
    family_plans: list[list[tuple[str, str, str, str, str, str]]] = []  # per new family: guardians
    family_names: list[tuple[str, str]] = []
    new_guardians = 0
    for _ in range(new_families):
        last, last_ar = rng.choice(FAMILY_NAMES)
        members: list[tuple[str, str, str, str, str, str]] = []  # relation, first, last, first_ar, last_ar, g
        if rng.random() < 0.9:
            first, first_ar = _person_name(rng, "M")
            members.append(("father", first, last, first_ar, last_ar, "M"))
        if rng.random() < 0.7 or not members:
            if members or rng.random() < 0.7:
                first, first_ar = _person_name(rng, "F")
                m_last, m_last_ar = rng.choice(FAMILY_NAMES)
                members.append(("mother", first, m_last, first_ar, m_last_ar, "F"))
            else:
                first, first_ar = _person_name(rng, "M")
                members.append(("guardian", first, last, first_ar, last_ar, "M"))
        family_plans.append(members)
        family_names.append((last, last_ar))
        new_guardians += len(members)

    # special rooms
    def room_name(base: str, numbered: bool) -> str:
        k = 0
        while True:
            k += 1
            name = f"{base} {k}" if numbered or k > 1 else base
            if f"room:{name}" not in taken:
                taken.add(f"room:{name}")
                return name

    room_plan: list[tuple[str, int]] = []
    number = 100
    for _ in sizes:  # home rooms: "Salle 101", "Salle 102", …
        number += 1
        while f"room:Salle {number}" in taken:
            number += 1
        room_plan.append((f"Salle {number}", 45))
    special_rooms: dict[str, list[int]] = {}
    for base, capacity, room_subjects, per_classes in SPECIAL_ROOMS[cycle]:
        if not any(s in room_subjects for items in subjects for s, _ in items):
            continue
        count = max(1, len(sizes) // per_classes)
        for _ in range(count):
            index = len(room_plan)
            room_plan.append((room_name(base, count > 1), capacity))
            for s in room_subjects:
                special_rooms.setdefault(s, []).append(index)

    ids = await run.take_ids(
        {
            "person": len(new_posts) + new_guardians,
            "student": n_pupils,
            "school_class": len(sizes),
            "room": len(room_plan),
        }
    )
    person_ids = iter(ids.get("person", ()))
    class_ids = list(ids.get("school_class", ()))
    room_ids = list(ids.get("room", ()))
    student_ids = list(ids.get("student", ()))

    # teachers
    post_person: list[int] = [0] * len(posts)
    grades = GRADES[cycle]
    for n, p in enumerate(new_posts, start=teacher_offset + 1):
        pid = next(person_ids)
        post_person[p] = pid
        gender = "F" if rng.random() < 0.55 else "M"
        first, first_ar = _person_name(rng, gender)
        last, last_ar = rng.choice(FAMILY_NAMES)
        pending["person"].append(
            (
                pid,
                f"t{n:04d}@{school.slug}.madrasa.test",
                f"{first} {last}",
                f"{first_ar} {last_ar}",
                "ar" if rng.random() < 0.5 else "fr",
                True,
                now,
            )
        )
        pending["membership"].append((pid, "teacher", school.id, now))
        pending["staff"].append((*scope, pid, run.next_staff_number(), rng.choice(grades)))
    for p, pid in existing_posts.items():
        post_person[p] = pid
    if existing_posts:
        await _adopt_teachers(db, run, school, list(existing_posts.values()), rng.choice(grades))

    # rooms and classes
    for rid, (name, capacity) in zip(room_ids, room_plan, strict=True):
        pending["room"].append((rid, *scope, name, capacity))
    for c, (level, track) in enumerate(class_streams):
        main = max(subjects[c], key=lambda item: item[1])[0]
        homeroom = post_person[post_of[(c, speciality(main))]]
        pending["school_class"].append((class_ids[c], *scope, year_id, level, track, class_names[c], homeroom, 45))
        for subject, _ in subjects[c]:
            pending["teaching_assignment"].append(
                (*scope, post_person[post_of[(c, speciality(subject))]], class_ids[c], subject, year_id)
            )

    # families, pupils, enrolments, guardianships, parent memberships
    families: list[_Family] = []
    for members, (last, last_ar) in zip(family_plans, family_names, strict=True):
        guardians = []
        for relation, first, g_last, first_ar, g_last_ar, _ in members:
            pid = next(person_ids)
            run.guardian_seq += 1
            email = f"{ascii_slug(first)}.{ascii_slug(g_last)}.{run.guardian_seq}@{run.guardian_domain}"
            locale = "ar" if rng.random() < 0.6 else "fr"
            pending["person"].append((pid, email, f"{first} {g_last}", f"{first_ar} {g_last_ar}", locale, True, now))
            guardians.append((pid, relation))
        families.append(_Family(last, last_ar, tuple(guardians)))
    members_here: set[int] = set()
    start_year = starts_on.year
    new_iter = iter(families)
    pupil = 0
    for c, size in enumerate(sizes):
        level = class_streams[c][0]
        for _ in range(size):
            kind = kinds[pupil]
            if kind == "new":
                family = next(new_iter)
            elif kind == "same" and families:
                family = rng.choice(families)
            elif kind == "cross" and run.pool:
                family = rng.choice(run.pool)
            else:
                family = rng.choice(families) if families else rng.choice(run.pool)
            sid = student_ids[pupil]
            gender = "F" if rng.random() < 0.5 else "M"
            first, first_ar = _person_name(rng, gender)
            age = LEVEL_RANK[level] + 5 + (1 if rng.random() < 0.15 else 0)
            birth = date(start_year - age - 1, 9, 1) + timedelta(days=rng.randrange(365))
            pending["student"].append(
                (sid, *scope, run.next_code(), first, family.last, first_ar, family.last_ar, birth, gender, now)
            )
            pending["enrolment"].append((*scope, sid, class_ids[c], year_id, starts_on, "active"))
            for pid, relation in family.guardians:
                pending["guardianship"].append((*scope, sid, pid, relation))
                if pid not in members_here:
                    members_here.add(pid)
                    pending["membership"].append((pid, "parent", school.id, now))
            pupil += 1
    run.add_to_pool(families)

    # timetable
    lessons = [[(s, post_of[(c, speciality(s))], h) for s, h in items] for c, items in enumerate(subjects)]
    grids = build_timetable(lessons, len(posts), rng)
    room_busy = [0] * len(room_plan)
    for c, grid in enumerate(grids):
        for weekday, period, length, subject, post in slots_of(grid):
            cells = ((1 << length) - 1) << ((weekday - 1) * PERIODS_PER_DAY + period)
            room = c  # the class's home room
            for candidate in special_rooms.get(subject, ()):
                if not room_busy[candidate] & cells:
                    room = candidate
                    break
            room_busy[room] |= cells
            pending["timetable_slot"].append(
                (
                    *scope,
                    class_ids[c],
                    subject,
                    post_person[post],
                    room_ids[room],
                    weekday,
                    PERIOD_TIMES[period][0],
                    PERIOD_TIMES[period + length - 1][1],
                    starts_on,
                    ends_on,
                )
            )
    counts = {
        "person": len(new_posts) + new_guardians,
        "student": n_pupils,
        "school_class": len(sizes),
        "room": len(room_plan),
    }
    return SchoolResult(
        school_id=school.id,
        cycle=cycle,
        class_ids=class_ids,
        teacher_ids=post_person,
        student_ids=student_ids,
        counts=counts,
    )


async def _adopt_teachers(db: Database, run: GeneratorRun, school: TenantInfo, people: list[int], grade: str) -> None:
    """Give existing persons who teach here a teacher membership and a staff row when they lack them."""
    for pid in dict.fromkeys(people):
        member = await db.fetchval(
            "SELECT id FROM membership WHERE person_id = {} AND role = 'teacher' AND tenant_id = {}", pid, school.id
        )
        if member is None:
            run.pending.rows["membership"].append((pid, "teacher", school.id, run.now))
        if await db.fetchval("SELECT id FROM staff WHERE person_id = {}", pid) is None:
            run.pending.rows["staff"].append(
                (school.region_id, school.province_id, school.id, pid, run.next_staff_number(), grade)
            )


# --------------------------------------------------------------------------- whole regions


async def _create_tenants(
    db: Database, run: GeneratorRun, regions: int, schools_per_region: int
) -> tuple[list[str], list[TenantInfo]]:
    root = await db.fetchrow("SELECT id, path FROM tenant WHERE kind = 'platform'")
    if root is None:
        raise RuntimeError("no platform node: run the migrations first")
    prefix = f"gen-r{run.seed}-"
    taken = await db.fetch("SELECT slug FROM tenant WHERE kind = 'region' AND slug LIKE {}", prefix + "%")
    numbers = [int(s) for r in taken if (s := r["slug"][len(prefix) :]).isdigit()]
    first = max(numbers, default=0) + 1
    rng = run.rng
    region_choices = list(range(len(REGIONS)))
    rng.shuffle(region_choices)
    plan: list[tuple[Any, ...]] = []  # (key, kind, parent key, slug, code, ar, fr, en)
    for r in range(regions):
        number = first + r
        slug = f"{prefix}{number}"
        fr, ar, en, code, provinces = REGIONS[region_choices[r % len(REGIONS)]]
        plan.append((slug, "region", None, slug, code, ar, fr, en))
        n_prov = min(len(provinces), max(2, math.ceil(schools_per_region / 25)))
        chosen = rng.sample(provinces, n_prov)
        for k, (p_fr, p_ar) in enumerate(chosen, start=1):
            plan.append((f"{slug}-p{k}", "province", slug, f"{slug}-p{k}", f"{code}{k}", p_ar, p_fr, ascii_name(p_fr)))
        rotation = rng.randrange(len(CYCLE_PATTERN))
        for s in range(schools_per_region):
            cycle = CYCLE_PATTERN[(s + rotation) % len(CYCLE_PATTERN)]
            word, fr_prefix, ar_prefix, en_suffix = SCHOOL_KINDS[cycle]
            namesake, namesake_ar = rng.choice(NAMESAKES)
            province = f"{slug}-p{s % n_prov + 1}"
            school_slug = f"{slug}-{word}-{s + 1}"
            plan.append(
                (
                    school_slug,
                    "school",
                    province,
                    school_slug,
                    f"{code}{s % n_prov + 1:02d}{s + 1:04d}-{run.seed}-{number}",
                    f"{ar_prefix} {namesake_ar}",
                    f"{fr_prefix} {namesake}",
                    f"{namesake} {en_suffix}",
                )
            )
    ids = (await run.take_ids({"tenant": len(plan)}))["tenant"]
    by_key: dict[str, tuple[int, tuple[int, ...]]] = {}
    root_path = parse_path(root["path"])
    rows: list[tuple[Any, ...]] = []
    schools: list[TenantInfo] = []
    for tid, (key, kind, parent, slug, code, ar, fr, en) in zip(ids, plan, strict=True):
        parent_id, parent_path = (root["id"], root_path) if parent is None else by_key[parent]
        path = (*parent_path, tid)
        by_key[key] = (tid, path)
        locale = "ar" if kind == "school" else "fr"
        rows.append(
            (tid, kind, parent_id, "/".join(map(str, path)) + "/", slug, code, ar, fr, en, "active", locale, run.now)
        )
        if kind == "school":
            schools.append(
                TenantInfo(
                    id=tid,
                    kind="school",
                    parent_id=parent_id,
                    path=path,
                    slug=slug,
                    code=code,
                    name_ar=ar,
                    name_fr=fr,
                    name_en=en,
                    status="active",
                    default_locale=locale,
                    display_name=None,
                    logo_key=None,
                    primary_color="#0b5d3b",
                    secondary_color="#c1272d",
                )
            )
    await write_rows(db, "tenant", rows)
    run.counts["tenant"] += len(rows)
    return [f"{prefix}{first + r}" for r in range(regions)], schools


async def generate(
    db: Database,
    *,
    regions: int,
    schools_per_region: int,
    students_per_school: int,
    seed: int,
    progress: Callable[[int, int], Any] | None = None,
) -> GenerateStats:
    """Create ``regions`` regions of ``schools_per_region`` schools of ``students_per_school`` pupils."""
    if regions < 1 or schools_per_region < 1 or students_per_school < 1:
        raise ValueError("regions, schools per region and pupils per school must be at least 1")
    began = _time.perf_counter()
    async with db.scoped(Scope.everything()):
        run = await GeneratorRun.start(db, seed)
        slugs, schools = await _create_tenants(db, run, regions, schools_per_region)
        run.guardian_domain = f"parents.{slugs[0]}.madrasa.test"
        from core import audit

        await audit.record(
            db,
            actor_id=None,
            action="generate.run",
            object_type="platform",
            object_id=slugs[0],
            tenant=None,
            after={"regions": slugs, "schools": len(schools), "pupils_per_school": students_per_school, "seed": seed},
        )
    per_batch = max(1, BATCH_PUPILS // students_per_school)
    done = 0
    if progress:
        await _maybe_await(progress(0, len(schools)))
    for start in range(0, len(schools), per_batch):
        async with db.scoped(Scope.everything()):
            for school in schools[start : start + per_batch]:
                school_rng = random.Random(run.rng.getrandbits(64))
                await populate_school(db, school, school_rng, students_per_school, run=run, fresh=True, flush=False)
            await run.flush()
        done = min(len(schools), start + per_batch)
        if progress:
            await _maybe_await(progress(done, len(schools)))
    counts = {table: n for table, n in run.counts.items() if n}
    counts["audit_log"] = 1
    return GenerateStats(
        regions=slugs,
        schools=len(schools),
        counts=counts,
        rows=sum(counts.values()),
        seconds=_time.perf_counter() - began,
    )


async def _maybe_await(value: Any) -> None:
    if asyncio.iscoroutine(value):
        await value


# --------------------------------------------------------------------------- command line


def format_stats(stats: GenerateStats) -> str:
    """A small table of what a run wrote."""
    lines = [f"regions: {', '.join(stats.regions)}", f"schools: {stats.schools}"]
    width = max(len(t) for t in stats.counts)
    lines += [f"  {table:<{width}}  {n:>10,}" for table, n in sorted(stats.counts.items())]
    lines.append(f"  {'total rows':<{width}}  {stats.rows:>10,}")
    lines.append(f"{stats.seconds:.1f} s, {stats.rows_per_second:,.0f} rows/s")
    return "\n".join(lines)


async def _cli(args: Any, settings: Any) -> int:
    from core.app import build_services
    from core.migrate import migrate

    services = build_services(settings)
    await services.db.start()
    try:
        await migrate(services.db, services.migration_sets)

        def report(done: int, total: int) -> None:
            print(f"\rgenerating: {done}/{total} schools", end="", file=sys.stderr, flush=True)

        stats = await generate(
            services.db,
            regions=args.regions,
            schools_per_region=args.schools_per_region,
            students_per_school=args.students_per_school,
            seed=args.seed,
            progress=report,
        )
        print(file=sys.stderr)
    finally:
        await services.db.stop()
    print(format_stats(stats))
    return 0


def cli_generate(args: Any, settings: Any) -> int:
    """``madrasa generate``: migrate, generate with a progress line on stderr, print what was written."""
    for name in ("regions", "schools_per_region", "students_per_school"):
        if getattr(args, name) < 1:
            print(f"--{name.replace('_', '-')} must be at least 1", file=sys.stderr)
            return 2
    return asyncio.run(_cli(args, settings))
