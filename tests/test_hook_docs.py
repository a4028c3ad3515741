"""``docs/plugin_hooks.md`` documents every hook of ``core.hookspecs``, with the right signature.

The checker is a plain function, ``check_hook_docs(doc_text, specs)``, returning a list of
problems; the tests run it on the real documentation and on fabricated texts to show it bites.
"""

from __future__ import annotations

import inspect
import re
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from core import hookspecs
from core.plugins import PluginHost

DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "plugin_hooks.md"
PROJECT = hookspecs.hookspec.project_name  # "madrasa"
SPEC_ATTR = f"{PROJECT}_spec"  # pluggy's HookspecMarker stores its options under "<project>_spec"

HEADING_RE = re.compile(r"^### (?P<name>madrasa_\w+)\((?P<params>[^()]*)\)\s*$")
FIRSTRESULT_RE = re.compile(r"^firstresult:\s*(?P<flag>yes|no)\b", re.MULTILINE)
FENCE_RE = re.compile(r"^(```|~~~)")
SECTION_END_RE = re.compile(r"^#{1,3} ")


class Problem(NamedTuple):
    """One mismatch between the documentation and the hookspecs."""

    kind: str  # undocumented, unknown, signature, docstring, firstresult, malformed, duplicate, structure
    hook: str
    message: str

    def __str__(self) -> str:
        return f"{self.hook}: {self.message}"


class DocSection(NamedTuple):
    """A ``### madrasa_…(…)`` section of the documentation."""

    name: str
    params: tuple[str, ...]
    body: str
    line: int


# --- collecting -------------------------------------------------------------------------------


def collect_specs(module: types.ModuleType) -> dict[str, Callable[..., Any]]:
    """The hookspecs of a module: ``madrasa_*`` functions carrying pluggy's spec marker."""
    return {
        name: fn
        for name, fn in vars(module).items()
        if name.startswith("madrasa_") and callable(fn) and getattr(fn, SPEC_ATTR, None) is not None
    }


def spec_params(fn: Callable[..., Any]) -> tuple[str, ...]:
    """Parameter names of a hookspec, in order."""
    return tuple(inspect.signature(fn).parameters)


def is_firstresult(fn: Callable[..., Any]) -> bool:
    """Whether the hookspec was declared with ``firstresult=True``."""
    return bool(getattr(fn, SPEC_ATTR, {}).get("firstresult", False))


def _outside_fences(text: str) -> list[tuple[int, str]]:
    """``(line number, line)`` pairs of lines not inside a fenced code block (fences excluded)."""
    out: list[tuple[int, str]] = []
    in_fence = False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE_RE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence:
            out.append((number, line))
    return out


def parse_sections(doc_text: str) -> tuple[list[DocSection], list[Problem]]:
    """Every hook section of the documentation, and headings that look like hooks but do not parse."""
    lines = doc_text.splitlines()
    visible = _outside_fences(doc_text)
    starts: list[tuple[int, str, tuple[str, ...]]] = []
    malformed: list[Problem] = []
    ends: list[int] = []
    for number, line in visible:
        if SECTION_END_RE.match(line):
            ends.append(number)
        if not line.startswith("### madrasa_"):
            continue
        match = HEADING_RE.match(line)
        if match is None:
            name = re.match(r"### (madrasa_\w*)", line)
            malformed.append(
                Problem(
                    "malformed",
                    name.group(1) if name else line,
                    f"line {number}: heading {line!r} is not of the form '### madrasa_name(arg1, arg2)'",
                )
            )
            continue
        raw = match.group("params").strip()
        params = tuple(p.strip() for p in raw.split(",")) if raw else ()
        starts.append((number, match.group("name"), params))
    sections = []
    for number, name, params in starts:
        end = next((e for e in ends if e > number), len(lines) + 1)
        body = "\n".join(lines[number : end - 1])
        sections.append(DocSection(name, params, body, number))
    return sections, malformed


# --- checking ---------------------------------------------------------------------------------


