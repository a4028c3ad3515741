"""One way to write SQL: no f-string, ``.format``, ``%``, ``.replace`` or ``+`` builds SQL text.

SQL assembled from parts goes through :class:`core.sql.SQL`, which carries its values and binds
them; only ``core/sql.py`` itself joins text. A literal template with ``{}`` placeholders passed
with its values (``db.fetch("… WHERE id = {}", id)``) is fine: nothing is pasted into it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["core", "plugins", "tenants", "admin_ui", "devtools", "tests/example_plugin"]
EXEMPT = {ROOT / "core" / "sql.py"}

#: Upper-case SQL that text in messages and comments does not contain.
SQL_TEXT = re.compile(
    r"\b(SELECT\b.*\bFROM|INSERT INTO|UPDATE\s+\"?\w+\"?\s+SET|DELETE FROM|"
    r"CREATE (UNIQUE )?(TABLE|INDEX|POLICY|TRIGGER|FUNCTION|VIEW|ROLE|DATABASE)|ALTER (TABLE|ROLE|DATABASE)|"
    r"DROP (TABLE|INDEX|POLICY|ROLE|DATABASE)|GRANT \w+|"
    r"REVOKE \w+|ON CONFLICT|WHERE\b|JOIN\b|VALUES\s*\(|ORDER BY|GROUP BY)",
    re.DOTALL,
)


def _text(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
    return None


def _is_sql(node: ast.AST) -> bool:
    text = _text(node)
    return text is not None and bool(SQL_TEXT.search(text))


def _constant_chain(node: ast.AST) -> bool:
    """A string built only from literals (``"a " "b"`` or ``"a" + "b"``)."""
    if isinstance(node, ast.Constant):
        return True
    return (
        isinstance(node, ast.BinOp)
        and isinstance(node.op, ast.Add)
        and all(_constant_chain(side) for side in (node.left, node.right))
    )


def violations(source: str, name: str) -> list[str]:
    """Places in ``source`` where SQL text is built by pasting strings together."""
    found = []
    for node in ast.walk(ast.parse(source, filename=name)):
        where = f"{name}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.JoinedStr) and any(isinstance(v, ast.FormattedValue) for v in node.values):
            if _is_sql(node):
                found.append(f"{where}: f-string SQL")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            method, receiver = node.func.attr, node.func.value
            if method == "format" and _is_sql(receiver):
                found.append(f"{where}: .format() on SQL")
            elif method == "replace" and (
                _is_sql(receiver) or (node.args and (_text(node.args[0]) or "").startswith("{") and not _text(receiver))
            ):
                found.append(f"{where}: .replace() on SQL")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and _is_sql(node.left):
            found.append(f"{where}: %-formatting of SQL")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and not _constant_chain(node):
            sides = (node.left, node.right)
            if any(_is_sql(side) for side in sides) and any(
                not isinstance(side, ast.Constant) and _text(side) is None and not isinstance(side, ast.BinOp)
                for side in sides
            ):
                found.append(f"{where}: SQL concatenated with a variable")
    return sorted(found, key=lambda item: int(item.split(":")[1]))


def test_no_sql_is_pasted_together() -> None:
    problems = []
    for package in PACKAGES:
        folder = ROOT / package
        if not folder.exists():
            continue
        for path in sorted(folder.rglob("*.py")):
            if path in EXEMPT or ".venv" in path.parts:
                continue
            problems += violations(path.read_text(), str(path.relative_to(ROOT)))
    assert not problems, "SQL built from strings (use core.sql.SQL):\n" + "\n".join(problems)


def test_the_lint_bites() -> None:
    bad = """
def f(db, table, ids, where, n):
    db.fetch(f"SELECT * FROM {table} WHERE id = {{}}", 1)
    db.fetch("SELECT * FROM t WHERE id IN {ids}".replace("{ids}", ids))
    db.fetch("SELECT * FROM {} WHERE a = 1".format(table))
    db.fetch("SELECT * FROM t WHERE " + where)
    db.fetch("DELETE FROM t WHERE n = %s" % n)
    sql = template.replace("{ids}", ids)
"""
    assert [v.split(": ", 1)[1] for v in violations(bad, "bad.py")] == [
        "f-string SQL",
        ".replace() on SQL",
        ".format() on SQL",
        "SQL concatenated with a variable",
        "%-formatting of SQL",
        ".replace() on SQL",
    ]
    good = """
def g(db, school_id, where):
    db.fetch("SELECT id FROM t WHERE school_id = {}", school_id)
    db.fetch(SQL("SELECT id FROM t WHERE {}", where))
    db.fetch("SELECT id, name "
             "FROM t ORDER BY name")
    db.fetch("SELECT a FROM t " + "WHERE b = {}", 1)
    log.info(f"imported {n} rows from the file")
    raise ValueError(f"no column {name!r} in the header")
"""
    assert violations(good, "good.py") == []


def test_executemany_statements_take_slots_only() -> None:
    from core.sql import SLOT, SQL, ident, many_text, slots

    statement = SQL("INSERT INTO {} (a, b) VALUES {}", ident("t"), slots(2))
    assert many_text(statement, "postgres", 2) == 'INSERT INTO "t" (a, b) VALUES ($1, $2)'
    assert many_text(statement, "sqlite", 2) == 'INSERT INTO "t" (a, b) VALUES (?, ?)'
    assert many_text("INSERT INTO t (a) VALUES ({})", "postgres", 1) == "INSERT INTO t (a) VALUES ($1)"
    try:
        many_text(SQL("INSERT INTO t (a, b) VALUES ({}, {})", SLOT, "pasted?"), "postgres", 2)
    except ValueError as exc:
        assert "SLOT" in str(exc)
    else:
        raise AssertionError("a real value in an executemany statement must be refused")
