"""The plugin contract: plugins own their tables, import only the facade, and listeners never break a write.

* **Table ownership.** Every table belongs to the package that declares it (core, or the plugin whose
  ``madrasa_tables`` returns it). The SQL text of each package may name only its own tables and
  core's; a plugin reaches another plugin's tables through hooks that plugin implements.
* **One facade.** Built-in plugins (``plugins/*``) and the example third-party plugin import from core
  only ``core.plugin_api``.
* **Handlers are isolated.** A listener that raises is logged and counted; the write that emitted the
  event still answers 2xx, and other listeners still run.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.app import build_plugin_host, build_services, create_app, owned_tables
from core.config import ConfigError
from core.jobs import run_job
from core.plugin_api import Event, PluginInfo, hookimpl
from core.plugins import PluginHost
from tests.conftest import make_settings, new_client

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DIR = ROOT / "tests" / "example_plugin" / "madrasa_example"

#: Words after which SQL names a table.
TABLE_REF = re.compile(r'\b(?:FROM|JOIN|INTO|UPDATE|TABLE|ON|EXISTS)\s+"?([a-z_][a-z0-9_]*)"?', re.IGNORECASE)
SQL_WORDS = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER|DROP|TRUNCATE|COPY)\b")


# --- who owns what -------------------------------------------------------------------------------


def _package_dir(plugin: object) -> Path:
    module = sys.modules.get(getattr(plugin, "__module__", "") or "") or plugin
    return Path(module.__file__).resolve().parent  # type: ignore[union-attr]


def table_owners(host: PluginHost) -> dict[str, str]:
    """``{table: owner}``: ``core`` for core's tables, else the plugin whose ``madrasa_tables`` returns it."""
    owners: dict[str, str] = {}
    for owner, table in owned_tables(host):
        name = table._meta.tablename
        assert name not in owners, f"{name} is declared by both {owners[name]} and {owner}"
        owners[name] = owner
    return owners


def package_dirs(host: PluginHost) -> dict[str, Path]:
    """``{owner: folder}`` for core and every plugin."""
    dirs = {"core": ROOT / "core"}
    for name in host.names:
        dirs[name] = _package_dir(host._objects[name])
    return dirs


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def sql_strings(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, text)`` of every string constant (and f-string text) in a file that reads as SQL."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skip = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            text = node.value
        elif isinstance(node, ast.JoinedStr):
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
        else:
            continue
        if SQL_WORDS.search(text):
            yield node.lineno, text


