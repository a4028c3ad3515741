"""The transfer-movement allocation engine: deterministic, with vacancy chains, provably stable.

**Input.** Posts (integer ids; each a school's post for one subject and cycle, in a commune and a province) are
*vacant* (vacant now, or known to fall vacant) or *held*. Applicants have a rank key ``(priority_class, tie_key,
id)`` (smallest first, see :mod:`plugins.hr.movement.standing`), a subject and cycle, usually a current post, and
ranked wishes. A wish names either one school's posts of a subject and cycle (``kind="post"``; the applicant's own
subject and cycle unless given) or an area (``kind="commune"`` / ``"province"``): any post there of the
applicant's subject and cycle. A post held by someone who did not apply never moves.

**Preferences.** An applicant's wishes become a strict order on posts: wish by wish, and inside one wish (several
posts of a school, or an area) by post id, the ids being the caller's order (e.g. by school code) — except that
the applicant's own post comes first inside any wish that contains it, and ends the list there (staying is as good
as that wish). Their own post also comes after all their wishes: nobody is moved somewhere they did not ask for.

**Priority at a post.** Its holder, if they applied, has first claim on it (a post only frees if its holder
moves); after them, applicants in rank order.

**Stability (the definition).** An outcome gives each applicant one post of their list (or none, only when they
have no current post), at most one applicant per post. It is *stable* when no applicant ``a`` prefers a post ``p``
to their outcome while ``p`` is vacant at the end (nobody holds it, its holder moved away) or went to an applicant
ranked below ``a`` who is not ``p``'s own holder. Equivalently: every post an applicant preferred is either kept by
its holder or went to someone ranked above them.

**The result** is the applicant-optimal stable outcome: among all stable outcomes, each applicant gets the post they
prefer most (such an outcome exists and is unique: the lattice theorem of stable matchings, posts' priorities
being strict). Rounds of "in rank order, take the best post free now; repeat until nothing changes" are not enough:
a post freed late in a round goes to whoever comes next, possibly below someone ranked higher who wanted it. Here a
freed post is still open to everyone ranked above its new holder, who may take it back, and the displaced holder
moves on down their list, until no one can improve: that is deferred acceptance. Cycles (A takes B's post while B
takes A's) are carried out when everyone in them gains.

**Algorithm.** Deferred acceptance with applicants proposing (Gale–Shapley), in rank order (McVitie–Wilson): the
next applicant takes the first post in their list that is vacant or held by someone of lower priority there; the
one displaced continues down their own list from where they were. A post's holder only ever improves (empty, then
better and better ranks, then its own holder, for good), so a refusal is final and the engine skips posts held by
someone ranked above the applicant without visiting them one by one (per-group block maxima of the holders'
ranks).

**Termination.** Each step places one applicant on a post strictly further down their own list than any place
they held before (their place, ``(wish, position in the wish)``, only moves forward; a displaced applicant resumes
after the post they lost), and a placement on one's own post is final. A chain of displacements ends when someone
takes a post nobody held, or is left with no post at all. Steps are thus at most the total length of the
lists plus one per applicant; each costs O(group size / 16 + 16) at worst, usually far less.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import cached_property
from typing import Literal

import msgspec

__all__ = ["Allocation", "Applicant", "EngineInputError", "Outcome", "Post", "Wish", "allocate"]

BLOCK = 16
EMPTY = 1 << 62  # the "rank" of nobody: everyone outranks an empty post
KINDS = frozenset(("post", "commune", "province"))
KEPT = -1  # the value of a post its own holder keeps: nobody outranks them there


class EngineInputError(ValueError):
    """Inconsistent input (a duplicate id, an unknown post, a post held by two applicants…), named."""


class Post(msgspec.Struct, frozen=True, gc=False):
    """A post: one school's post for a subject and cycle. ``vacant``: free now or known to fall vacant."""

    id: int
    school: int
    subject: str
    cycle: str
    commune: int
    province: int
    vacant: bool = False


class Wish(msgspec.Struct, frozen=True, gc=False):
    """``kind="post"``: school ``place``'s posts (of ``subject``/``cycle``, default the applicant's); else an area."""

    kind: Literal["post", "commune", "province"]
    place: int
    subject: str | None = None
    cycle: str | None = None


class Applicant(msgspec.Struct, frozen=True):
    """An applicant: ranked by ``(priority_class, tie_key, id)``; ``ref`` feeds their pseudonym (their PPR)."""

    id: int
    ref: str
    subject: str
    cycle: str
    priority_class: int
    points: int
    tie_key: tuple[int, ...]
    current_post: int | None
    wishes: list[Wish]


