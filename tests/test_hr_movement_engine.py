"""The movement allocation engine against a brute-force oracle, a hand-worked chain, explanations and re-runs.

The oracle knows nothing of the engine: it builds each applicant's preference list from the wishes by scanning
every post, enumerates every assignment, keeps the stable ones (the definition in
``plugins.hr.movement.engine``) and takes the applicant-optimal one (every applicant's best post over all stable
assignments, which must itself be one of them).
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plugins.hr.movement.engine import Applicant, EngineInputError, Post, Wish, allocate
from plugins.hr.movement.explanations import diff, explain

SUBJECTS = ("MATH", "FR")
MOSTLY_MATH = ("MATH", "MATH", "MATH", "FR")


# ---------------------------------------------------------------- the oracle


def oracle_lists(applicants: list[Applicant], posts: list[Post]) -> dict[int, list[int]]:
    """Each applicant's strict preference list of offered posts, from the wishes (own post first in its wish)."""
    owned = {a.current_post for a in applicants if a.current_post is not None}
    offered = [p for p in sorted(posts, key=lambda p: p.id) if p.vacant or p.id in owned]
    lists = {}
    for a in applicants:
        chosen: list[int] = []
        stayed = False
        for wish in a.wishes:
            subject, cycle = wish.subject or a.subject, wish.cycle or a.cycle
            place = {"post": "school", "commune": "commune", "province": "province"}[wish.kind]
            named = [p.id for p in offered if (p.subject, p.cycle, getattr(p, place)) == (subject, cycle, wish.place)]
            if a.current_post in named:
                chosen.append(a.current_post)
                stayed = True
                break
            chosen += [p for p in named if p not in chosen]
        if not stayed and a.current_post is not None:
            chosen.append(a.current_post)
        lists[a.id] = chosen
    return lists


def oracle(applicants: list[Applicant], posts: list[Post]) -> dict[int, int | None]:
    """The applicant-optimal stable assignment, by enumerating every assignment (asserts it exists)."""
    order = sorted(applicants, key=lambda a: (a.priority_class, a.tie_key, a.id))
    rank = {a.id: r for r, a in enumerate(order)}
    owner = {a.current_post: a.id for a in applicants if a.current_post is not None}
    lists = oracle_lists(applicants, posts)

    def priority(post: int, who: int) -> tuple[int, int]:
        return (0 if owner.get(post) == who else 1, rank[who])

    def stable(match: dict[int, int | None]) -> bool:
        holder = {p: a for a, p in match.items() if p is not None}
        for a in order:
            mine = lists[a.id]
            got = match[a.id]
            better = mine if got is None else mine[: mine.index(got)]
            for p in better:
                h = holder.get(p)
                if h is None or priority(p, h) > priority(p, a.id):
                    return False
        return True

    found: list[dict[int, int | None]] = []

    def walk(i: int, match: dict[int, int | None], used: set[int]) -> None:
        if i == len(order):
            if stable(match):
                found.append(dict(match))
            return
        a = order[i]
        for choice in [*lists[a.id], None]:
            if choice is not None and choice in used:
                continue
            # Sound pruning only: a preferred post that is vacant or whose owner (ranked above, so already
            # placed) left it, and that nobody ranked above holds, can never be justified.
            mine = lists[a.id]
            better = mine if choice is None else mine[: mine.index(choice)]
            if any(p not in used and (p not in owner or rank[owner[p]] < i) for p in better):
                continue
            match[a.id] = choice
            if choice is not None:
                used.add(choice)
            walk(i + 1, match, used)
            if choice is not None:
                used.discard(choice)
            del match[a.id]

    walk(0, {}, set())
    assert found, "no stable assignment"

    def position(a: int, p: int | None) -> int:
        return len(lists[a]) if p is None else lists[a].index(p)

    best = {a.id: min((m[a.id] for m in found), key=lambda p: position(a.id, p)) for a in order}
    assert best in found, "the applicants' best posts are not one stable assignment"
    return best


# ---------------------------------------------------------------- random instances