def foreign_table_references(folder: Path, owner: str, owners: dict[str, str], nested: list[Path]) -> list[str]:
    """Places under ``folder`` (not in ``nested`` packages) whose SQL names another plugin's table."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        if any(path.is_relative_to(n) for n in nested) or "tests" in path.relative_to(folder).parts:
            continue
        for line, text in sql_strings(path):
            for match in TABLE_REF.finditer(text):
                table = match.group(1).lower()
                other = owners.get(table)
                if other is not None and other not in (owner, "core"):
                    found.append(f"{path.relative_to(folder.parent)}:{line}: {owner} names {table} (owned by {other})")
    return found


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> PluginHost:
    return build_plugin_host(make_settings("sqlite", tmp_path_factory.mktemp("contract"), None))


def test_no_package_names_another_plugins_tables(host: PluginHost) -> None:
    owners = table_owners(host)
    dirs = package_dirs(host)
    problems = []
    for owner, folder in dirs.items():
        nested = [d for o, d in dirs.items() if o != owner and d != folder and d.is_relative_to(folder)]
        problems += foreign_table_references(folder, owner, owners, nested)
    assert not problems, "SQL naming another plugin's tables:\n" + "\n".join(problems)


def test_core_names_no_plugin_table(host: PluginHost) -> None:
    owners = table_owners(host)
    plugin_tables = {t for t, o in owners.items() if o != "core"}
    assert {"grade_mark", "attendance_mark", "example_note"} <= plugin_tables
    found = []
    for path in sorted((ROOT / "core").rglob("*.py")):
        for line, text in sql_strings(path):
            found += [f"{path}:{line}: {m.group(1)}" for m in TABLE_REF.finditer(text) if m.group(1) in plugin_tables]
    assert not found, "core's SQL names plugin tables:\n" + "\n".join(found)


def test_the_ownership_check_bites(tmp_path: Path, host: PluginHost) -> None:
    owners = table_owners(host)
    bad = tmp_path / "leaky.py"
    bad.write_text(
        '"""Docstrings may mention grade_mark: SELECT * FROM grade_mark."""\n'
        'OK = "SELECT id FROM tenant"\n'
        'LEAK = "SELECT score FROM grade_mark m JOIN attendance_mark a ON a.student_id = m.student_id"\n'
    )
    found = foreign_table_references(tmp_path, "example", owners, [])
    assert [f.split(": ", 1)[1] for f in found] == [
        "example names grade_mark (owned by grades)",
        "example names attendance_mark (owned by attendance)",
    ]


# --- one facade ----------------------------------------------------------------------------------


def core_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every import of a ``core`` module in a file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "core":
                found += [(node.lineno, f"core.{a.name}") for a in node.names]
            elif node.module.startswith("core."):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name == "core" or a.name.startswith("core.")]
    return found


def facade_violations(folder: Path) -> list[str]:
    return [
        f"{path.relative_to(folder.parent)}:{line}: imports {module}"
        for path in sorted(folder.rglob("*.py"))
        for line, module in core_imports(path)
        if module != "core.plugin_api"
    ]


def test_plugins_import_only_the_facade() -> None:
    problems = facade_violations(ROOT / "plugins") + facade_violations(EXAMPLE_DIR)
    assert not problems, "plugins must import core only through core.plugin_api:\n" + "\n".join(problems)


def test_the_facade_check_bites(tmp_path: Path) -> None:
    pkg = tmp_path / "someplugin"
    pkg.mkdir()
    (pkg / "a.py").write_text("from core.plugin_api import SQL\nfrom core.db import Database\nimport core.jobs\n")
    (pkg / "b.py").write_text("from core import audit\n")
    assert facade_violations(pkg) == [
        "someplugin/a.py:2: imports core.db",
        "someplugin/a.py:3: imports core.jobs",
        "someplugin/b.py:1: imports core.audit",
    ]


def test_the_facade_exports_what_its_docs_describe() -> None:
    import core.plugin_api as api

    doc = (ROOT / "docs" / "plugin_api.md").read_text()
    missing = [name for name in api.__all__ if not re.search(rf"`{re.escape(name)}[`(.\[]", doc)]
    assert not missing, f"docs/plugin_api.md does not describe: {missing}"
    for name in api.__all__:
        assert hasattr(api, name), name


# --- hooks a plugin adds: its own hookspecs, jobs, backends ----------------------------------------


class Greeter:
    """A second plugin implementing the example plugin's own hook."""

    @hookimpl
    def madrasa_plugin_info(self) -> PluginInfo:
        return PluginInfo(name="greeter", label="Greeter")

    @hookimpl
    def madrasa_example_greetings(self, school_id: int) -> list[str]:
        return [f"salam {school_id}"]


class Failing:
    """A listener that always raises."""

    @hookimpl
    def madrasa_plugin_info(self) -> PluginInfo:
        return PluginInfo(name="failing", label="Failing")

    @hookimpl
    def madrasa_handle_event(self, event: Event) -> None:
        raise RuntimeError(f"listener broke on {event.name}")


class Rogue:
    """Implements a hook nobody declared."""

    @hookimpl
    def madrasa_plugin_info(self) -> PluginInfo:
        return PluginInfo(name="rogue", label="Rogue")

    @hookimpl
    def madrasa_no_such_hook(self) -> None:
        return None


def test_a_plugin_declares_hooks_for_others(tmp_path: Path) -> None:
    host = build_plugin_host(make_settings("sqlite", tmp_path, None), extra_plugins=[Greeter()])
    results = host.hook_for("madrasa_example_greetings", frozenset())(school_id=7)
    assert [r for r in results] == [["salam 7"]]
    assert host.hook_for("madrasa_example_greetings", frozenset({"greeter"}))(school_id=7) == []


def test_an_undeclared_hook_is_refused_at_start_up(tmp_path: Path) -> None:
    from pluggy import PluginValidationError

    with pytest.raises(PluginValidationError, match="madrasa_no_such_hook"):
        build_plugin_host(make_settings("sqlite", tmp_path, None), extra_plugins=[Rogue()])


