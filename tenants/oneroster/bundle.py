"""Reading a OneRoster CSV bundle (a zip): the manifest, every file's header, cells and cross-file references.

Pure: bytes in, a :class:`Bundle` and every :class:`Issue` out. Nothing here touches the database.

OneRoster 1.1 bundles are taken, not refused: many tools still export 1.1. A manifest saying
``oneroster.version,1.1`` switches to the 1.1 header rows (users carry ``orgSourcedIds`` and ``role``;
no roles.csv; shorter gradebook files), and the tolerant reading (the default) accepts the known
quirks of real exports with a warning each: ``manifest.version`` ``1``, ``status``/``dateLastModified``
filled in bulk mode, trailing empty cells, vocabulary values in the wrong case. Delta files are refused
(only whole bundles are imported, all or nothing).

Hostile input: each file is read one record at a time, and reading stops with an error at the first
record past :data:`MAX_ROWS`, at a record far wider than its header (counted before it is built), or at
a malformed record; an archive naming the same member twice is refused (which copy is meant would be a
guess). Free-text cells (names, titles, ``metadata.*``) that a spreadsheet would run as a formula are refused.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections import Counter
from collections.abc import Iterator
from datetime import date
from typing import Literal

import msgspec

from tenants.oneroster.spec import (
    DATE_RE,
    GRADEBOOK,
    IGNORED,
    MANIFEST_FILES,
    MANIFEST_HEADER,
    MANIFEST_OPTIONAL,
    MODES,
    ONLY_12,
    READ_ORDER,
    SOURCED_ID_RE,
    SPECS_11,
    SPECS_12,
    YEAR_RE,
    FileSpec,
    formula_start,
    free_text,
)

#: Limits that keep a hostile archive from exhausting the server.
MAX_MEMBERS = 64
MAX_UNCOMPRESSED = 64 * 1024 * 1024
MAX_ROWS = 200_000
#: Cells a header row may have (the widest spec has 22 columns; the rest is room for ``metadata.*``).
MAX_HEADER_CELLS = 200
#: Cells a data row may have beyond its header before reading stops (commas inside quoted list cells count).
MAX_EXTRA_CELLS = 1000
#: Rows a manifest may have (a 1.2 manifest has 25).
MAX_MANIFEST_ROWS = 200
#: How many problems a report lists at most (the count says how many there were).
MAX_ISSUES = 1000
MANIFEST = "manifest.csv"
Severity = Literal["error", "warning"]


class Msg(str):
    """A message in English that remembers its template and values, so a page can show it in another language."""

    template: str
    params: dict[str, str]


def tr(template: str, **params: object) -> Msg:
    """A message from a template (``str.format`` syntax) and its values; the template is the translation key."""
    message = Msg(template.format(**params))
    message.template = template
    message.params = {k: str(v) for k, v in params.items()}
    return message


class Issue(msgspec.Struct):
    """A problem: the file, its 1-based line (the header is line 1; 0 for the file as a whole) and the column.

    ``message`` is English; ``template`` and ``params`` give the same message for translation.
    """

    file: str
    row: int
    column: str
    message: str
    severity: Severity = "error"
    template: str = ""
    params: dict[str, str] = {}

    def __post_init__(self) -> None:
        if isinstance(self.message, Msg) and not self.template:
            self.template = self.message.template
            self.params = self.message.params
            self.message = str(self.message)


class Bundle(msgspec.Struct):
    """A readable bundle: its version, file modes and the rows of the files madrasa reads."""

    version: str
    modes: dict[str, str]
    #: file name (without ``.csv``) → rows as column → value, plus ``"_row"`` (the line number)
    rows: dict[str, list[dict[str, str]]]
    #: The sending system (``source.systemCode``, else ``source.systemName``)
    system: str = ""

    def ids(self, name: str) -> set[str]:
        """The sourcedIds of a file."""
        return {r["sourcedId"] for r in self.rows.get(name, [])}

    def by_id(self, name: str) -> dict[str, dict[str, str]]:
        """A file's rows by sourcedId."""
        return {r["sourcedId"]: r for r in self.rows.get(name, [])}


def split_list(value: str) -> list[str]:
    """A comma-separated list cell as its items (stripped)."""
    return [item.strip() for item in value.split(",")] if value.strip() else []


