"""Why an applicant did not get the wishes above the one obtained, and what changed between two runs.

For each wish above the outcome (every wish, for someone who stayed or was not placed), one of:

* ``no_such_post``: no post of that school, subject and cycle (or none of the applicant's subject and cycle in
  that area) exists at all;
* ``never_vacant``: such posts exist, but none was vacant and none of their holders applied;
* ``taken``: every such post offered went to someone with priority there, each listed as a :class:`Holder`: a
  pseudonym, their priority class and points, and whether they kept their own post (``kept``: the holder has first
  claim) or obtained it ranked above the applicant (``above``).

A stable outcome never leaves a preferred post vacant nor gives it to someone ranked below: ``vacant`` and
``below`` exist only to make such a bug visible, and the tests check they never appear.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from plugins.hr.movement.engine import Allocation, Outcome, Wish, group_key

__all__ = ["AllocationDiff", "Change", "Explanation", "Holder", "WishExplanation", "diff", "explain"]


class Holder(msgspec.Struct, frozen=True):
    """Who holds an offered post at the end, anonymised; ``why`` their claim comes before the applicant's."""

    post: int
    school: int
    pseudonym: str
    priority_class: int
    points: int
    why: Literal["kept", "above", "vacant", "below"]


class WishExplanation(msgspec.Struct, frozen=True):
    """One wish the applicant did not obtain, and why."""

    wish: int
    request: Wish
    reason: Literal["no_such_post", "never_vacant", "taken"]
    holders: list[Holder]


class Explanation(msgspec.Struct, frozen=True):
    """An applicant's outcome and the reasons for each wish above it."""

    outcome: Outcome
    pseudonym: str
    priority_class: int
    points: int
    above: list[WishExplanation]


def explain(allocation: Allocation, applicant_id: int) -> Explanation:
    """The explanation of one applicant's outcome (computed on demand)."""
    rank = allocation.rank[applicant_id]
    applicant = allocation.applicants[rank]
    outcome = allocation.outcome(applicant_id)
    last = outcome.wish if outcome.wish is not None else len(applicant.wishes)
    above = []
    for i, wish in enumerate(applicant.wishes[:last]):
        key = group_key(wish, applicant.subject, applicant.cycle)
        members = allocation.groups.get(key)
        if members is None:
            reason: Literal["no_such_post", "never_vacant", "taken"] = (
                "never_vacant" if key in allocation.existing_keys else "no_such_post"
            )
            above.append(WishExplanation(i, wish, reason, []))
            continue
        holders = []
        for index in members:
            post = allocation.posts[allocation.pool[index]]
            r = allocation.holder[index]
            if r < 0:
                holders.append(Holder(post.id, post.school, "", -1, 0, "vacant"))
                continue
            other = allocation.applicants[r]
            why: Literal["kept", "above", "below"] = (
                "kept" if other.current_post == post.id else "above" if r < rank else "below"
            )
            pseudonym = allocation.pseudonym(other.id)
            holders.append(Holder(post.id, post.school, pseudonym, other.priority_class, other.points, why))
        above.append(WishExplanation(i, wish, "taken", holders))
    return Explanation(outcome, allocation.pseudonym(applicant_id), applicant.priority_class, applicant.points, above)


class Change(msgspec.Struct, frozen=True):
    """An applicant whose outcome differs between two runs (``None``: absent from that run)."""

    applicant: int
    before: Outcome | None
    after: Outcome | None


class AllocationDiff(msgspec.Struct, frozen=True):
    """What a re-run changed: applicants whose outcome differs, and posts whose final holder differs."""

    changes: list[Change]
    posts: list[tuple[int, int | None, int | None]]

    def __bool__(self) -> bool:
        return bool(self.changes or self.posts)


def diff(before: Allocation, after: Allocation) -> AllocationDiff:
    """Outcome by outcome, the differences between two runs (after an appeal, the whole movement is re-run)."""
    old = {o.applicant: o for o in before.outcomes()}
    new = {o.applicant: o for o in after.outcomes()}
    changes = [
        Change(applicant, old.get(applicant), new.get(applicant))
        for applicant in sorted(old.keys() | new.keys())
        if old.get(applicant) != new.get(applicant)
    ]
    posts = []
    for post_id in sorted(set(before.pool) | set(after.pool)):
        was, now = before.holder_of(post_id), after.holder_of(post_id)
        if was != now:
            posts.append((post_id, was, now))
    return AllocationDiff(changes, posts)
