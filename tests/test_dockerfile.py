"""The image's recipe, checked without a container builder: the Dockerfile is parsed (``dockerfile-parse``) and
its promises asserted — a base pinned by exact version, a final stage without compilers that runs as a fixed
non-root uid, the report-card fonts where core looks for them, ``madrasa`` as the entry point — and every file
it copies from the build context exists and is not left out by ``.dockerignore`` (matched here the way
Docker matches it: the last pattern that matches a path or one of its parents decides).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from core.cli import build_parser
from plugins.grades.bulletins.fonts import FONT_FILES

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
#: An official Python image by exact version and Debian release, optionally pinned by digest as well.
PINNED_BASE = re.compile(r"^python:3\.\d+\.\d+-slim-(bookworm|trixie)(@sha256:[0-9a-f]{64})?$")
#: Packages and programs that make a compiler toolchain.
COMPILERS = re.compile(r"\b(build-essential|gcc|g\+\+|clang|cc|make|cpp|gfortran|rustc|cargo|libc6-dev|\w+-dev)\b")


@dataclass
class Stage:
    """One ``FROM`` and the instructions after it."""

    image: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def values(self, instruction: str) -> list[str]:
        """The values of every ``instruction`` (``RUN``, ``COPY``, …) of this stage, in order."""
        return [value for name, value in self.instructions if name == instruction]


@cache
def parser() -> DockerfileParser:
    """The parsed Dockerfile (build arguments resolved to their defaults)."""
    return DockerfileParser(path=str(DOCKERFILE))


def stages() -> list[Stage]:
    """The build stages, in order; the last is the image."""
    df = parser()
    images = iter(df.parent_images)
    found: list[Stage] = []
    for item in df.structure:
        instruction, value = item["instruction"], item["value"]
        if instruction == "FROM":
            words = value.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else ""
            found.append(Stage(image=next(images), name=name))
        elif found and instruction != "COMMENT":
            found[-1].instructions.append((instruction, value))
    return found


def copy_sources(value: str) -> tuple[dict[str, str], list[str]]:
    """The ``--flags`` and the source paths of a ``COPY`` (the last word is the destination)."""
    words = json.loads(value) if value.startswith("[") else shlex.split(value)
    flags = dict(w[2:].split("=", 1) for w in words if w.startswith("--"))
    paths = [w for w in words if not w.startswith("--")]
    return flags, paths[:-1]


# --------------------------------------------------------------------------- .dockerignore, Docker's way


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A ``.dockerignore`` pattern as a regular expression (``**`` spans folders, ``*`` and ``?`` do not)."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def ignore_rules(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    """``(re-included, pattern)`` per rule of a ``.dockerignore`` text, in order."""
    rules = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.removeprefix("!").strip().strip("/")
        rules.append((negated, _pattern_regex(pattern)))
    return rules


def ignored(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether the build context leaves ``path`` out: the last rule matching it or a parent folder decides."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for negated, regex in rules:
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            excluded = not negated
    return excluded


@cache
def tracked_files() -> list[str]:
    """The repository's files under version control."""
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line]


# --------------------------------------------------------------------------- the tests


def test_every_stage_starts_from_a_pinned_slim_python() -> None:
    found = stages()
    assert len(found) >= 2, "a multi-stage build: a builder stage and the image"
    for stage in found:
        assert PINNED_BASE.match(stage.image), f"base {stage.image!r} is not pinned to python:3.x.y-slim-<debian>"
    assert found[-1].image == found[0].image, "the image runs on the base its wheels were built for"


def test_the_final_stage_runs_as_a_fixed_unprivileged_uid() -> None:
    image = stages()[-1]
    users = image.values("USER")
    assert users, "the final stage names a USER"
    uid, _, gid = users[-1].partition(":")
    # numeric, so Kubernetes' runAsNonRoot can check it without reading /etc/passwd
    assert uid.isdigit() and int(uid) > 0, f"USER {users[-1]!r} is not a numeric non-root uid"
    assert not gid or (gid.isdigit() and int(gid) > 0)
    assert any(f"--uid {uid}" in run for run in image.values("RUN")), "the user is created with that uid"
    chart_uid = re.search(r"runAsUser: (\d+)", (ROOT / "helm/madrasa/values.yaml").read_text())
    assert chart_uid is not None and chart_uid.group(1) == uid, "the chart runs pods as the image's uid"