def _decode(name: str, data: bytes, issues: list[Issue]) -> str | None:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        issues.append(Issue(name, 0, "", tr("the file is UTF-16: OneRoster files are UTF-8")))
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        issues.append(Issue(name, 0, "", tr("not UTF-8 text (byte {start})", start=exc.start)))
        return None


#: One physical line with its end (``\r\n``, ``\r`` or ``\n``), or the unterminated last one; read from the
#: decoded text in place (a ``StringIO`` would hold a second, four-byte-per-character copy of it).
_LINE = re.compile(r"[^\r\n]*(?:\r\n?|\n)|[^\r\n]+")


class _Stop(Exception):
    """Reading a file stopped early; the issue recorded says why."""


class _Records:
    """A file's non-empty CSV records, read one at a time (never the whole file as a list).

    Each record may hold at most ``max_cells`` cells, counted by the commas of the lines it spans
    before the CSV reader builds it, so one endless row cannot exhaust memory either. The caller
    narrows ``max_cells`` once the header row is known.
    """

    def __init__(self, name: str, text: str, issues: list[Issue]) -> None:
        self.name = name
        self.issues = issues
        self.max_cells = MAX_HEADER_CELLS
        self.count = 0
        self._commas = 0
        self._blank = 0
        self._reader = csv.reader(self._lines(text), strict=True)

    def _lines(self, text: str) -> Iterator[str]:
        for match in _LINE.finditer(text):
            line = match.group()
            self._commas += line.count(",")
            if self._commas >= self.max_cells:
                record = self.count + 1
                self.issues.append(
                    Issue(
                        self.name,
                        record,
                        "",
                        tr(
                            "row {record} has more than {limit} cells: reading stopped (a row has as many cells "
                            "as the header)",
                            record=record,
                            limit=self.max_cells,
                        ),
                    )
                )
                raise _Stop
            yield line

    def __iter__(self) -> Iterator[list[str]]:
        return self

    def __next__(self) -> list[str]:
        while True:
            self._commas = 0
            try:
                record = next(self._reader)
            except csv.Error as exc:
                self.issues.append(Issue(self.name, 0, "", tr("not a valid CSV file: {exc}", exc=exc)))
                raise _Stop from None
            if record:
                self.count += 1
                return record
            self._blank += 1
            if self._blank > MAX_ROWS:
                self.issues.append(
                    Issue(self.name, 0, "", tr("more than {limit} empty lines: reading stopped", limit=MAX_ROWS))
                )
                raise _Stop


def open_zip(data: bytes) -> tuple[dict[str, bytes], list[Issue]]:
    """The CSV members of the archive by base name (``orgs.csv`` …), or the problems that stop reading it."""
    issues: list[Issue] = []
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError):
        return {}, [Issue("bundle", 0, "", tr("this is not a zip archive: a OneRoster CSV bundle is a .zip file"))]
    members = [i for i in archive.infolist() if not i.is_dir() and not i.filename.startswith("__MACOSX/")]
    if len(members) > MAX_MEMBERS:
        return {}, [
            Issue(
                "bundle",
                0,
                "",
                tr(
                    "the archive holds {count} files; at most {limit}",
                    count=len(members),
                    limit=MAX_MEMBERS,
                ),
            )
        ]
    total = sum(i.file_size for i in members)
    if total > MAX_UNCOMPRESSED:
        return {}, [
            Issue(
                "bundle",
                0,
                "",
                tr(
                    "the archive unpacks to {total} bytes; at most {limit} bytes are read",
                    total=total,
                    limit=MAX_UNCOMPRESSED,
                ),
            )
        ]
    folders = {i.filename.rsplit("/", 1)[0] if "/" in i.filename else "" for i in members}
    if len(folders) > 1:
        return {}, [
            Issue("bundle", 0, "", tr("the files must sit together at the top of the archive (or in one folder)"))
        ]
    named = Counter(i.filename for i in members)
    if any(count > 1 for count in named.values()):
        template = "{base} is in the archive {count} times: which copy is meant is ambiguous, so nothing is read"
        return {}, [
            Issue(name.rsplit("/", 1)[-1], 0, "", tr(template, base=name.rsplit("/", 1)[-1], count=count))
            for name, count in sorted(named.items())
            if count > 1
        ]
    files: dict[str, bytes] = {}
    for info in members:
        base = info.filename.rsplit("/", 1)[-1]
        try:
            with archive.open(info) as member:
                content = member.read(MAX_UNCOMPRESSED + 1)
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError) as exc:
            issues.append(Issue(base, 0, "", tr("cannot be read from the archive: {exc}", exc=exc)))
            continue
        if len(content) > info.file_size:
            issues.append(Issue(base, 0, "", tr("the archive lies about this file's size")))
            continue
        files[base] = content
    return files, issues


