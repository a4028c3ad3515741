"""The code on the plugin pages is real: every Python example is an excerpt of a file that runs.

Each ```python block of ``docs/plugin_hooks.md`` and ``docs/plugin_api.md`` starts with a comment
naming a file of the repository (``# tests/example_plugin/madrasa_example/plugin.py``); the rest,
split at lines holding only ``...``, must appear verbatim in that file. The example plugin itself
is installed by ``make test`` and exercised by ``tests/test_plugin_contract.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "docs" / "plugin_hooks.md", ROOT / "docs" / "plugin_api.md"]
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)
SOURCE = re.compile(r"^# (?P<path>[\w./-]+\.py)$")


def excerpt_problems(page_text: str, root: Path) -> list[str]:
    """Blocks that name no file, name a missing one, or hold text the file doesn't have."""
    problems = []
    for number, match in enumerate(BLOCK.finditer(page_text), start=1):
        lines = match.group(1).splitlines()
        source = SOURCE.match(lines[0]) if lines else None
        if source is None:
            problems.append(f"block {number}: the first line must be '# <path of the file it quotes>'")
            continue
        path = root / source.group("path")
        if not path.is_file():
            problems.append(f"block {number}: {source.group('path')} does not exist")
            continue
        text = path.read_text()
        chunk: list[str] = []
        for line in [*lines[1:], "..."]:
            if line.strip() == "...":
                piece = "\n".join(chunk).strip("\n")
                if piece and piece not in text:
                    problems.append(f"block {number}: not found in {source.group('path')}:\n{piece}")
                chunk = []
            else:
                chunk.append(line.rstrip())
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_example_is_an_excerpt_of_a_real_file(page: Path) -> None:
    text = page.read_text()
    assert BLOCK.search(text), f"{page.name} has no Python example"
    problems = excerpt_problems(text, ROOT)
    assert not problems, "\n\n".join(problems)


def test_the_excerpt_check_bites(tmp_path: Path) -> None:
    (tmp_path / "real.py").write_text("def a():\n    return 1\n\n\ndef b():\n    return 2\n")
    good = "```python\n# real.py\ndef a():\n    return 1\n...\ndef b():\n```\n"
    assert excerpt_problems(good, tmp_path) == []
    renamed = "```python\n# real.py\ndef a():\n    return 3\n```\n"
    assert "not found in real.py" in excerpt_problems(renamed, tmp_path)[0]
    missing = "```python\n# gone.py\nx = 1\n```\n"
    assert excerpt_problems(missing, tmp_path) == ["block 1: gone.py does not exist"]
    unnamed = "```python\nx = 1\n```\n"
    assert "first line" in excerpt_problems(unnamed, tmp_path)[0]
