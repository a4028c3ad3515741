"""Movement benchmark: a national campaign of 100,000 applicants × 15 wishes over 30,000 vacant posts.

Every applicant holds a post, which the others may wish (vacancy chains); another 20,000 posts are held by
teachers who did not apply (never offered). 75 provinces of 15 communes, 8 schools per commune, 8 subjects × 3
cycles. Each applicant wishes 15 places of their subject and cycle: 10 schools, 3 communes and 2 provinces, in their
own province and two others, drawn with a popularity skew (a few provinces, communes and schools are wanted by
many). Priority classes: 5 % spouse reunion, 10 % twelve years in post, the rest ordinary; points 0–60.

The allocation is timed (target ≤ 30 s; wall clock, and this process's CPU time, which differ when the machine
is shared), peak memory reported (the process's maximum resident set before and
after the run), and the result checked by a stability checker written apart from the engine (its own post
indexes, its own preference positions): no applicant prefers a post that is vacant at the end or that went to
someone ranked below them who is not its holder.

    .venv/bin/python benchmarks/hr_movement.py [--applicants 100000] [--vacant 30000] [--wishes 15] [--seed 1]

Exit status 0 when the result is stable, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from plugins.hr.movement.engine import Allocation, Applicant, Post, Wish, allocate  # noqa: E402
from plugins.hr.movement.explanations import explain  # noqa: E402

TARGET_SECONDS = 30.0
PROVINCES = 75
COMMUNES_PER_PROVINCE = 15
SCHOOLS_PER_COMMUNE = 8
SUBJECTS = ("ARA", "FRA", "ANG", "MATH", "PC", "SVT", "HG", "EPS")
CYCLES = ("primaire", "college", "lycee")
NON_APPLICANTS = 20_000


def max_rss_mb() -> float:
    """The process's peak resident set so far, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def skewed(rng: random.Random, count: int) -> int:
    """An index in ``range(count)``, small ones much more often (popular places)."""
    return min(int(rng.paretovariate(1.2)) - 1, count - 1) if rng.random() < 0.7 else rng.randrange(count)