def read_manifest(files: dict[str, bytes], issues: list[Issue]) -> tuple[str, dict[str, str], str] | None:
    """``(version, modes, source system)`` from ``manifest.csv``; ``None`` when it cannot be used."""
    if MANIFEST not in files:
        issues.append(Issue(MANIFEST, 0, "", tr("manifest.csv is missing: every OneRoster package needs one")))
        return None
    text = _decode(MANIFEST, files[MANIFEST], issues)
    if text is None:
        return None
    records = _Records(MANIFEST, text, issues)
    props: dict[str, str] = {}
    lines: dict[str, int] = {}
    try:
        header = next(records, None)
        if header is None or tuple(c.strip() for c in header) != MANIFEST_HEADER:
            found = ",".join(header)[:200] if header else "(empty file)"
            issues.append(
                Issue(MANIFEST, 1, "", tr("the header row must be propertyName,value (found {found})", found=found))
            )
            return None
        records.max_cells = len(MANIFEST_HEADER) + MAX_EXTRA_CELLS
        _read_properties(records, props, lines, issues)
    except _Stop:
        return None
    return _check_manifest(props, lines, issues)


def _read_properties(records: _Records, props: dict[str, str], lines: dict[str, int], issues: list[Issue]) -> None:
    """The manifest's ``propertyName,value`` rows, at most :data:`MAX_MANIFEST_ROWS` of them."""
    for line, record in enumerate(records, start=2):
        if line > MAX_MANIFEST_ROWS + 1:
            issues.append(Issue(MANIFEST, line, "", tr("more than {limit} manifest rows", limit=MAX_MANIFEST_ROWS)))
            raise _Stop
        if len(record) != 2:
            issues.append(
                Issue(MANIFEST, line, "", tr("a manifest row has 2 cells, this one {count}", count=len(record)))
            )
            continue
        key, value = record[0].strip(), record[1].strip()
        if key in props:
            issues.append(Issue(MANIFEST, line, "propertyName", tr("{key} is given twice", key=key)))
            continue
        props[key], lines[key] = value, line


def _check_manifest(
    props: dict[str, str], lines: dict[str, int], issues: list[Issue]
) -> tuple[str, dict[str, str], str] | None:
    """The version, file modes and source system the manifest's properties give, or ``None`` on an error."""
    before = len(issues)
    version = props.get("oneroster.version", "")
    manifest_version = props.get("manifest.version")
    if manifest_version is None:
        issues.append(Issue(MANIFEST, 0, "manifest.version", tr("manifest.version is missing (it must be 1.0)")))
    elif manifest_version == "1" and version == "1.1":
        issues.append(
            Issue(MANIFEST, lines["manifest.version"], "value", tr("manifest.version 1 read as 1.0"), "warning")
        )
    elif manifest_version != "1.0":
        issues.append(
            Issue(
                MANIFEST,
                lines["manifest.version"],
                "value",
                tr("manifest.version must be 1.0, not {manifest_version!r}", manifest_version=manifest_version),
            )
        )
    if "oneroster.version" not in props:
        issues.append(Issue(MANIFEST, 0, "oneroster.version", tr("oneroster.version is missing (this reads 1.2)")))
    elif version == "1.1":
        issues.append(
            Issue(
                MANIFEST,
                lines["oneroster.version"],
                "value",
                tr(
                    "OneRoster 1.1 bundle: read in the tolerant 1.1 mode "
                    "(users carry their orgs and role; no roles.csv)"
                ),
                "warning",
            )
        )
    elif version != "1.2":
        issues.append(
            Issue(
                MANIFEST,
                lines["oneroster.version"],
                "value",
                tr("oneroster.version {version!r}: only 1.2 and 1.1 are read", version=version),
            )
        )
    known = set(MANIFEST_FILES) if version != "1.1" else set(MANIFEST_FILES) - ONLY_12
    modes: dict[str, str] = {}
    for key, value in props.items():
        if key in ("manifest.version", "oneroster.version", *MANIFEST_OPTIONAL):
            continue
        if not key.startswith("file."):
            issues.append(
                Issue(MANIFEST, lines[key], "propertyName", tr("unknown manifest property {key}", key=key), "warning")
            )
            continue
        name = key.removeprefix("file.")
        if name not in known:
            issues.append(
                Issue(
                    MANIFEST,
                    lines[key],
                    "propertyName",
                    tr("unknown file {name} for OneRoster {version}", name=name, version=version),
                )
            )
            continue
        if value not in MODES:
            issues.append(
                Issue(
                    MANIFEST,
                    lines[key],
                    "value",
                    tr("{key} must be absent, bulk or delta, not {value!r}", key=key, value=value),
                )
            )
            continue
        if value == "delta":
            issues.append(
                Issue(
                    MANIFEST,
                    lines[key],
                    "value",
                    tr("{key} is delta: only bulk bundles are imported (nothing partial)", key=key),
                )
            )
            continue
        modes[name] = value
    for name in sorted(known - modes.keys() - {k.removeprefix("file.") for k in props}):
        issues.append(
            Issue(MANIFEST, 0, f"file.{name}", tr("file.{name} is missing: read as absent", name=name), "warning")
        )
        modes[name] = "absent"
    if any(i.severity == "error" for i in issues[before:]):
        return None
    return version, modes, (props.get("source.systemCode") or props.get("source.systemName", ""))[:100]


