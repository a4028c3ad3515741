"""Spreadsheet-safe CSV cells (core/csv_cells.py)."""

from __future__ import annotations

import pytest

from core.csv_cells import csv_cell, formula_start


@pytest.mark.parametrize("text", ["=1+1", "+212 6", "-3", "@SUM(A1)", "\t=1", "\r=1"])
def test_formula_like_text_is_neutralised(text):
    assert formula_start(text)
    assert csv_cell(text) == "'" + text


@pytest.mark.parametrize("value", ["2 BAC = SM", "", "Lycée", 3, -0.5, None])
def test_other_values_are_kept(value):
    assert csv_cell(value) == value