def generate(applicants: int, vacant: int, wishes: int, seed: int) -> tuple[list[Applicant], list[Post]]:
    """The campaign: posts (vacant, applicants', others') and applicants with their wishes."""
    rng = random.Random(seed)
    schools = PROVINCES * COMMUNES_PER_PROVINCE * SCHOOLS_PER_COMMUNE
    kinds = [(s, c) for s in SUBJECTS for c in CYCLES]
    posts: list[Post] = []
    total = applicants + vacant + NON_APPLICANTS
    for i in range(total):
        school = skewed(rng, schools) if rng.random() < 0.3 else rng.randrange(schools)
        commune = school // SCHOOLS_PER_COMMUNE
        subject, cycle = kinds[rng.randrange(len(kinds))]
        posts.append(Post(i + 1, school, subject, cycle, commune, commune // COMMUNES_PER_PROVINCE, i < vacant))
    # Which schools have posts of each subject and cycle, per province (so that wishes name places that exist).
    schools_of: dict[tuple[str, str, int], list[int]] = {}
    for post in posts:
        schools_of.setdefault((post.subject, post.cycle, post.province), []).append(post.school)
    for key, found in schools_of.items():
        schools_of[key] = sorted(set(found))
    people = []
    held = posts[vacant : vacant + applicants]
    for i, post in enumerate(held):
        provinces = [post.province, skewed(rng, PROVINCES), rng.randrange(PROVINCES)]
        keys = set()
        chosen: list[Wish] = []
        while len(chosen) < wishes:
            province = provinces[rng.randrange(3)]
            roll = rng.random()
            if roll < 10 / 15:
                options = schools_of.get((post.subject, post.cycle, province))
                if not options:
                    continue
                wish = Wish("post", options[skewed(rng, len(options))])
            elif roll < 13 / 15:
                wish = Wish("commune", province * COMMUNES_PER_PROVINCE + skewed(rng, COMMUNES_PER_PROVINCE))
            else:
                wish = Wish("province", province)
            key = (wish.kind, wish.place)
            if key not in keys:
                keys.add(key)
                chosen.append(wish)
        roll = rng.random()
        klass = 0 if roll < 0.05 else 1 if roll < 0.15 else 2
        points = rng.randrange(61)
        tie = (-points, rng.randrange(8000), rng.randrange(12000), rng.randrange(20000))
        people.append(
            Applicant(i + 1, f"{1_000_000 + i}", post.subject, post.cycle, klass, points, tie, post.id, chosen)
        )
    return people, posts


def check_stability(applicants: list[Applicant], posts: list[Post], allocation: Allocation) -> list[str]:
    """Independent checker: problems found (empty when stable). Uses only the input and the outcomes."""
    problems: list[str] = []
    order = sorted(applicants, key=lambda a: (a.priority_class, a.tie_key, a.id))
    rank = {a.id: r for r, a in enumerate(order)}
    owner = {a.current_post: a.id for a in applicants if a.current_post is not None}
    offered = {p.id: p for p in posts if p.vacant or p.id in owner}
    result = {o.applicant: o.post for o in allocation.outcomes()}
    holder: dict[int, int] = {}
    for applicant_id, post_id in result.items():
        if post_id is not None:
            if post_id in holder:
                problems.append(f"post {post_id} given twice")
            holder[post_id] = applicant_id
    # A post's claim: the rank below which an applicant could still have taken it (inf: vacant; -1: kept).
    claim: dict[int, float] = {}
    for post_id in offered:
        h = holder.get(post_id)
        claim[post_id] = float("inf") if h is None else -1 if owner.get(post_id) == h else rank[h]
    by_place: dict[tuple[str, int, str, str], list[int]] = {}
    for post in offered.values():
        for kind, place in (("post", post.school), ("commune", post.commune), ("province", post.province)):
            by_place.setdefault((kind, place, post.subject, post.cycle), []).append(post.id)
    weakest = {key: max(claim[p] for p in ids) for key, ids in by_place.items()}
    for a in applicants:
        got = result[a.id]
        r = rank[a.id]
        if got is None and a.current_post is not None:
            problems.append(f"applicant {a.id} lost their post")
            continue
        for i, wish in enumerate(a.wishes):
            key = (wish.kind, wish.place, wish.subject or a.subject, wish.cycle or a.cycle)
            ids = sorted(by_place.get(key, ()))
            if got in ids and (got == a.current_post or a.current_post not in ids):
                before = [] if got == a.current_post else [p for p in ids if p < got]
                if any(claim[p] > r for p in before):
                    problems.append(f"applicant {a.id} passed over a post in wish {i}")
                break
            if a.current_post in ids:  # staying was as good as this wish, and they did not stay
                problems.append(f"applicant {a.id} moved below a wish holding their own post")
                break
            if ids and weakest[key] > r:
                problems.append(f"applicant {a.id} prefers wish {i} ({key}), open to them")
                break
        else:
            if got is not None and got != a.current_post:
                problems.append(f"applicant {a.id} got post {got}, which they did not wish")
        if len(problems) > 20:
            break
    return problems


def chains(applicants: list[Applicant], posts: list[Post], allocation: Allocation) -> tuple[int, int, int]:
    """Vacancy chains: (how many start from a vacant post, the longest in moves, movers in cycles of swaps)."""
    mover_into = {o.post: o.applicant for o in allocation.outcomes() if o.status == "moved"}
    old_post = {a.id: a.current_post for a in applicants}
    count = longest = in_chains = 0
    for post in posts:
        if not post.vacant or post.id not in mover_into:
            continue
        count += 1
        length, here = 0, post.id
        while here in mover_into:
            length += 1
            here = old_post[mover_into[here]]
        longest = max(longest, length)
        in_chains += length
    return count, longest, len(mover_into) - in_chains


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--applicants", type=int, default=100_000)
    parser.add_argument("--vacant", type=int, default=30_000)
    parser.add_argument("--wishes", type=int, default=15)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    started = time.perf_counter()
    applicants, posts = generate(args.applicants, args.vacant, args.wishes, args.seed)
    print(
        f"generated {len(applicants):,} applicants × {args.wishes} wishes, {args.vacant:,} vacant posts, "
        f"{len(posts):,} posts in all, in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    rss_before = max_rss_mb()

    load = os.getloadavg()[0]
    started, cpu = time.perf_counter(), time.process_time()
    allocation = allocate(applicants, posts, b"benchmark")
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    rss_after = max_rss_mb()

    outcomes = allocation.outcomes()
    moved = sum(o.status == "moved" for o in outcomes)
    first = sum(o.status == "moved" and o.wish == 0 for o in outcomes)
    freed_taken = sum(1 for o in outcomes if o.status == "moved" and o.post > args.vacant)
    print(
        f"moved {moved:,} ({first:,} to their first wish), {freed_taken:,} of them into a post freed by another "
        f"mover (chains); stayed {sum(o.status == 'stayed' for o in outcomes):,}"
    )
    count, longest, cycling = chains(applicants, posts, allocation)
    print(f"vacancy chains: {count:,} from vacant posts, the longest {longest} moves; {cycling:,} movers in cycles")
    print(f"allocation: {seconds:.2f} s (target ≤ {TARGET_SECONDS:.0f} s: ratio {seconds / TARGET_SECONDS:.2f})")
    print(
        f"  CPU time of this process: {cpu:.2f} s (ratio {cpu / TARGET_SECONDS:.2f}); "
        f"machine load average when it started: {load:.1f} on {os.cpu_count()} cores"
    )
    print(f"peak memory (max RSS): {rss_before:,.0f} MB after generating, {rss_after:,.0f} MB after the run")

    started = time.perf_counter()
    sample = applicants[:: max(1, len(applicants) // 1000)]
    for a in sample:
        explain(allocation, a.id)
    print(f"explanations: {len(sample):,} in {time.perf_counter() - started:.2f} s")

    started = time.perf_counter()
    problems = check_stability(applicants, posts, allocation)
    print(
        f"independent stability check: {'STABLE' if not problems else 'UNSTABLE'} "
        f"in {time.perf_counter() - started:.1f} s"
    )
    for problem in problems[:20]:
        print("  ", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