def check_header(spec: FileSpec, header: list[str], issues: list[Issue]) -> list[str] | None:
    """The columns of a file when its header row is the spec's (in order, same case), plus ``metadata.*`` columns."""
    file = f"{spec.name}.csv"
    cells = [c.strip() for c in header]
    columns = [c for c in cells if c not in spec.tolerated]
    base, extra = columns[: len(spec.header)], columns[len(spec.header) :]
    for position, (want, got) in enumerate(zip(spec.header, base, strict=False), start=1):
        if want != got:
            if got.casefold() == want.casefold():
                template = (
                    "wrong header row: expected {want!r} as column {position}, found {got!r} "
                    "(header names are case-sensitive)"
                )
            elif spec.name == "users" and got in ("orgSourcedIds", "role"):
                template = (
                    "wrong header row: expected {want!r} as column {position}, found {got!r} (this is a OneRoster "
                    "1.1 users.csv: the manifest must say oneroster.version 1.1)"
                )
            elif spec.name == "users" and want == "orgSourcedIds":
                template = (
                    "wrong header row: expected {want!r} as column {position}, found {got!r} (this is a OneRoster "
                    "1.2 users.csv: the manifest must say oneroster.version 1.2)"
                )
            elif want in base:
                template = (
                    "wrong header row: expected {want!r} as column {position}, found {got!r} "
                    "(the columns are out of order)"
                )
            else:
                template = "wrong header row: expected {want!r} as column {position}, found {got!r}"
            issues.append(Issue(file, 1, want, tr(template, want=want, position=position, got=got)))
            return None
    if len(base) < len(spec.header):
        missing = ", ".join(spec.header[len(base) :])
        issues.append(
            Issue(file, 1, spec.header[len(base)], tr("wrong header row: missing column(s) {missing}", missing=missing))
        )
        return None
    for name in extra:
        if not name.startswith("metadata."):
            issues.append(
                Issue(
                    file,
                    1,
                    name,
                    tr("unknown column {name!r}: extension columns are named metadata.* and come last", name=name),
                )
            )
            return None
    if len(set(cells)) != len(cells):
        issues.append(Issue(file, 1, "", tr("a column name appears twice in the header row")))
        return None
    return cells


