"""One composable SQL type: trusted text fragments joined with the values they bind.

Everywhere SQL is assembled from parts, it is assembled from :class:`SQL` objects, never by
pasting strings together::

    from core.sql import SQL, ident, in_

    where = SQL("school_id = {}", school_id)
    if term_id is not None:
        where = where & SQL("term_id = {}", term_id)
    rows = await db.fetch(SQL("SELECT id FROM {} WHERE {}", ident("grade_sheet"), where))

Each ``{}`` in a template is filled by the next argument: another :class:`SQL` is inlined with
its own values; anything else is a value and can only ever be *bound* (``$n`` on PostgreSQL,
``?`` on SQLite). Identifiers (table and column names chosen at run time) go through
:func:`ident`, which accepts plain names only and quotes them. A template is a literal written in
the source: ``tests/test_sql_lint.py`` fails on an f-string, ``.format`` or ``.replace`` applied to
SQL text anywhere else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["SLOT", "SQL", "compile_template", "ident", "in_", "join", "many_text", "slots"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Slot:
    """A placeholder for ``executemany``: the statement is run once per row of values."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "SLOT"


#: Stands for a value of each row in a statement run with ``Database.executemany``.
SLOT: Any = _Slot()


class _Value:
    """A bound value inside an :class:`SQL` (never text)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class SQL:
    """SQL text with its bound values; compose with ``{}`` templates, ``+``, ``&``, ``|`` and :func:`join`."""

    __slots__ = ("_parts",)

    def __init__(self, template: str = "", *values: Any) -> None:
        pieces = template.split("{}")
        if len(pieces) != len(values) + 1:
            raise ValueError(f"SQL template has {len(pieces) - 1} placeholders for {len(values)} values: {template!r}")
        parts: list[str | _Value] = []
        for i, text in enumerate(pieces):
            if text:
                parts.append(text)
            if i < len(values):
                value = values[i]
                if isinstance(value, SQL):
                    parts.extend(value._parts)
                else:
                    parts.append(_Value(value))
        self._parts: tuple[str | _Value, ...] = tuple(parts)

    @classmethod
    def _of(cls, parts: Iterable[str | _Value]) -> SQL:
        new = cls.__new__(cls)
        new._parts = tuple(parts)
        return new

    def __add__(self, other: SQL) -> SQL:
        if not isinstance(other, SQL):
            return NotImplemented
        return SQL._of(self._parts + other._parts)

    def __and__(self, other: SQL) -> SQL:
        """``(self) AND (other)``."""
        if not isinstance(other, SQL):
            return NotImplemented
        return SQL("({}) AND ({})", self, other)

    def __or__(self, other: SQL) -> SQL:
        """``(self) OR (other)``."""
        if not isinstance(other, SQL):
            return NotImplemented
        return SQL("({}) OR ({})", self, other)

    def compile(self, dialect: str) -> tuple[str, list[Any]]:
        """The statement text for ``dialect`` (``postgres`` or ``sqlite``) and its argument list."""
        out: list[str] = []
        args: list[Any] = []
        postgres = dialect == "postgres"
        for part in self._parts:
            if isinstance(part, _Value):
                args.append(part.value)
                out.append(f"${len(args)}" if postgres else "?")
            else:
                out.append(part)
        return "".join(out), args

    def __repr__(self) -> str:
        text, args = self.compile("postgres")
        return f"SQL({text!r}, {args!r})"


def ident(name: str, *more: str) -> SQL:
    """A quoted identifier (``"grade_mark"``, or ``"m"."score"`` for two parts); plain names only."""
    quoted = []
    for part in (name, *more):
        if not _IDENT.match(part):
            raise ValueError(f"not a plain SQL identifier: {part!r}")
        quoted.append(f'"{part}"')
    return SQL._of([".".join(quoted)])


def join(separator: str, parts: Iterable[SQL]) -> SQL:
    """``parts`` joined with the trusted ``separator`` (``", "``, ``" AND "``, …)."""
    out: list[str | _Value] = []
    for i, part in enumerate(parts):
        if i:
            out.append(separator)
        out.extend(part._parts)
    return SQL._of(out)


def in_(values: Iterable[Any]) -> SQL:
    """``(v1, v2, …)`` for an ``IN`` clause, every value bound; an empty list matches nothing."""
    items = list(values)
    if not items:
        return SQL("(NULL)")
    return SQL("(" + ", ".join("{}" for _ in items) + ")", *items)


def slots(count: int) -> SQL:
    """``({}, {}, …)`` of :data:`SLOT` placeholders: a ``VALUES`` row for ``Database.executemany``."""
    return in_([SLOT] * count)


def many_text(statement: SQL | str, dialect: str, width: int) -> str:
    """The text of a statement run once per row of ``width`` values (``executemany``).

    ``statement`` is a literal ``{}`` template, or an :class:`SQL` whose only values are :data:`SLOT`.
    """
    if isinstance(statement, str):
        return compile_template(statement, dialect, width)
    text, values = statement.compile(dialect)
    if any(v is not SLOT for v in values) or len(values) != width:
        raise ValueError(f"an executemany statement takes {width} SLOT placeholders and no other value: {statement!r}")
    return text


def compile_template(template: str, dialect: str, width: int) -> str:
    """A ``{}`` template with ``width`` placeholders compiled for ``executemany`` (no values)."""
    pieces = template.split("{}")
    if len(pieces) != width + 1:
        raise ValueError(f"SQL template has {len(pieces) - 1} placeholders for rows of {width}")
    out = [pieces[0]]
    for i, text in enumerate(pieces[1:], start=1):
        out.append(f"${i}" if dialect == "postgres" else "?")
        out.append(text)
    return "".join(out)


def as_sql(query: SQL | str, args: Sequence[Any]) -> SQL:
    """``query`` as :class:`SQL`: a literal template string is filled with ``args``."""
    if isinstance(query, SQL):
        if args:
            raise TypeError("an SQL object carries its own values; pass no further arguments")
        return query
    return SQL(query, *args)