def check_hook_docs(doc_text: str, specs: Mapping[str, Callable[..., Any]]) -> list[Problem]:
    """Everything that differs between the documentation and the hookspecs; empty when they agree."""
    sections, problems = parse_sections(doc_text)
    documented: dict[str, DocSection] = {}
    for section in sections:
        if section.name in documented:
            problems.append(
                Problem(
                    "duplicate",
                    section.name,
                    f"documented twice (lines {documented[section.name].line} and {section.line})",
                )
            )
            continue
        documented[section.name] = section

    for name, fn in specs.items():
        expected = spec_params(fn)
        if not (inspect.getdoc(fn) or "").strip():
            problems.append(Problem("docstring", name, "the hookspec has no docstring"))
        section = documented.get(name)
        if section is None:
            problems.append(
                Problem(
                    "undocumented",
                    name,
                    f"hookspec is not documented; expected a heading '### {name}({', '.join(expected)})'",
                )
            )
            continue
        if section.params != expected:
            problems.append(
                Problem(
                    "signature",
                    name,
                    f"parameters differ: expected ({', '.join(expected)}), documented ({', '.join(section.params)})",
                )
            )
        if not re.search(r"^Returns:\s*\S", section.body, re.MULTILINE):
            problems.append(Problem("structure", name, "the section has no 'Returns: ...' line"))
        if "```" not in section.body:
            problems.append(Problem("structure", name, "the section has no example code block"))
        flag = FIRSTRESULT_RE.search(section.body)
        expected_flag = "yes" if is_firstresult(fn) else "no"
        if flag is None:
            problems.append(Problem("firstresult", name, f"the section does not say 'firstresult: {expected_flag}'"))
        elif flag.group("flag") != expected_flag:
            problems.append(
                Problem("firstresult", name, f"firstresult: expected {expected_flag}, documented {flag.group('flag')}")
            )

    for name, section in documented.items():
        if name not in specs:
            problems.append(
                Problem("unknown", name, f"documented at line {section.line} but no such hookspec in core.hookspecs")
            )
    return problems


def _report(problems: list[Problem]) -> str:
    return "docs/plugin_hooks.md is out of date:\n" + "\n".join(f"  - {p}" for p in problems)


def _real() -> tuple[str, dict[str, Callable[..., Any]]]:
    return DOC_PATH.read_text(encoding="utf-8"), collect_specs(hookspecs)


def _of_kind(kind: str) -> list[Problem]:
    doc, specs = _real()
    return [p for p in check_hook_docs(doc, specs) if p.kind == kind]


# --- the real documentation -------------------------------------------------------------------


def test_hookspecs_are_found() -> None:
    specs = collect_specs(hookspecs)
    assert "madrasa_plugin_info" in specs
    assert "madrasa_handle_event" in specs
    assert "hookspec" not in specs and "hookimpl" not in specs


def test_every_madrasa_function_in_hookspecs_is_a_spec() -> None:
    unmarked = [
        name
        for name, obj in vars(hookspecs).items()
        if name.startswith("madrasa_") and inspect.isfunction(obj) and getattr(obj, SPEC_ATTR, None) is None
    ]
    assert not unmarked, f"functions in core.hookspecs without @hookspec: {unmarked}"


def test_every_hookspec_is_documented() -> None:
    problems = _of_kind("undocumented")
    assert not problems, _report(problems)


def test_every_documented_hook_exists() -> None:
    problems = _of_kind("unknown") + _of_kind("malformed") + _of_kind("duplicate")
    assert not problems, _report(problems)


def test_documented_parameters_match_the_signatures() -> None:
    problems = _of_kind("signature")
    assert not problems, _report(problems)


def test_every_hookspec_has_a_docstring() -> None:
    problems = _of_kind("docstring")
    assert not problems, _report(problems)


def test_firstresult_is_documented() -> None:
    problems = _of_kind("firstresult")
    assert not problems, _report(problems)
    doc, specs = _real()
    sections = {s.name: s for s in parse_sections(doc)[0]}
    for name, fn in specs.items():
        if is_firstresult(fn):
            assert "firstresult" in sections[name].body, f"{name} is firstresult; its section must say so"


def test_every_section_has_returns_and_an_example() -> None:
    problems = _of_kind("structure")
    assert not problems, _report(problems)


