"""Bulletin benchmark: report cards per second for a class of 40, rendered and stored.

Everything runs in this one process, the way the ``grades.bulletins`` job does it: each pupil's
bulletin is rendered in Arabic and French in a worker thread (``asyncio.to_thread``), overlapped
with storing the previous pupil's two PDFs through the file-system storage backend. A ticker task
measures how late the event loop wakes up meanwhile (what a web request would wait).

A *bulletin* is one PDF (one pupil, one term, one language); a class of 40 gives 80. The target is
≥ 10 bulletins per second; the pupil rate (both languages) is printed too. Font preparation (once
per process, cached on disk) is timed separately and left out of the rate.

    .venv/bin/python benchmarks/bulletins.py [--pupils 40] [--rounds 3]

Exit status 0 unless something crashed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.school import reference  # noqa: E402
from core.storage import FileSystemStorage, build_key  # noqa: E402
from plugins.grades.bulletins import (  # noqa: E402
    FONTS,
    LOCALES,
    BulletinData,
    Mark,
    SubjectLine,
    bulletin_filename,
    render_pair,
)

TARGET_BULLETINS_PER_SECOND = 10.0
SCHOOL_ID = 7
FIRST = [("Amine", "أمين"), ("Salma", "سلمى"), ("Youssef", "يوسف"), ("Khadija", "خديجة"), ("Omar", "عمر")]
FIRST += [("Fatima Zahra", "فاطمة الزهراء"), ("Mehdi", "المهدي"), ("Imane", "إيمان"), ("Hamza", "حمزة")]
LAST = [("Alaoui", "العلوي"), ("Bennani", "بناني"), ("Chraibi", "الشرايبي"), ("El Idrissi", "الإدريسي")]
LAST += [("Tazi", "التازي"), ("Berrada", "برادة"), ("Ouazzani", "الوزاني"), ("Amrani", "العمراني")]


def make_class(pupils: int, seed: int = 1) -> list[BulletinData]:
    """A realistic tronc-commun class: 11 subjects with national coefficients, 3 CCs each."""
    rng = random.Random(seed)
    names = {code: (ar, fr) for code, ar, fr, _ in reference.SUBJECTS}
    coefficients = [
        (subject, Decimal(str(coefficient)))
        for level, track, subject, coefficient, _ in reference.coefficients()
        if level == "TC" and track in (None, "TCS")
    ]
    if not coefficients:  # reference data changed shape: a fixed list
        coefficients = [(code, Decimal(2)) for code in ("ARA", "FRA", "ENG", "MATH", "PC", "SVT", "HG", "EI")]
    out = []
    for i in range(pupils):
        first, first_ar = FIRST[i % len(FIRST)]
        last, last_ar = LAST[(i * 7) % len(LAST)]
        lines = []
        total = weights = Decimal(0)
        for code, coefficient in coefficients:
            marks = tuple(
                Mark(None, "absent") if rng.random() < 0.03 else Mark(Decimal(rng.randint(10, 80)) / 4)
                for _ in range(3)
            )
            scores = [m.score for m in marks if m.score is not None]
            average = sum(scores, Decimal(0)) / len(scores) if scores else None
            if average is not None:
                total += average * coefficient
                weights += coefficient
            ar, fr = names.get(code, (code, code))
            lines.append(
                SubjectLine(
                    code=code,
                    name_ar=ar,
                    name_fr=fr,
                    coefficient=coefficient,
                    marks=marks,
                    average=average,
                    class_average=Decimal(rng.randint(40, 60)) / 4,
                )
            )
        out.append(
            BulletinData(
                student_id=i + 1,
                class_id=1,
                term_id=1,
                region_id=2,
                province_id=3,
                school_id=SCHOOL_ID,
                national_code=f"B{i + 1:09d}",
                first_name=first,
                last_name=last,
                first_name_ar=first_ar,
                last_name_ar=last_ar,
                class_name="TC-3",
                level_ar="الجذع المشترك",
                level_fr="Tronc commun",
                school_name_ar="ثانوية ابن بطوطة التأهيلية",
                school_name_fr="Lycée qualifiant Ibn Batouta",
                region_name_ar="الأكاديمية الجهوية للتربية والتكوين لجهة الدار البيضاء سطات",
                region_name_fr="AREF Casablanca-Settat",
                school_year="2026-2027",
                term_number=1,
                subjects=tuple(lines),
                average=total / weights if weights else None,
                rank=i + 1,
                ranked=pupils,
                class_average=Decimal("11.62"),
            )
        )
    return out


async def run_class(items: list[BulletinData], storage: FileSystemStorage) -> tuple[float, float, int, list[float]]:
    """Render and store a class like the job does; returns (seconds, cpu seconds, bytes, loop lags in ms)."""
    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append((time.perf_counter() - before - 0.005) * 1000)

    tick = asyncio.create_task(ticker())
    size = 0
    cpu = time.process_time()
    started = time.perf_counter()
    pending = asyncio.create_task(asyncio.to_thread(render_pair, items[0], LOCALES))
    for index, data in enumerate(items):
        pdfs = await pending
        if index + 1 < len(items):
            pending = asyncio.create_task(asyncio.to_thread(render_pair, items[index + 1], LOCALES))
        for locale, pdf in pdfs.items():
            key = build_key(SCHOOL_ID, "bulletins", bulletin_filename(data, locale))
            await storage.put(key, pdf, "application/pdf", tenant_id=SCHOOL_ID)
            size += len(pdf)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    stop.set()
    await tick
    return elapsed, cpu, size, lags


async def main(pupils: int, rounds: int) -> int:
    started = time.perf_counter()
    FONTS.fonts()
    prepare = time.perf_counter() - started
    items = make_class(pupils)
    print(f"bulletins benchmark: class of {pupils} pupils x {len(LOCALES)} languages, {rounds} rounds")
    print(f"  python {sys.version.split()[0]}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    print(f"  font preparation (once per process, cached on disk): {prepare:.2f} s")
    with tempfile.TemporaryDirectory(prefix="madrasa-bench-") as folder:
        storage = FileSystemStorage(folder)
        await storage.ensure_ready()
        render_pair(items[0], LOCALES)  # warm-up: first-use imports and caches
        results = []
        for number in range(1, rounds + 1):
            elapsed, cpu, size, lags = await run_class(items, storage)
            files = pupils * len(LOCALES)
            results.append((elapsed, cpu))
            lags.sort()
            p99 = lags[int(len(lags) * 0.99) - 1] if lags else 0.0
            print(
                f"  round {number}: {files} PDFs in {elapsed:.2f} s = {files / elapsed:.1f} bulletins/s "
                f"({pupils / elapsed:.1f} pupils/s), CPU {cpu / files * 1000:.1f} ms per PDF, "
                f"{size / files / 1024:.1f} KiB per PDF, event-loop lag p99 {p99:.1f} ms max {lags[-1]:.1f} ms"
            )
        stored = await asyncio.to_thread(lambda: sum(1 for _ in Path(folder).rglob("*.pdf")))
    files = pupils * len(LOCALES)
    best = min(e for e, _ in results)
    median = statistics.median(e for e, _ in results)
    rate, median_rate = files / best, files / median
    cpu_rate = files / min(c for _, c in results)
    verdict = "meets" if median_rate >= TARGET_BULLETINS_PER_SECOND else "MISSES"
    print(f"  stored files: {stored} (expected {files * rounds})")
    print(
        f"  result: median {median_rate:.1f} bulletins/s, best {rate:.1f} bulletins/s "
        f"({pupils / median:.1f} pupils/s with both languages); CPU-bound rate {cpu_rate:.1f} bulletins/s"
    )
    print(f"  target >= {TARGET_BULLETINS_PER_SECOND:.0f} bulletins/s: {verdict} (median x{median_rate / 10:.2f})")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pupils", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.pupils, args.rounds)))