class Outcome(msgspec.Struct, frozen=True):
    """Where an applicant ends: ``moved`` to ``post`` (their wish number ``wish``, from 0), ``stayed`` or
    ``unplaced`` (no current post and no wish obtained). ``wish`` is set for a stay only when a wish contained
    the applicant's own post."""

    applicant: int
    status: Literal["moved", "stayed", "unplaced"]
    post: int | None
    wish: int | None


def group_key(wish: Wish, subject: str, cycle: str) -> tuple[str, int, str, str]:
    """The key of the set of posts a wish names."""
    return (wish.kind, wish.place, wish.subject or subject, wish.cycle or cycle)


def post_keys(post: Post) -> tuple[tuple[str, int, str, str], ...]:
    """The keys of every wish that names ``post``."""
    return (
        ("post", post.school, post.subject, post.cycle),
        ("commune", post.commune, post.subject, post.cycle),
        ("province", post.province, post.subject, post.cycle),
    )


class Allocation:
    """A run's result and what explaining it needs (applicants by rank, offered posts, who holds what)."""

    def __init__(
        self,
        applicants: list[Applicant],
        posts: dict[int, Post],
        pool: list[int],
        groups: dict[tuple[str, int, str, str], list[int]],
        holder: list[int],
        placed: list[int],
        wish_of: list[int],
        pseudonym_key: bytes,
    ) -> None:
        self.applicants = applicants  # by rank
        self.rank = {a.id: r for r, a in enumerate(applicants)}
        self.posts = posts
        self.pool = pool  # offered posts' ids, ascending; index = pool index
        self.pool_index = {post_id: i for i, post_id in enumerate(pool)}
        self.groups = groups  # key → pool indices, ascending
        self.holder = holder  # pool index → rank of the final holder, or -1
        self.placed = placed  # rank → pool index, or -1
        self.wish_of = wish_of  # rank → wish index obtained, or -1
        self.pseudonym_key = pseudonym_key

    @cached_property
    def existing_keys(self) -> frozenset[tuple[str, int, str, str]]:
        """The keys of every post, offered or not (to tell "no such post" from "never vacant")."""
        return frozenset(key for post in self.posts.values() for key in post_keys(post))

    def outcome(self, applicant_id: int) -> Outcome:
        """Where one applicant ends."""
        r = self.rank[applicant_id]
        applicant = self.applicants[r]
        index = self.placed[r]
        wish = self.wish_of[r] if self.wish_of[r] >= 0 else None
        if index < 0:
            return Outcome(applicant.id, "unplaced", None, None)
        post = self.pool[index]
        status: Literal["moved", "stayed"] = "stayed" if post == applicant.current_post else "moved"
        return Outcome(applicant.id, status, post, wish)

    def outcomes(self) -> list[Outcome]:
        """Every applicant's outcome, by applicant id."""
        return [self.outcome(a) for a in sorted(self.rank)]

    def holder_of(self, post_id: int) -> int | None:
        """The applicant id holding an offered post at the end (``None``: vacant, or not offered)."""
        index = self.pool_index.get(post_id)
        if index is None or self.holder[index] < 0:
            return None
        return self.applicants[self.holder[index]].id

    def pseudonym(self, applicant_id: int) -> str:
        """A stable pseudonym: the same applicant and campaign key give the same one, it does not reveal the PPR."""
        ref = self.applicants[self.rank[applicant_id]].ref.encode()
        return "M-" + hashlib.blake2b(ref, key=self.pseudonym_key, digest_size=5).hexdigest().upper()


def _check(applicants: list[Applicant], posts: dict[int, Post], given_posts: int) -> None:
    if len(posts) != given_posts:
        raise EngineInputError("two posts have the same id")
    owners: dict[int, int] = {}
    seen: set[int] = set()
    for a in applicants:
        if a.id in seen:
            raise EngineInputError(f"applicant {a.id}: the id is used twice")
        seen.add(a.id)
        if a.current_post is not None:
            post = posts.get(a.current_post)
            if post is None:
                raise EngineInputError(f"applicant {a.id}: current post {a.current_post} is not among the posts")
            if post.vacant:
                raise EngineInputError(f"applicant {a.id}: current post {a.current_post} is marked vacant")
            if a.current_post in owners:
                raise EngineInputError(
                    f"applicant {a.id}: current post {a.current_post} is also applicant {owners[a.current_post]}'s"
                )
            owners[a.current_post] = a.id


def _refuse_wishes(a: Applicant, keys: list[tuple[str, int, str, str]]) -> None:
    for i, key in enumerate(keys):
        if key[0] not in KINDS:
            raise EngineInputError(f"applicant {a.id}: wish {i}: unknown kind {key[0]!r}")
        if key in keys[:i]:
            raise EngineInputError(f"applicant {a.id}: wish {i} repeats an earlier wish")


