"""The workbook report's messages in the reader's language.

:mod:`plugins.grades.spreadsheet_book` and :func:`plugins.grades.spreadsheet.apply_upload` write each
problem as an English sentence (the API returns it as it is). :data:`TEMPLATES` holds those sentences as
catalogue message ids with their ``{placeholders}``; :func:`translated` finds the template a message was
made from and returns the catalogue's translation with the same values. A message of no template is shown
as it was written.
"""

from __future__ import annotations

import re
from functools import cache

from core.plugin_api import gettext_
from plugins.grades.portal_common import STATE_LABELS

TEMPLATES: tuple[str, ...] = (
    # one cell (plugins/grades/spreadsheet_book.py: read_mark, _read_row)
    "TRUE/FALSE is not a mark: type a number, غ/ABS or م/EXC",
    "a date or time, not a mark (the spreadsheet turned what was typed into a date): type 12,5 or 12.5",
    "not a number",
    "a formula: type the mark itself",
    "not a mark: write a number from 0 to {limit} (12,5 or 12.5), غ or ABS for an absent pupil, "
    "م or EXC for an excused absence, or leave it empty",
    "not a mark",
    "negative: a mark is between 0 and {limit}",
    "above the maximum: a mark is between 0 and {limit}",
    "too many decimals: at most two (e.g. 12.25)",
    "the pupil code is missing: every row needs its pupil's code",
    "{code} is not a pupil code (one letter followed by nine digits, e.g. J130012345)",
    "nothing is read from column {column}: marks go in columns G, I and K (Contrôle 1, 2, 3)",
    "the pupil appears twice: duplicate of row {row}",
    # the file as a whole
    "the file is empty: upload the .xlsx workbook",
    "not an .xlsx workbook (the file is not a valid Excel archive): save it as “Excel workbook (.xlsx)”",
    "the workbook is far too large once unpacked to be a mark sheet",
    "not an .xlsx workbook (it may be an .ods or .docx file): save it as “Excel workbook (.xlsx)”",
    "this workbook is not a madrasa template of this sheet (its hidden identity is missing): "
    "download the template of this sheet and fill it in",
    "the template's identity was altered (its signature does not match): download a fresh template of this sheet",
    "the workbook cannot be read ({kind}): save it again as .xlsx and retry",
    "the workbook has no mark sheet",
    "the header of column {column} should read “{label}”: columns or rows were moved, added or deleted; "
    "keep the template's layout (pupils from row 18)",
    "more than {count} pupil rows: this is not one class's mark sheet",
    # against the class and the sheet (plugins/grades/spreadsheet.py: apply_upload)
    "{code} is not a pupil of {class_name}: remove this row",
    "{count} pupil(s) of {class_name} missing from the file: {named}; add their rows (their marks may stay empty)",
    "column {column} holds marks but CC{position} is not scheduled for {class_name} in {subject}: "
    "schedule CC{position} first (a file does not create assessments)",
    # refusals of the marks service (plugins/grades/service.py) for a teacher
    "The marks are {state}: ask the director to reopen them.",
    "The entry deadline ({date}) has passed.",
)

_FIELD = re.compile(r"\{(\w+)\}")


@cache
def _patterns() -> tuple[tuple[re.Pattern[str], str], ...]:
    out = []
    for template in TEMPLATES:
        parts, seen, at = [], set(), 0
        for match in _FIELD.finditer(template):
            parts.append(re.escape(template[at : match.start()]))
            name = match.group(1)
            parts.append(f"(?P={name})" if name in seen else f"(?P<{name}>.+?)")
            seen.add(name)
            at = match.end()
        parts.append(re.escape(template[at:]))
        out.append((re.compile("".join(parts) + r"\Z", re.DOTALL), template))
    return tuple(out)


def translated(message: str) -> str:
    """``message`` in the request's language when it was made from one of :data:`TEMPLATES`."""
    for pattern, template in _patterns():
        match = pattern.match(message)
        if match:
            values = match.groupdict()
            if "state" in values:  # a sheet's state reads in the page's language too
                values["state"] = gettext_(STATE_LABELS.get(values["state"], values["state"])).lower()
            return gettext_(template, **values)
    return message