def test_jobs_and_backends_come_from_hooks(tmp_path: Path) -> None:
    settings = make_settings("sqlite", tmp_path, None, sms_backend="example-outbox")
    services = build_services(settings)
    assert "example.count_notes" in services.job_functions
    assert type(services.sms).__name__ == "OutboxSms"
    with pytest.raises(ConfigError, match="no plugin provides it"):
        build_services(make_settings("sqlite", tmp_path, None, sms_backend="nowhere"))


def test_each_calls_implementations_through_pluggy(tmp_path: Path) -> None:
    host = build_plugin_host(make_settings("sqlite", tmp_path, None))
    seen: list[str] = []
    undo = host.pm.add_hookcall_monitoring(lambda name, impls, kwargs: seen.append(name), lambda *a: None)
    try:
        answered = dict(host.each("madrasa_plugin_info"))
    finally:
        undo()
    assert {"grades", "attendance", "example"} <= set(answered)
    assert seen.count("madrasa_plugin_info") == len(answered)


# --- the example plugin, exercised -----------------------------------------------------------------


async def test_example_plugin_end_to_end(world: Any) -> None:
    from madrasa_example import plugin as example

    director = "director.lycee-ibn-batouta@test.ma"
    hello = await world.api("GET", "/api/v1/example/hello", as_=director, tenant="lycee-ibn-batouta")
    assert hello.status_code == 200, hello.text
    assert hello.json() == {"hello": "lycee-ibn-batouta", "greetings": []}
    empty = await world.api(
        "POST", "/api/v1/example/notes", as_=director, tenant="lycee-ibn-batouta", json={"body": " "}
    )
    assert empty.status_code == 400 and empty.json()["errors"][0]["field"] == "body"
    example.RECEIVED.clear()
    made = await world.api(
        "POST", "/api/v1/example/notes", as_=director, tenant="lycee-ibn-batouta", json={"body": "réunion à 10 h"}
    )
    assert made.status_code == 201, made.text
    assert [e.name for e in example.RECEIVED] == ["example.note_added"]
    audited = await world.sql(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'example.note_added' AND object_id = {}", str(made.json()["id"])
    )
    assert audited == 1
    page = await world.api("GET", "/example/notes", as_=director, tenant="lycee-ibn-batouta")
    assert page.status_code == 200 and "réunion à 10 h" in page.text
    other = await world.api("GET", "/example/notes", as_="director.ecole-al-amal@test.ma", tenant="ecole-al-amal")
    assert other.status_code == 200 and "réunion à 10 h" not in other.text
    job = await world.api("POST", "/api/v1/example/count", as_=director, tenant="lycee-ibn-batouta")
    assert job.status_code == 202, job.text
    await run_job(world.services, job.json()["job"])  # the world's queue runner is not started
    status = await world.api("GET", f"/api/v1/jobs/{job.json()['job']}", as_=director, tenant="lycee-ibn-batouta")
    assert status.json()["status"] == "done", status.json()
    assert status.json()["result"]["notes"] >= 1


async def test_a_failing_listener_never_turns_a_committed_write_into_an_error(world: Any, caplog: Any) -> None:
    """Another app process on the same database, with a listener that always raises."""
    from madrasa_example import plugin as example

    from core.observability import metrics_payload

    services = build_services(world.settings, plugins=build_plugin_host(world.settings, extra_plugins=[Failing()]))
    await services.db.start()
    app = create_app(world.settings, services=services)
    client: httpx.AsyncClient = new_client(app)
    director = "director.college-al-khawarizmi@test.ma"
    token = await world.token(director)
    example.RECEIVED.clear()
    try:
        response = await client.post(
            "/t/college-al-khawarizmi/api/v1/example/notes",
            headers={"authorization": f"Bearer {token}"},
            json={"body": "kept despite a broken listener"},
        )
    finally:
        await client.aclose()
        await services.db.stop()
    assert response.status_code == 201, response.text
    stored = await world.sql("SELECT COUNT(*) FROM example_note WHERE body = 'kept despite a broken listener'")
    assert stored == 1
    assert [e.name for e in example.RECEIVED] == ["example.note_added"], "the other listener still ran"
    assert any("event handler failed" in r.getMessage() for r in caplog.records)
    body, _ = metrics_payload()
    line = 'madrasa_event_handler_failures_total{event="example.note_added",plugin="failing"}'
    assert line in body.decode(), "the failure is counted in /metrics"


def test_the_example_plugin_declares_its_own_hookspec() -> None:
    from madrasa_example import hookspecs

    assert getattr(hookspecs.madrasa_example_greetings, "madrasa_spec", None) is not None