def allocate(applicants: Iterable[Applicant], posts: Iterable[Post], pseudonym_key: bytes = b"") -> Allocation:
    """Run the movement: the applicant-optimal stable outcome (see the module's docstring); any input order."""
    people = sorted(applicants, key=lambda a: (a.priority_class, a.tie_key, a.id))
    given = list(posts)
    by_id = {post.id: post for post in given}
    _check(people, by_id, len(given))
    owned = {a.current_post for a in people if a.current_post is not None}
    pool = sorted(post_id for post_id, post in by_id.items() if post.vacant or post_id in owned)
    pool_index = {post_id: i for i, post_id in enumerate(pool)}
    groups: dict[tuple[str, int, str, str], list[int]] = {}
    for i, post_id in enumerate(pool):
        for key in post_keys(by_id[post_id]):
            groups.setdefault(key, []).append(i)

    # Groups by number, with block maxima of the holders' ranks for the large ones.
    gid = {key: g for g, key in enumerate(groups)}
    members = list(groups.values())
    value = [EMPTY] * len(pool)
    block_max: list[list[int] | None] = [
        [EMPTY] * ((len(m) + BLOCK - 1) // BLOCK) if len(m) > BLOCK else None for m in members
    ]
    big_groups_of: list[list[tuple[int, int]]] = [[] for _ in pool]
    for g, m in enumerate(members):
        if block_max[g] is not None:
            for position, i in enumerate(m):
                big_groups_of[i].append((g, position))

    n = len(people)
    lists: list[list[int]] = []  # rank → group number of each wish (-1: nothing offered there)
    own: list[int] = []  # rank → pool index of their own post, or -1
    own_groups: list[frozenset[int]] = []
    for a in people:
        subject, cycle = a.subject, a.cycle
        wanted = [(w.kind, w.place, w.subject or subject, w.cycle or cycle) for w in a.wishes]
        if len(set(wanted)) != len(wanted) or not KINDS.issuperset({key[0] for key in wanted}):
            _refuse_wishes(a, wanted)
        lists.append([gid.get(key, -1) for key in wanted])
        mine = pool_index[a.current_post] if a.current_post is not None else -1
        own.append(mine)
        own_groups.append(frozenset(gid[key] for key in post_keys(by_id[a.current_post])) if mine >= 0 else frozenset())

    holder = [-1] * len(pool)
    placed = [-1] * n
    wish_of = [-1] * n
    next_wish = [0] * n
    next_position = [0] * n

    def lower(index: int, new: int) -> None:
        """Post ``index`` now has the priority value ``new`` (always lower than before)."""
        old = value[index]
        value[index] = new
        for g, position in big_groups_of[index]:
            maxima = block_max[g]
            b = position // BLOCK
            if maxima[b] == old:  # type: ignore[index]
                start = b * BLOCK
                maxima[b] = max([value[i] for i in members[g][start : start + BLOCK]])  # type: ignore[index]

    def first_open(g: int, start: int, rank: int) -> int:
        """The first position ≥ ``start`` in group ``g`` whose post ``rank`` may take (-1: none)."""
        m = members[g]
        size = len(m)
        maxima = block_max[g]
        i = start
        if maxima is None:
            while i < size:
                if value[m[i]] > rank:
                    return i
                i += 1
            return -1
        while i < size:
            if i % BLOCK == 0 and maxima[i // BLOCK] <= rank:
                i += BLOCK
                continue
            if value[m[i]] > rank:
                return i
            i += 1
        return -1

    for first in range(n):
        a = first
        while a >= 0:
            wishes = lists[a]
            w = next_wish[a]
            target = -1
            while w < len(wishes):
                g = wishes[w]
                if g >= 0:
                    if g in own_groups[a]:
                        target = own[a]
                        break
                    found = first_open(g, next_position[a], a)
                    if found >= 0:
                        next_position[a] = found + 1
                        target = members[g][found]
                        break
                w += 1
                next_position[a] = 0
            next_wish[a] = w
            if target < 0:  # list exhausted: back to their own post, if any
                target = own[a]
                w = -1
                if target < 0:
                    break
            wish_of[a] = w
            placed[a] = target
            displaced = holder[target]
            holder[target] = a
            lower(target, KEPT if target == own[a] else a)
            if displaced >= 0:
                placed[displaced] = -1
                wish_of[displaced] = -1
            a = displaced
    return Allocation(people, by_id, pool, groups, holder, placed, wish_of, pseudonym_key)