@st.composite
def instances(draw: st.DrawFn) -> tuple[list[Applicant], list[Post]]:
    """≤ 8 applicants, ≤ 6 posts in 3 schools, 2 communes, 2 provinces; most posts held by applicants (chains)."""
    post_count = draw(st.integers(2, 6))
    posts = []
    for pid in range(1, post_count + 1):
        school = draw(st.integers(1, 3))
        subject = draw(st.sampled_from(MOSTLY_MATH))
        posts.append(Post(pid * 7, school, subject, "col", (school + 1) // 2, 1 if school < 3 else 2, False))
    vacant = draw(st.sets(st.sampled_from([p.id for p in posts]), max_size=2))
    posts = [Post(p.id, p.school, p.subject, p.cycle, p.commune, p.province, p.id in vacant) for p in posts]
    holdable = [p for p in posts if not p.vacant]
    count = draw(st.integers(2, 8))
    # Some held posts belong to people who did not apply (never offered).
    holders = draw(st.permutations(holdable))[: min(count, draw(st.integers(0, len(holdable))))]
    applicants = []
    ids = draw(st.lists(st.integers(1, 99), min_size=count, max_size=count, unique=True))
    for i, applicant_id in enumerate(ids):
        post = holders[i] if i < len(holders) else None
        subject = post.subject if post else draw(st.sampled_from(MOSTLY_MATH))
        wishes: list[Wish] = []
        keys = set()
        for _ in range(draw(st.integers(0, 4) | st.integers(2, 4))):
            kind = draw(st.sampled_from(["post", "post", "post", "commune", "province"]))
            place = draw(st.sampled_from([1, 2, 3, 3, 4] if kind == "post" else [1, 2]))
            other = draw(st.sampled_from([None, None, None, *SUBJECTS])) if kind == "post" else None
            if (kind, place, other or subject) not in keys:
                keys.add((kind, place, other or subject))
                wishes.append(Wish(kind, place, other))
        applicants.append(
            Applicant(
                applicant_id,
                f"R{applicant_id}",
                subject,
                "col",
                draw(st.integers(0, 2)),
                points := draw(st.integers(0, 3)),
                (-points, draw(st.integers(0, 1))),
                post.id if post else None,
                wishes,
            )
        )
    return applicants, posts


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(instances())
def test_the_engine_finds_the_applicant_optimal_stable_outcome(instance):
    """Stability and applicant-optimality: exactly the oracle's assignment."""
    applicants, posts = instance
    allocation = allocate(applicants, posts)
    assert {o.applicant: o.post for o in allocation.outcomes()} == oracle(applicants, posts)


@SETTINGS
@given(instances(), st.randoms(use_true_random=False))
def test_input_order_does_not_matter(instance, rng):
    applicants, posts = instance
    shuffled_applicants, shuffled_posts = applicants[:], posts[:]
    rng.shuffle(shuffled_applicants)
    rng.shuffle(shuffled_posts)
    first, second = allocate(applicants, posts, b"k"), allocate(shuffled_applicants, shuffled_posts, b"k")
    assert first.outcomes() == second.outcomes()
    assert [explain(first, a.id) for a in applicants] == [explain(second, a.id) for a in applicants]
    assert not diff(first, second)


@SETTINGS
@given(instances())
def test_explanations_match_the_outcome(instance):
    """Every wish above the one obtained is explained by holders with priority there, or by unavailability."""
    applicants, posts = instance
    allocation = allocate(applicants, posts, b"campaign")
    order = sorted(applicants, key=lambda a: (a.priority_class, a.tie_key, a.id))
    rank = {a.id: r for r, a in enumerate(order)}
    by_id = {a.id: a for a in applicants}
    final = {o.post: o.applicant for o in allocation.outcomes() if o.post is not None}
    owned = {a.current_post for a in applicants if a.current_post is not None}
    for a in applicants:
        explanation = explain(allocation, a.id)
        outcome = explanation.outcome
        assert outcome == allocation.outcome(a.id)
        assert outcome.status == (
            "unplaced" if outcome.post is None else "stayed" if outcome.post == a.current_post else "moved"
        )
        above = len(a.wishes) if outcome.wish is None else outcome.wish
        assert [w.wish for w in explanation.above] == list(range(above))
        for item in explanation.above:
            wish = a.wishes[item.wish]
            assert item.request == wish
            place = {"post": "school", "commune": "commune", "province": "province"}[wish.kind]
            subject = wish.subject or a.subject
            named = [p for p in posts if (p.subject, p.cycle, getattr(p, place)) == (subject, "col", wish.place)]
            offered = sorted(p.id for p in named if p.vacant or p.id in owned)
            if item.reason == "no_such_post":
                assert not named and not item.holders
            elif item.reason == "never_vacant":
                assert named and not offered and not item.holders
            else:
                assert sorted(h.post for h in item.holders) == offered
                for h in item.holders:
                    holder = by_id[final[h.post]]
                    assert h.pseudonym == allocation.pseudonym(holder.id) != explanation.pseudonym
                    assert (h.priority_class, h.points) == (holder.priority_class, holder.points)
                    if h.why == "kept":
                        assert holder.current_post == h.post
                    else:
                        assert h.why == "above" and rank[holder.id] < rank[a.id]


# ---------------------------------------------------------------- the hand-worked chain


def chain_example() -> tuple[list[Applicant], list[Post]]:
    posts = [Post(i, school, "MATH", "col", 1, 1, i == 1) for i, school in enumerate((10, 20, 30, 40, 50, 60, 70), 1)]

    def applicant(i: int, ref: str, klass: int, points: int, post: int, *schools: int) -> Applicant:
        return Applicant(i, ref, "MATH", "col", klass, points, (-points,), post, [Wish("post", s) for s in schools])

    return [
        applicant(1, "A", 0, 0, 5, 20),
        applicant(2, "B", 1, 30, 2, 30),
        applicant(5, "E", 1, 20, 6, 30),
        applicant(3, "C", 2, 12, 3, 40),
        applicant(4, "D", 2, 8, 4, 10),
        applicant(6, "F", 2, 4, 7, 20, 60),
    ], posts


def test_a_three_step_vacancy_chain():
    """Schools 10…70 have one MATH post each (posts 1…7); only post 1 (school 10) is vacant.

    Rank order: A (class 0), B (class 1, 30 points), E (class 1, 20), C (class 2, 12), D (class 2, 8), F (class 2, 4).

    ====  =========  ==================
    who   holds      wishes
    ====  =========  ==================
    A     5 (s. 50)  school 20 (B's)
    B     2 (s. 20)  school 30 (C's)
    E     6 (s. 60)  school 30 (C's)
    C     3 (s. 30)  school 40 (D's)
    D     4 (s. 40)  school 10 (vacant)
    F     7 (s. 70)  school 20, then 60
    ====  =========  ==================

    In rank order, nobody above D finds a free post. D takes post 1, freeing post 4 (step 1); C, ranked above
    D, takes it, freeing post 3 (step 2); B and E both want post 3 and B, ranked above E, takes it, freeing post 2
    (step 3); A, ranked first of all, takes post 2. Post 5, freed by A, is wanted by nobody. E stays (post 3 went
    to B, ranked above); F stays (post 2 went to A, ranked above; post 6 kept by E, who did not move).
    """
    applicants, posts = chain_example()
    allocation = allocate(applicants, posts, b"2025")
    got = {o.applicant: (o.status, o.post, o.wish) for o in allocation.outcomes()}
    assert got == {
        1: ("moved", 2, 0),
        2: ("moved", 3, 0),
        3: ("moved", 4, 0),
        4: ("moved", 1, 0),
        5: ("stayed", 6, None),
        6: ("stayed", 7, None),
    }
    assert allocation.holder_of(5) is None  # A's old post, vacant at the end
    assert got == {a: (o.status, o.post, o.wish) for a, o in ((o.applicant, o) for o in allocation.outcomes())}
    e = explain(allocation, 5)
    assert [(h.post, h.why, h.priority_class, h.points) for w in e.above for h in w.holders] == [(3, "above", 1, 30)]
    assert e.above[0].holders[0].pseudonym == allocation.pseudonym(2) != "B"
    f = explain(allocation, 6)
    assert [(w.wish, [(h.post, h.why) for h in w.holders]) for w in f.above] == [
        (0, [(2, "above")]),
        (1, [(6, "kept")]),
    ]
    assert explain(allocation, 1).above == []


def test_an_appeal_rerun_reports_what_changed():
    """E's spouse reunion is accepted on appeal (first of all): E takes post 3, B and A stay, F takes E's post."""
    applicants, posts = chain_example()
    before = allocate(applicants, posts, b"2025")
    appealed = [
        Applicant(a.id, a.ref, a.subject, a.cycle, -1, a.points, a.tie_key, a.current_post, a.wishes)
        if a.ref == "E"
        else a
        for a in applicants
    ]
    after = allocate(appealed, posts, b"2025")
    changes = diff(before, after)
    assert [(c.applicant, c.before.post, c.after.post, c.after.status) for c in changes.changes] == [
        (1, 2, 5, "stayed"),
        (2, 3, 2, "stayed"),
        (5, 6, 3, "moved"),
        (6, 7, 6, "moved"),  # F's second wish, post 6, freed by E
    ]
    assert changes.posts == [(2, 1, 2), (3, 2, 5), (5, None, 1), (6, 5, 6), (7, 6, None)]
    assert explain(after, 2).above[0].holders[0].pseudonym == before.pseudonym(5)
    assert not diff(after, allocate(list(reversed(appealed)), posts, b"2025"))


def test_area_wishes_take_the_lowest_post_id_and_own_post_ends_the_list():
    posts = [
        Post(1, 10, "MATH", "col", 1, 1, False),
        Post(2, 11, "MATH", "col", 1, 1, True),
        Post(3, 12, "MATH", "col", 1, 1, True),
        Post(4, 20, "MATH", "col", 2, 1, True),
    ]
    mover = Applicant(1, "A", "MATH", "col", 0, 0, (), None, [Wish("commune", 1)])
    # Holder of post 1 wishes commune 1 (their own) before province 1: they stay rather than move inside it.
    stayer = Applicant(2, "B", "MATH", "col", 1, 0, (), 1, [Wish("commune", 1), Wish("province", 1)])
    other = Applicant(3, "C", "MATH", "col", 2, 0, (), None, [Wish("post", 12), Wish("province", 1)])
    allocation = allocate([mover, stayer, other], posts)
    assert [(o.status, o.post, o.wish) for o in allocation.outcomes()] == [
        ("moved", 2, 0),
        ("stayed", 1, 0),
        ("moved", 3, 0),
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a, p: (a, [*p, p[0]]), "two posts have the same id"),
        (lambda a, p: ([*a, a[0]], p), "applicant 1: the id is used twice"),
        (lambda a, p: ([a[0].__class__(**{**_fields(a[0]), "current_post": 99})], p), "post 99 is not among"),
        (lambda a, p: ([a[0].__class__(**{**_fields(a[0]), "current_post": 1})], p), "post 1 is marked vacant"),
        (lambda a, p: ([*a, a[1].__class__(**{**_fields(a[1]), "id": 9})], p), "is also applicant 2's"),
        (
            lambda a, p: ([a[0].__class__(**{**_fields(a[0]), "wishes": [Wish("post", 20)] * 2})], p),
            "applicant 1: wish 1 repeats an earlier wish",
        ),
        (
            lambda a, p: ([a[0].__class__(**{**_fields(a[0]), "wishes": [Wish("region", 1)]})], p),  # type: ignore[arg-type]
            "applicant 1: wish 0: unknown kind 'region'",
        ),
    ],
)
def test_inconsistent_input_is_refused_by_name(change, message):
    applicants, posts = change(*chain_example())
    with pytest.raises(EngineInputError, match=message):
        allocate(applicants, posts)


