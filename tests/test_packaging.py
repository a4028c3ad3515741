"""What an installed madrasa carries besides its Python modules: every template, static file and catalogue.

An editable install (``make``) reads them from the source tree; a wheel or a container image gets only what
``[tool.setuptools.package-data]`` names, so a file it misses (the translation catalogues once were) would
vanish from a real deployment without any test noticing.
"""

from __future__ import annotations

import tomllib
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parent.parent


def package_data_globs() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return list(config["tool"]["setuptools"]["package-data"]["*"])


def covered(relative: PurePosixPath, globs: list[str]) -> bool:
    """Whether a file, relative to its package folder, matches one of setuptools' package-data globs."""
    return any(_match(relative, g) for g in globs)


def _match(relative: PurePosixPath, pattern: str) -> bool:
    # ``dir/**/*`` covers everything below ``dir``; ``*.ext`` a file of the package folder itself.
    if pattern.endswith("/**/*"):
        return relative.parts[0] == pattern.split("/", 1)[0] and len(relative.parts) > 1
    return len(relative.parts) == 1 and relative.match(pattern)


def test_every_data_file_of_every_package_is_shipped() -> None:
    globs = package_data_globs()
    missing = []
    for top in ("core", "plugins", "tenants", "admin_ui", "devtools"):
        for path in (ROOT / top).rglob("*"):
            if not path.is_file() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
                continue
            # the nearest package folder (``core`` itself is a namespace package, without ``__init__.py``)
            package = next((p for p in path.parents if (p / "__init__.py").exists() and top in p.parts), ROOT / top)
            if not covered(PurePosixPath(path.relative_to(package).as_posix()), globs):
                missing.append(str(path.relative_to(ROOT)))
    assert not missing, "not in [tool.setuptools.package-data]:\n" + "\n".join(sorted(missing))


def test_the_check_bites() -> None:
    assert covered(PurePosixPath("locale/fr/LC_MESSAGES/messages.po"), ["locale/**/*"])
    assert not covered(PurePosixPath("locale/fr/LC_MESSAGES/messages.po"), ["templates/**/*", "static/**/*"])
