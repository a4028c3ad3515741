"""Bulletins (report cards): one PDF per pupil, term and language, rendered on a family's first download
or by a class's (or school's) job, and kept in storage at the school's publication version.

- :func:`render_bulletin` turns a :class:`BulletinData` into PDF bytes, in Arabic (right to left,
  columns mirrored) or French. Pure: no database, no I/O besides reading the fonts once.
- :func:`gather_bulletins` reads a class's results for a term, set-based (a handful of queries
  per class, whatever its size).
- A family's download (:mod:`.cards`) renders the card of one pupil, term and language the first
  time at a publication version, stores it under ``t/<school>/bulletins/v<version>/…`` and records
  its ``grade_bulletin`` row; later downloads read storage.
- The job ``grades.bulletins`` renders, off the event loop, the pupils of a class or a school whose
  cards at the current version are missing (both languages), under the same keys, records
  ``grade_bulletin`` rows and reports progress per pupil.
- :data:`BULLETIN_ROUTES`: ask for the bulletins of a class or school (202 with the job), list
  and download them (staff of the school, the pupil, the pupil's guardians; 404 for anyone else),
  and a family's card of a closed term by pupil, term and language.

Arabic text goes through HarfBuzz (fpdf2 ``set_text_shaping``) so letters join and ligate, with
fpdf2's bidirectional algorithm; fpdf2 writes a ToUnicode map, so the text extracts back to
Unicode in logical order. The font is Noto Sans merged with Noto Naskh Arabic (Debian's
``fonts-noto-core``; :class:`FontsMissing` names the package when absent), cut to the characters
a bulletin needs, prepared once per process (and cached on disk) and shared between documents:
that, and drawing Latin text and numbers without the shaping machinery, is what makes rendering
fast enough for a school (see ``benchmarks/bulletins.py``).

The package: :mod:`.model` (the data and its formatting), :mod:`.fonts` (preparing the font),
:mod:`.pdf` (rendering), :mod:`.data` (reading a class's results), :mod:`.jobs` (the job),
:mod:`.cards` (a family's card, rendered on first download),
:mod:`.service` (asking for, reading and zipping bulletins: shared by the API and the portal's
pages in :mod:`plugins.grades.portal_results`), :mod:`.api` (the routes).
"""

from __future__ import annotations

from plugins.grades.bulletins.api import BULLETIN_ROUTES
from plugins.grades.bulletins.data import gather_bulletins
from plugins.grades.bulletins.fonts import FONTS, FontBook, FontsMissing, check_fonts
from plugins.grades.bulletins.jobs import BULLETIN_JOB, bulletin_filename, bulletins_job
from plugins.grades.bulletins.model import (
    LOCALES,
    BulletinData,
    Locale,
    Mark,
    SubjectLine,
    appreciation,
    fmt_average,
)
from plugins.grades.bulletins.pdf import render_bulletin, render_pair

__all__ = [
    "BULLETIN_JOB",
    "BULLETIN_ROUTES",
    "FONTS",
    "LOCALES",
    "BulletinData",
    "FontBook",
    "FontsMissing",
    "Locale",
    "Mark",
    "SubjectLine",
    "appreciation",
    "bulletin_filename",
    "bulletins_job",
    "check_fonts",
    "fmt_average",
    "gather_bulletins",
    "render_bulletin",
    "render_pair",
]