def _check_cell(spec: FileSpec, column: str, value: str, line: int, issues: list[Issue], tolerant: bool) -> None:
    file = f"{spec.name}.csv"
    if column in spec.vocab and value:
        allowed, ext = spec.vocab[column]
        if value not in allowed and not (ext and value.startswith("ext:") and len(value) > 4):
            folded = {a.casefold(): a for a in allowed}
            if tolerant and value.casefold() in folded:
                return
            template = (
                "{value!r} is not one of {items} (ext:… extensions are allowed)"
                if ext
                else "{value!r} is not one of {items}"
            )
            issues.append(Issue(file, line, column, tr(template, value=value, items=", ".join(sorted(allowed)))))
    if column in spec.dates and value:
        try:
            if not DATE_RE.match(value):
                raise ValueError
            date.fromisoformat(value)
        except ValueError:
            issues.append(Issue(file, line, column, tr("{value!r} is not a date (YYYY-MM-DD)", value=value)))
    if column in spec.years and value and not YEAR_RE.match(value):
        issues.append(Issue(file, line, column, tr("{value!r} is not a year (YYYY)", value=value)))
    if column in spec.booleans and value and value.lower() not in ("true", "false"):
        issues.append(Issue(file, line, column, tr("{value!r} is not a boolean (true or false)", value=value)))
    if column in spec.numbers and value:
        try:
            float(value)
        except ValueError:
            issues.append(Issue(file, line, column, tr("{value!r} is not a number", value=value)))
    if column in spec.lists and value and any(not item for item in split_list(value)):
        issues.append(Issue(file, line, column, tr("a list has an empty item")))


def _row(
    spec: FileSpec,
    columns: list[str],
    record: list[str],
    line: int,
    issues: list[Issue],
    tolerant: bool,
    counts: dict[str, int],
) -> dict[str, str] | None:
    """One data record as column → value (plus ``"_row"``), its cells checked; ``None`` when its width is wrong."""
    file = f"{spec.name}.csv"
    if tolerant and len(record) > len(columns) and not any(c.strip() for c in record[len(columns) :]):
        record = record[: len(columns)]
        counts["trailing"] += 1
    if len(record) != len(columns):
        issues.append(
            Issue(
                file,
                line,
                "",
                tr("{count} cells where the header has {count2}", count=len(record), count2=len(columns)),
            )
        )
        return None
    row = {c: v.strip() for c, v in zip(columns, record, strict=True)}
    for column in spec.required:
        if not row.get(column):
            issues.append(Issue(file, line, column, tr("{column} is required", column=column)))
    sourced = row.get("sourcedId", "")
    if sourced and not SOURCED_ID_RE.match(sourced):
        issues.append(
            Issue(
                file,
                line,
                "sourcedId",
                tr("{sourced!r}: 1–255 characters from 0-9 A-Z a-z . - _ / @", sourced=sourced[:60]),
            )
        )
    for column in spec.header:
        _check_cell(spec, column, row[column], line, issues, tolerant)
    for column, value in row.items():
        if value and free_text(spec.name, column) and formula_start(value):
            template = (
                "{column} starts with {char!r}: a spreadsheet would run this cell as a formula "
                "(begin the text otherwise, or with an apostrophe)"
            )
            issues.append(Issue(file, line, column, tr(template, column=column, char=value[0])))
    if row.get("status") or row.get("dateLastModified"):
        counts["filled"] += 1
    row["_row"] = str(line)
    return row


def read_file(spec: FileSpec, data: bytes, issues: list[Issue], *, tolerant: bool) -> list[dict[str, str]] | None:
    """The rows of one data file, checked cell by cell; ``None`` when its structure is wrong."""
    file = f"{spec.name}.csv"
    text = _decode(file, data, issues)
    if text is None:
        return None
    records = _Records(file, text, issues)
    rows: list[dict[str, str]] = []
    counts = {"filled": 0, "trailing": 0}
    try:
        header = next(records, None)
        if header is None:
            issues.append(Issue(file, 1, "", tr("the header row is missing (the file is empty)")))
            return None
        columns = check_header(spec, header, issues)
        if columns is None:
            return None
        records.max_cells = len(columns) + MAX_EXTRA_CELLS
        for line, record in enumerate(records, start=2):
            if line > MAX_ROWS + 1:
                issues.append(
                    Issue(
                        file,
                        line,
                        "",
                        tr("more than {limit} rows: at most {limit} per file (reading stopped)", limit=MAX_ROWS),
                    )
                )
                return None
            row = _row(spec, columns, record, line, issues, tolerant, counts)
            if row is not None:
                rows.append(row)
    except _Stop:
        return None
    filled_common, trailing = counts["filled"], counts["trailing"]
    if filled_common:
        if tolerant:
            template = "{count} row(s) fill status/dateLastModified, which must be blank in bulk mode: ignored"
            issues.append(Issue(file, 0, "status", tr(template, count=filled_common), "warning"))
        else:
            template = "{count} row(s) fill status/dateLastModified, which must be blank in bulk mode"
            issues.append(Issue(file, 0, "status", tr(template, count=filled_common)))
    if trailing:
        template = "{count} row(s) end with empty cells beyond the header: ignored"
        issues.append(Issue(file, 0, "", tr(template, count=trailing), "warning"))
    dupes = [k for k, n in Counter(r["sourcedId"] for r in rows if r["sourcedId"]).items() if n > 1]
    for sourced in dupes[:20]:
        line = next(r["_row"] for r in rows if r["sourcedId"] == sourced)
        issues.append(
            Issue(file, int(line), "sourcedId", tr("sourcedId {sourced!r} appears more than once", sourced=sourced))
        )
    return rows


