"""National reference data loaded by the school-structure migration (Moroccan public schools)."""

from __future__ import annotations

# (code, cycle, rank, name_ar, name_fr, name_en)
LEVELS = [
    *[
        (f"{n}AP", "primaire", n, f"المستوى {n} ابتدائي", f"{n}e année primaire", f"Primary year {n}")
        for n in range(1, 7)
    ],
    ("1AC", "college", 7, "الأولى إعدادي", "1re année collège", "Middle school year 1"),
    ("2AC", "college", 8, "الثانية إعدادي", "2e année collège", "Middle school year 2"),
    ("3AC", "college", 9, "الثالثة إعدادي", "3e année collège", "Middle school year 3"),
    ("TC", "lycee", 10, "الجذع المشترك", "Tronc commun", "Common core"),
    ("1BAC", "lycee", 11, "الأولى باكالوريا", "1re année du baccalauréat", "Baccalaureate year 1"),
    ("2BAC", "lycee", 12, "الثانية باكالوريا", "2e année du baccalauréat", "Baccalaureate year 2"),
]

# (code, levels, name_ar, name_fr, name_en)
TRACKS = [
    ("TCS", "TC", "جذع مشترك علمي", "Tronc commun scientifique", "Science common core"),
    ("TCL", "TC", "جذع مشترك آداب", "Tronc commun lettres", "Humanities common core"),
    ("SE", "1BAC", "علوم تجريبية", "Sciences expérimentales", "Experimental sciences"),
    ("SM", "1BAC,2BAC", "علوم رياضية", "Sciences mathématiques", "Mathematical sciences"),
    ("LSH", "1BAC", "آداب وعلوم إنسانية", "Lettres et sciences humaines", "Humanities"),
    ("PC", "2BAC", "علوم فيزيائية", "Sciences physiques", "Physical sciences"),
    ("SVT", "2BAC", "علوم الحياة والأرض", "Sciences de la vie et de la terre", "Life and earth sciences"),
    ("LET", "2BAC", "آداب", "Lettres", "Letters"),
]

# (code, name_ar, name_fr, name_en)
SUBJECTS = [
    ("ARA", "اللغة العربية", "Langue arabe", "Arabic"),
    ("FRA", "اللغة الفرنسية", "Langue française", "French"),
    ("ENG", "اللغة الإنجليزية", "Langue anglaise", "English"),
    ("AMZ", "اللغة الأمازيغية", "Langue amazighe", "Amazigh"),
    ("MATH", "الرياضيات", "Mathématiques", "Mathematics"),
    ("PC", "الفيزياء والكيمياء", "Physique-chimie", "Physics and chemistry"),
    ("SVT", "علوم الحياة والأرض", "Sciences de la vie et de la terre", "Life and earth sciences"),
    ("ACT", "النشاط العلمي", "Activité scientifique", "Science activities"),
    ("HG", "الاجتماعيات", "Histoire-géographie", "History and geography"),
    ("EI", "التربية الإسلامية", "Éducation islamique", "Islamic education"),
    ("PHILO", "الفلسفة", "Philosophie", "Philosophy"),
    ("INFO", "المعلوميات", "Informatique", "Computing"),
    ("EPS", "التربية البدنية", "Éducation physique", "Physical education"),
    ("ART", "التربية الفنية", "Éducation artistique", "Art"),
]