def _fields(applicant: Applicant) -> dict:
    return {f: getattr(applicant, f) for f in applicant.__struct_fields__}


def test_an_applicant_without_a_post_and_no_free_wish_is_unplaced():
    posts = [Post(1, 10, "MATH", "col", 1, 1, False)]
    holder = Applicant(1, "A", "MATH", "col", 0, 0, (), 1, [])
    newcomer = Applicant(2, "B", "MATH", "col", 0, 0, (), None, [Wish("post", 10), Wish("post", 99)])
    allocation = allocate([holder, newcomer], posts)
    assert allocation.outcome(2).status == "unplaced"
    assert [(w.reason, [h.why for h in w.holders]) for w in explain(allocation, 2).above] == [
        ("taken", ["kept"]),
        ("no_such_post", []),
    ]


def test_pseudonyms_depend_on_the_campaign_key():
    applicants, posts = chain_example()
    one, two = allocate(applicants, posts, b"one"), allocate(applicants, posts, b"two")
    assert one.pseudonym(1) == allocate(applicants, posts, b"one").pseudonym(1)
    assert one.pseudonym(1) != two.pseudonym(1)
    assert len({one.pseudonym(a.id) for a in applicants}) == len(applicants)


def test_a_larger_random_campaign_is_stable():
    """A few hundred applicants (too many for the oracle): the stability definition checked directly."""
    rng = random.Random(7)
    posts = [Post(i, i // 3, "MATH", "col", i // 12, i // 60, rng.random() < 0.2) for i in range(600)]
    held = [p.id for p in posts if not p.vacant]
    rng.shuffle(held)
    applicants = [
        Applicant(
            i,
            f"P{i}",
            "MATH",
            "col",
            rng.randint(0, 2),
            pts := rng.randint(0, 40),
            (-pts,),
            held[i],
            [Wish("post", s) for s in rng.sample(range(200), 4)] + [Wish("commune", rng.randrange(50))],
        )
        for i in range(400)
    ]
    allocation = allocate(applicants, posts)
    lists = oracle_lists(applicants, posts)
    order = sorted(applicants, key=lambda a: (a.priority_class, a.tie_key, a.id))
    rank = {a.id: r for r, a in enumerate(order)}
    holder = {o.post: o.applicant for o in allocation.outcomes() if o.post is not None}
    moved = 0
    for a in applicants:
        got = allocation.outcome(a.id).post
        moved += got != a.current_post
        for p in lists[a.id][: lists[a.id].index(got)]:
            h = holder.get(p)
            assert h is not None and (applicants[h].current_post == p or rank[h] < rank[a.id])
    assert moved > 50


def test_a_holder_who_stays_pushes_a_higher_ranked_applicant_onto_a_lower_ranked_ones_post():
    """A (first) wishes O's post, then the vacant post 2; B (second) wishes post 2; O (third) finds nothing.

    A holds O's post until O, left with nothing, keeps it; A then goes on to post 2 and, ranked above B, takes it
    although B got it meanwhile: B ends with nothing (B had no post). Post 3, A's, is vacant at the end.
    """
    posts = [Post(i, i, "MATH", "col", 1, 1, i == 2) for i in (1, 2, 3)]
    a = Applicant(1, "A", "MATH", "col", 0, 0, (), 3, [Wish("post", 1), Wish("post", 2)])
    b = Applicant(2, "B", "MATH", "col", 1, 0, (), None, [Wish("post", 2)])
    o = Applicant(3, "O", "MATH", "col", 2, 0, (), 1, [Wish("post", 9)])
    allocation = allocate([a, b, o], posts)
    assert [(x.status, x.post, x.wish) for x in allocation.outcomes()] == [
        ("moved", 2, 1),
        ("unplaced", None, None),
        ("stayed", 1, None),
    ]
    assert [(w.reason, [h.why for h in w.holders]) for w in explain(allocation, 1).above] == [("taken", ["kept"])]
    assert [(w.reason, [h.why for h in w.holders]) for w in explain(allocation, 2).above] == [("taken", ["above"])]
    assert allocation.holder_of(3) is None


def test_a_cycle_is_carried_out():
    """The same, but O wishes A's post: A and O swap, and B keeps post 2."""
    posts = [Post(i, i, "MATH", "col", 1, 1, i == 2) for i in (1, 2, 3)]
    a = Applicant(1, "A", "MATH", "col", 0, 0, (), 3, [Wish("post", 1), Wish("post", 2)])
    b = Applicant(2, "B", "MATH", "col", 1, 0, (), None, [Wish("post", 2)])
    o = Applicant(3, "O", "MATH", "col", 2, 0, (), 1, [Wish("post", 3)])
    outcomes = allocate([a, b, o], posts).outcomes()
    assert [(x.status, x.post, x.wish) for x in outcomes] == [("moved", 1, 0), ("moved", 2, 0), ("moved", 3, 0)]


def test_the_benchmarks_independent_checker_sees_an_unstable_result():
    """The benchmark's stability checker (its own code path) accepts the engine's result and refuses a spoilt one."""
    from benchmarks.hr_movement import check_stability, generate

    applicants, posts = generate(2000, 600, 15, seed=3)
    allocation = allocate(applicants, posts)
    assert check_stability(applicants, posts, allocation) == []
    # Send one mover back to their old post: the post they obtained is left vacant although they wished it.
    mover = next(o for o in allocation.outcomes() if o.status == "moved")
    rank = allocation.rank[mover.applicant]
    obtained = allocation.placed[rank]
    allocation.holder[obtained] = -1
    allocation.placed[rank] = allocation.pool_index[applicants[mover.applicant - 1].current_post]
    problems = check_stability(applicants, posts, allocation)
    assert problems and any(f"applicant {mover.applicant}" in p for p in problems)