def test_compilers_stay_in_the_builder_stage() -> None:
    found = stages()
    builder = found[0]
    assert any(COMPILERS.search(run) for run in builder.values("RUN")), "the builder stage is where wheels compile"
    image = found[-1]
    for run in image.values("RUN"):
        assert "apt-get install" not in run and not COMPILERS.search(run), f"the final stage installs: {run}"
    for value in image.values("COPY"):
        flags, sources = copy_sources(value)
        if flags.get("from") == builder.name:
            assert sources == ["/opt/madrasa"], f"only the virtual environment comes from the builder: {sources}"
    assert COMPILERS.search("apt-get install -y build-essential") and not COMPILERS.search("pip install madrasa")


def test_the_entry_point_is_madrasa_and_serves_by_default() -> None:
    df = parser()
    image = stages()[-1]
    assert json.loads(image.values("ENTRYPOINT")[-1]) == ["madrasa"]
    assert json.loads(image.values("CMD")[-1]) == ["serve"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["madrasa"] == "core.cli:main"
    for command in ("serve", "worker", "migrate", "purge"):
        assert build_parser(None).parse_args([command]).command == command
    # `serve` listens where a container can be reached
    assert df.envs["MADRASA_HOST"] == "0.0.0.0"
    assert image.values("EXPOSE") == [df.envs["MADRASA_PORT"]]


def test_the_report_card_fonts_are_in_the_image_where_core_looks() -> None:
    found = stages()
    env = parser().envs
    font_dir, font_cache = env["MADRASA_FONT_DIR"], env["MADRASA_FONT_CACHE"]
    fonts_stage = next(stage for stage in found if stage.name == "fonts")
    recipe = " ".join(fonts_stage.values("RUN"))
    assert "fonts-noto-core" in recipe
    for names in FONT_FILES.values():
        for name in names:
            assert name in recipe, f"{name} is not copied out of the fonts stage"
    copies = [(*copy_sources(value), value.split()[-1]) for value in found[-1].values("COPY")]
    assert any(flags.get("from") == "fonts" and dest == font_dir for flags, _, dest in copies), (
        f"no COPY --from=fonts into MADRASA_FONT_DIR ({font_dir})"
    )
    # the root file system is read-only in the chart: prepared fonts go to the /tmp volume
    assert font_cache.startswith("/tmp/")


def test_every_copied_file_is_in_the_repository_and_the_build_context() -> None:
    rules = ignore_rules(DOCKERIGNORE.read_text())
    files = tracked_files()
    copied: set[str] = set()
    for stage in stages():
        for value in stage.values("COPY") + stage.values("ADD"):
            flags, sources = copy_sources(value)
            if "from" in flags:
                continue
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
                assert not ignored(source, rules), f"COPY {source}: .dockerignore leaves it out"
                inside = [f for f in files if f == source or f.startswith(source.rstrip("/") + "/")]
                assert inside, f"COPY {source}: nothing under version control there"
                left_out = [f for f in inside if ignored(f, rules)]
                assert not left_out, f"COPY {source}: .dockerignore leaves out {left_out[:5]}"
                copied.add(source.rstrip("/"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages <= copied, f"packages the wheel needs but the builder never receives: {packages - copied}"
    assert {"pyproject.toml", project["project"]["readme"]} <= copied


def test_the_build_context_leaves_out_what_the_image_does_not_need() -> None:
    rules = ignore_rules(DOCKERIGNORE.read_text())
    for path in ("tests/test_cli.py", ".git/config", ".venv/bin/python", "var/madrasa.sqlite3", "helm/madrasa"):
        assert ignored(path, rules), f"{path} would be sent to the builder"
    for path in ("core/__pycache__/app.cpython-312.pyc", "plugins/grades/x.pyc"):
        assert ignored(path, rules)
    assert not ignored("core/templates/base.html", rules)


@pytest.mark.parametrize(
    ("rules", "path", "expected"),
    [
        ("*\n!core/", "core/app.py", False),
        ("*\n!core/", "tests/x.py", True),
        ("*\n!core/\n**/__pycache__", "core/a/__pycache__/b.pyc", True),
        ("docs", "docs/a/b.md", True),
        ("*.md", "a/README.md", False),  # `*` stops at a folder, as in Docker
        ("**/*.md", "a/README.md", True),
        ("docs\n!docs/keep.md", "docs/keep.md", False),
    ],
)
def test_the_ignore_matcher_follows_docker(rules: str, path: str, expected: bool) -> None:
    assert ignored(path, ignore_rules(rules)) is expected