_PRIMARY = {
    "ARA": (1, 9),
    "FRA": (1, 7),
    "AMZ": (1, 2),
    "MATH": (1, 5),
    "ACT": (1, 2),
    "EI": (1, 2),
    "HG": (1, 1),
    "EPS": (1, 2),
    "ART": (1, 1),
}
_COLLEGE = {
    "ARA": (3, 5),
    "FRA": (3, 5),
    "ENG": (1, 2),
    "MATH": (3, 5),
    "PC": (2, 2),
    "SVT": (2, 2),
    "HG": (2, 3),
    "EI": (2, 2),
    "INFO": (1, 1),
    "EPS": (1, 2),
}
_LYCEE: dict[str | None, dict[str, tuple[float, float]]] = {
    "TCS": {
        "ARA": (2, 2),
        "FRA": (3, 4),
        "ENG": (2, 2),
        "MATH": (4, 5),
        "PC": (3, 4),
        "SVT": (3, 3),
        "HG": (2, 2),
        "EI": (2, 2),
        "PHILO": (2, 2),
        "INFO": (1, 2),
        "EPS": (1, 2),
    },
    "TCL": {
        "ARA": (4, 5),
        "FRA": (4, 4),
        "ENG": (3, 3),
        "MATH": (2, 2),
        "HG": (3, 4),
        "EI": (2, 2),
        "PHILO": (2, 2),
        "SVT": (1, 1),
        "PC": (1, 1),
        "EPS": (1, 2),
    },
    "SE": {
        "ARA": (2, 2),
        "FRA": (4, 4),
        "ENG": (2, 2),
        "MATH": (4, 4),
        "PC": (5, 5),
        "SVT": (5, 5),
        "HG": (2, 2),
        "EI": (2, 2),
        "PHILO": (2, 2),
        "EPS": (1, 2),
    },
    "SM": {
        "ARA": (2, 2),
        "FRA": (4, 4),
        "ENG": (2, 2),
        "MATH": (7, 9),
        "PC": (7, 6),
        "SVT": (2, 2),
        "EI": (2, 2),
        "PHILO": (2, 2),
        "EPS": (1, 2),
    },
    "LSH": {
        "ARA": (4, 5),
        "FRA": (4, 4),
        "ENG": (4, 4),
        "MATH": (1, 2),
        "HG": (4, 4),
        "EI": (2, 2),
        "PHILO": (3, 3),
        "EPS": (1, 2),
    },
    "PC": {
        "ARA": (2, 2),
        "FRA": (4, 4),
        "ENG": (2, 2),
        "MATH": (7, 7),
        "PC": (7, 8),
        "SVT": (5, 3),
        "EI": (2, 2),
        "PHILO": (2, 2),
        "EPS": (1, 2),
    },
    "SVT": {
        "ARA": (2, 2),
        "FRA": (4, 4),
        "ENG": (2, 2),
        "MATH": (7, 6),
        "PC": (5, 5),
        "SVT": (7, 6),
        "EI": (2, 2),
        "PHILO": (2, 2),
        "EPS": (1, 2),
    },
    "LET": {
        "ARA": (4, 5),
        "FRA": (4, 4),
        "ENG": (4, 4),
        "HG": (4, 4),
        "EI": (2, 2),
        "PHILO": (4, 3),
        "MATH": (1, 1),
        "EPS": (1, 2),
    },
}


def coefficients() -> list[tuple[str, str | None, str, float, float]]:
    """National rule rows: ``(level, track, subject, coefficient, weekly hours)``."""
    rows: list[tuple[str, str | None, str, float, float]] = []
    for level, *_ in LEVELS:
        if level.endswith("AP"):
            rows += [(level, None, s, c, h) for s, (c, h) in _PRIMARY.items()]
        elif level.endswith("AC"):
            rows += [(level, None, s, c, h) for s, (c, h) in _COLLEGE.items()]
    for track, levels, *_ in TRACKS:
        for level in levels.split(","):
            rows += [(level, track, s, c, h) for s, (c, h) in _LYCEE[track].items()]
    return rows


SCHOOL_YEAR = ("2026-2027", "2026-09-07", "2027-06-30")
TERMS = [(1, "2026-09-07", "2027-01-24"), (2, "2027-01-25", "2027-06-30")]
HOLIDAYS = [
    ("Marche verte", "المسيرة الخضراء", "2026-11-06", "2026-11-06"),
    ("Fête de l'Indépendance", "عيد الاستقلال", "2026-11-18", "2026-11-18"),
    ("Vacances de fin du premier semestre", "عطلة منتصف السنة", "2027-01-25", "2027-01-31"),
    ("Vacances de printemps", "عطلة الربيع", "2027-03-22", "2027-03-28"),
]
