"""What ``benchmarks/national.py`` measures, its targets, and the report it prints (with the projections).

Not a benchmark itself: ``benchmarks/national.py`` imports it.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.grades_load import POOL_MAX, POOL_MIN, Cpu, Guardian, loadavg
from benchmarks.request_overhead import LoadResult


def log(message: str = "") -> None:
    print(message, flush=True)


TARGET_ROWS_PER_SECOND = 50_000
TARGET_CLOSE_SECONDS = 120.0
FULL_PUPILS = 1_200_000
#: Pupils in Morocco's schools, roughly: the national projection of the database size.
NATION_PUPILS = 8_000_000
#: Memory counts as flat when the second half of the run peaks at most this much above the first half.
FLAT_RATIO = 1.25
READS_PER_DOWNLOAD = 9


def flat_memory(samples: Sequence[tuple[float, float]]) -> tuple[float, float, bool]:
    """``(peak of the first half, peak of the second half, flat)`` of RSS samples ``(seconds, MiB)``.

    The first half holds the start-up (imports, the tenants); flat: the second half's peak at most
    :data:`FLAT_RATIO` times the first half's. The two halves share the middle sample.
    """
    if not samples:
        raise ValueError("no memory samples")
    first = max(m for _, m in samples[: (len(samples) + 1) // 2])
    second = max(m for _, m in samples[len(samples) // 2 :])
    return first, second, second <= first * FLAT_RATIO


def scaled(value: float, measured_pupils: int, full_pupils: int) -> float:
    """A figure measured on ``measured_pupils`` projected linearly to ``full_pupils`` (a projection)."""
    if measured_pupils < 1:
        raise ValueError("measured_pupils must be at least 1")
    return value * full_pupils / measured_pupils


@dataclass
class Generation:
    generator_rows: int = 0
    generator_seconds: float = 0.0
    generator_counts: dict[str, int] = field(default_factory=dict)
    maxrss_mib: float = 0.0
    rss: list[tuple[float, float]] = field(default_factory=list)
    marks_rows: int = 0
    marks_seconds: float = 0.0
    marks_insert_seconds: float = 0.0


@dataclass
class Close:
    app_seconds: float
    hand_seconds: float
    differing: dict[str, int]
    same_aggregates: bool
    stats: Any
    facts: dict[str, Any]
    version: str


@dataclass
class Mix:
    guardians: list[Guardian]
    bulletin_ids: dict[int, int]
    pdf_bytes: int
    sessions_seconds: float
    kinds: list[tuple[str, float, float]] = field(default_factory=list)


@dataclass
class MixRun:
    label: str
    connections: int
    result: LoadResult
    cpu: Cpu


def size_text(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report(
    args: argparse.Namespace,
    schools: int,
    per_school: int,
    gen: Generation | None,
    close: Close,
    mix: Mix,
    runs: list[MixRun],
    size: dict[str, Any],
    busy: str,
    total_seconds: float,
    not_measured: dict[str, str] | None = None,
) -> None:
    f = close.facts
    log()
    log(f"national benchmark on PostgreSQL {close.version}, {os.cpu_count()} cores, application role (RLS on)")
    log(
        f"data: {f['schools']:,} schools, {f['classes']:,} classes, {f['pupils']:,} pupils, {f['sheets']:,} sheets, "
        f"{f['assessments']:,} assessments, {f['marks']:,} marks ({f['absent']:,} absent, {f['excused']:,} excused, "
        f"{f['not_entered']:,} not entered); {f['left_class']:,} pupils left their class"
    )
    log()
    if gen is None:
        log("generation: skipped (--skip-generate)")
    else:
        total_rows = gen.generator_rows + gen.marks_rows
        total_seconds_gen = gen.generator_seconds + gen.marks_seconds
        rate = total_rows / total_seconds_gen
        log("generation                        rows     seconds      rows/s")
        log(
            f"  generator (app role, Python) {gen.generator_rows:>12,} {gen.generator_seconds:>9.1f} "
            f"{gen.generator_rows / gen.generator_seconds:>11,.0f}"
        )
        log(
            f"  marks (owner, set-based)     {gen.marks_rows:>12,} {gen.marks_seconds:>9.1f} "
            f"{gen.marks_rows / gen.marks_seconds:>11,.0f}   (publish, ANALYZE and index rebuild included)"
        )
        log(f"  total                        {total_rows:>12,} {total_seconds_gen:>9.1f} {rate:>11,.0f}")
        first, last, flat = flat_memory(gen.rss)
        shown = gen.rss[:: max(1, len(gen.rss) // 12)]
        log(
            "  generator RSS (process tree, MiB) at s: "
            + ", ".join(f"{t:.0f}:{m:.0f}" for t, m in shown)
            + f"; last {gen.rss[-1][1]:.0f}; peak (ru_maxrss) {gen.maxrss_mib:.0f}"
        )
        log(
            f"  rows/s ≥ {TARGET_ROWS_PER_SECOND:,} (total): {rate:,.0f} → {_verdict(rate >= TARGET_ROWS_PER_SECOND)}; "
            f"memory flat (peak of the second half ≤ {FLAT_RATIO:.2f} × the first's: {last:.0f} / {first:.0f} MiB) → "
            f"{_verdict(flat)}"
        )
    log()
    stats = close.stats
    marks = f["marks"]
    log(
        f"semester close (one first close each, results emptied + CHECKPOINT before): app {close.app_seconds:.1f} s "
        f"({marks / close.app_seconds:,.0f} marks/s), hand-written {close.hand_seconds:.1f} s; "
        f"ratio {close.app_seconds / close.hand_seconds:.2f}"
    )
    log(
        f"  wrote {stats.subject_results:,} subject results, {stats.general_results:,} general results "
        f"({stats.ranked:,} ranked), {stats.class_stats:,} class statistics rows"
    )
    identical = not any(close.differing.values()) and close.same_aggregates
    log(
        f"  app = hand-written: differing rows {close.differing}, aggregates "
        f"{'equal' if close.same_aggregates else 'DIFFERENT'} → {'identical' if identical else 'NOT identical'}"
    )
    log(
        f"  close ≤ {TARGET_CLOSE_SECONDS:.0f} s: {close.app_seconds:.1f} s → "
        f"{_verdict(close.app_seconds <= TARGET_CLOSE_SECONDS)}"
    )
    log()
    log(
        f"results-day read mix: {READS_PER_DOWNLOAD} in {READS_PER_DOWNLOAD + 1} requests read published marks "
        f"(/api/v1/me/pupils/{{id}}/marks) or averages (…/results) in turn, 1 in {READS_PER_DOWNLOAD + 1} downloads "
        f"a report card (/api/v1/grades/bulletins/{{id}}, {mix.pdf_bytes:,} B PDF); {len(mix.guardians)} guardians "
        f"(distinct children), bearer tokens; madrasa serve, 1 uvicorn worker, pool {POOL_MIN}..{POOL_MAX}; "
        f"wrk -t1 --latency, {args.warmup:g} s warm-up + {args.duration:g} s per run; load average before: {busy}"
    )
    log(
        f"  each kind alone, {args.probe} sequential requests: "
        + "; ".join(
            f"{kind} {ms:.1f} ms and {pg_us:,.0f} µs of database CPU per request" for kind, ms, pg_us in mix.kinds
        )
    )
    header = f"  {'mode':<24} {'conns':>5} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}  {'server µs':>9} {'pg µs':>6}"
    log(header)
    log("  " + "-" * (len(header) - 2))
    for r in runs:
        res = r.result
        bad = f"  !! {res.bad_responses} non-2xx/3xx, {res.errors} errors" if res.bad_responses or res.errors else ""
        server_us = f"{r.cpu.server_us:9.0f}" if r.cpu.server_us is not None else f"{'-':>9}"
        pg_us = f"{r.cpu.pg_us:6.0f}" if r.cpu.pg_us is not None else f"{'-':>6}"
        log(
            f"  {r.label:<24} {r.connections:>5} {res.rps:8.1f} {res.p50_ms or 0:8.2f} {res.p99_ms or 0:8.2f}  "
            f"{server_us} {pg_us}{bad}"
        )
    for mode, reason in (not_measured or {}).items():
        log(f"  {mode}: not measured: {reason}")
    if not args.cache:
        log("  (the shared cache and If-None-Match modes run with --cache; the replica mode with --replica)")
    log()
    disk = size["disk"]
    log(
        f"size: pg_database_size {size_text(size['database'])}; disk of {size['data_dir']}: "
        f"{size_text(disk.used)} used, {size_text(disk.free)} free of {size_text(disk.total)}"
    )
    for name, total, heap in size["tables"]:
        rest = size_text(total - heap)
        log(f"  {name:<28} {size_text(total):>10} (table {size_text(heap)}, indexes and TOAST {rest})")
    per_pupil = size["database"] / f["pupils"]
    log(
        f"  {per_pupil / 1024:.1f} KiB per pupil; projected linearly (a projection, not a measurement) to "
        f"{NATION_PUPILS / 1e6:.0f} M pupils (the nation): {size_text(per_pupil * NATION_PUPILS)}"
    )
    if f["pupils"] < FULL_PUPILS:
        log()
        log(projection(f["pupils"], gen, close, size["database"]))
    log(f"total time {total_seconds:.0f} s; load average now {loadavg()}")


def projection(pupils: int, gen: Generation | None, close: Close, database_bytes: int) -> str:
    """The figures of a smaller run projected linearly to :data:`FULL_PUPILS` pupils (not measurements)."""

    def at_full(value: float) -> float:
        return scaled(value, pupils, FULL_PUPILS)

    parts = []
    if gen is not None:
        parts.append(
            f"generation {at_full(gen.generator_seconds + gen.marks_seconds):.0f} s "
            f"(generator {at_full(gen.generator_seconds):.0f} s, marks {at_full(gen.marks_seconds):.0f} s)"
        )
    parts.append(f"close (app) {at_full(close.app_seconds):.0f} s, hand-written {at_full(close.hand_seconds):.0f} s")
    parts.append(f"database {size_text(at_full(database_bytes))}")
    return (
        f"PROJECTED to {FULL_PUPILS:,} pupils, linearly from this run's {pupils:,} (a projection, not a "
        "measurement; rows/s and req/s do not scale with the size): " + "; ".join(parts)
    )