def check_references(bundle: Bundle, specs: dict[str, FileSpec], issues: list[Issue]) -> None:
    """Every sourcedId a file names exists in the file it points to."""
    known = {name: bundle.ids(name) for name in bundle.rows}
    for name, rows in bundle.rows.items():
        spec = specs[name]
        for column, target in spec.refs.items():
            ids = known.get(target)
            for row in rows:
                values = split_list(row.get(column, "")) if column in spec.lists else [row.get(column, "")]
                for value in values:
                    if not value or (ids is not None and value in ids):
                        continue
                    template = (
                        "{value!r} is not in {target}.csv"
                        if ids is not None
                        else "{value!r} is not in {target}.csv, which the bundle does not include"
                    )
                    issues.append(
                        Issue(f"{name}.csv", int(row["_row"]), column, tr(template, value=value, target=target))
                    )


def read_bundle(data: bytes, *, tolerant: bool = True) -> tuple[Bundle | None, list[Issue]]:
    """Read and check a whole bundle; the bundle is returned only when no error was found."""
    files, issues = open_zip(data)
    if not files and issues:
        return None, issues
    manifest = read_manifest(files, issues)
    if manifest is None:
        return None, issues
    version, modes, system = manifest
    specs = SPECS_11 if version == "1.1" else SPECS_12
    declared = {f"{name}.csv" for name in modes}
    for base in sorted(files):
        if base == MANIFEST:
            continue
        if base not in declared:
            issues.append(
                Issue(
                    base,
                    0,
                    "",
                    tr("{base} is not a OneRoster {version} file named in the manifest", base=base, version=version),
                )
            )
    rows: dict[str, list[dict[str, str]]] = {}
    for name, mode in modes.items():
        file = f"{name}.csv"
        present = file in files
        if mode == "absent" and present:
            issues.append(
                Issue(
                    file,
                    0,
                    "",
                    tr("the manifest says file.{name} is absent, but {file} is in the bundle", name=name, file=file),
                )
            )
        elif mode == "bulk" and not present:
            issues.append(
                Issue(
                    file,
                    0,
                    "",
                    tr("the manifest says file.{name} is bulk, but {file} is missing", name=name, file=file),
                )
            )
        elif mode == "bulk" and name in IGNORED:
            issues.append(
                Issue(
                    file, 0, "", tr("{file} is not imported: madrasa keeps no {name}", file=file, name=name), "warning"
                )
            )
    for name in READ_ORDER:
        if modes.get(name) == "bulk" and f"{name}.csv" in files and name in specs:
            found = read_file(specs[name], files[f"{name}.csv"], issues, tolerant=tolerant)
            if found is not None:
                rows[name] = found
    bundle = Bundle(version=version, modes=modes, rows=rows, system=system)
    if not any(i.severity == "error" for i in issues):
        check_references(bundle, specs, issues)
    if "results" in rows and "lineItems" not in rows:
        issues.append(Issue("results.csv", 0, "", tr("results need lineItems.csv")))
    ok = not any(i.severity == "error" for i in issues)
    return (bundle if ok else None), issues


def gradebook_present(bundle: Bundle) -> bool:
    """Whether the bundle carries gradebook files."""
    return any(name in bundle.rows for name in GRADEBOOK)
