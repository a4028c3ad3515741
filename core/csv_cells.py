"""Cells safe to open in a spreadsheet: text that a spreadsheet would run as a formula is neutralised.

Every CSV the product writes from data people typed (error reports, statistics, rostering exports)
passes its free-text cells through :func:`csv_cell`.
"""

from __future__ import annotations

from typing import Any

#: Leading characters that make a spreadsheet read a cell as a formula (or hide one behind a tab or a line).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def formula_start(value: str) -> bool:
    """Whether a spreadsheet would read the text as a formula. Pure function."""
    return value.startswith(FORMULA_STARTS)


def csv_cell(value: Any) -> Any:
    """The cell as a spreadsheet should show it: formula-like text gets a leading ``'``; other values are kept."""
    if isinstance(value, str) and formula_start(value):
        return "'" + value
    return value