def test_documentation_agrees_with_hookspecs() -> None:
    doc, specs = _real()
    problems = check_hook_docs(doc, specs)
    assert not problems, _report(problems)


def test_sections_follow_the_hookspec_order() -> None:
    doc, specs = _real()
    documented = [s.name for s in parse_sections(doc)[0]]
    assert documented == list(specs), f"expected order {list(specs)}, documented {documented}"


def test_plugin_manager_knows_every_spec() -> None:
    host = PluginHost()
    for name, fn in collect_specs(hookspecs).items():
        caller = getattr(host.pm.hook, name, None)
        assert caller is not None, f"host.pm.hook has no {name}"
        assert caller.spec is not None, f"{name} is not registered as a hookspec"
        assert tuple(caller.spec.argnames) == spec_params(fn), (
            f"{name}: expected {spec_params(fn)}, pluggy has {caller.spec.argnames}"
        )
        assert bool(caller.spec.opts.get("firstresult")) == is_firstresult(fn), name


# --- the checker bites ------------------------------------------------------------------------

FAKE_SPECS = '''
import pluggy

hookspec = pluggy.HookspecMarker("madrasa")


@hookspec(firstresult=True)
def madrasa_alpha() -> str:
    """Alpha."""


@hookspec
def madrasa_beta(ctx, child_id):
    """Beta."""


@hookspec
def madrasa_gamma(event):
    pass


def madrasa_not_a_spec():
    """No marker: not a hook."""
'''

FAKE_DOC = """# Hooks

### madrasa_alpha()

Returns: a string.

firstresult: yes.

```python
# a comment that looks like a heading must not end the section
@hookimpl
def madrasa_alpha():
    return "a"
```

### madrasa_beta(ctx, child_id)

Returns: a list.

firstresult: no.

```python
def madrasa_beta(ctx, child_id): ...
```
"""


def _fake_specs() -> dict[str, Callable[..., Any]]:
    module = types.ModuleType("fake_hookspecs")
    exec(compile(FAKE_SPECS, "fake_hookspecs.py", "exec"), module.__dict__)
    return collect_specs(module)


def test_checker_reports_a_missing_hook() -> None:
    specs = _fake_specs()
    assert set(specs) == {"madrasa_alpha", "madrasa_beta", "madrasa_gamma"}
    problems = check_hook_docs(FAKE_DOC, specs)
    missing = [p for p in problems if p.kind == "undocumented"]
    assert [p.hook for p in missing] == ["madrasa_gamma"]
    assert "### madrasa_gamma(event)" in missing[0].message
    assert [p.hook for p in problems if p.kind == "docstring"] == ["madrasa_gamma"]
    assert not [p for p in problems if p.hook != "madrasa_gamma"], problems


def test_checker_reports_wrong_parameters_unknown_hooks_and_firstresult() -> None:
    specs = _fake_specs()
    doc = (
        FAKE_DOC.replace("### madrasa_beta(ctx, child_id)", "### madrasa_beta(child_id, ctx)").replace(
            "firstresult: yes.", "firstresult: no."
        )
        + "\n### madrasa_delta(x)\n\nReturns: nothing.\n\nfirstresult: no.\n\n```python\npass\n```\n"
        + "\n### madrasa_gamma event\n"
    )
    problems = check_hook_docs(doc, specs)
    by_kind = {p.kind: p for p in problems}
    signature = by_kind["signature"]
    assert signature.hook == "madrasa_beta"
    assert "expected (ctx, child_id)" in signature.message and "documented (child_id, ctx)" in signature.message
    assert by_kind["unknown"].hook == "madrasa_delta"
    assert by_kind["firstresult"].hook == "madrasa_alpha"
    assert "expected yes, documented no" in by_kind["firstresult"].message
    assert by_kind["malformed"].hook == "madrasa_gamma"
    assert "madrasa_beta" in str(signature)


def test_checker_accepts_matching_text() -> None:
    specs = {k: v for k, v in _fake_specs().items() if k != "madrasa_gamma"}
    assert check_hook_docs(FAKE_DOC, specs) == []
