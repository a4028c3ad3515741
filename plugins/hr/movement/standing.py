"""An applicant's standing in a campaign: priority class, points (with their detail) and the tie-break key.

The engine ranks applicants by ``(priority_class, tie_key, applicant id)``, smallest first. ``tie_key`` follows
the campaign's ``tie_break`` list; each criterion ranks the larger value first:

* ``points``: the total below;
* ``years_in_post`` / ``years_in_directorate`` / ``years_of_service``: by the date itself (post taken up,
  directorate joined, recruitment), the earlier first, so that two teachers with the same whole years still differ;
* ``age``: by birth date, the older first.

Points are ``points_per_year_in_post`` × whole years in the post, plus ``points_per_year_in_directorate`` × whole
years in the directorate, plus the bonus of the accepted situations (the highest one, or their sum, as
``bonus_combination`` says). Years are counted up to the rules' ``reference_date``.
"""

from __future__ import annotations

import msgspec

from plugins.hr.movement.eligibility import StaffSummary, whole_years
from plugins.hr.movement.rules import CampaignRules, PriorityBySituation

__all__ = ["Standing", "standing"]


class Standing(msgspec.Struct, frozen=True):
    """Priority class (0 first; ``len(priority_categories)`` for none), its code, points and the tie-break key."""

    priority_class: int
    priority_code: str
    points: int
    points_detail: list[tuple[str, int]]
    tie_key: tuple[int, ...]


def standing(summary: StaffSummary, rules: CampaignRules) -> Standing:
    """``summary``'s standing under ``rules`` (only the situations in ``summary.situations`` count: accepted ones)."""
    day = rules.reference_date
    in_post = whole_years(summary.post_since, day)
    in_directorate = whole_years(summary.directorate_since, day)
    labels = rules.priority_labels()
    klass = len(rules.priority_categories)
    for i, category in enumerate(rules.priority_categories):
        if isinstance(category, PriorityBySituation):
            if category.situation in summary.situations:
                klass = i
                break
        elif in_post >= category.min_years:
            klass = i
            break
    detail = [
        ("years_in_post", rules.points_per_year_in_post * in_post),
        ("years_in_directorate", rules.points_per_year_in_directorate * in_directorate),
    ]
    bonuses = [(f"bonus:{b.situation}", b.points) for b in rules.bonus_points if b.situation in summary.situations]
    if rules.bonus_combination == "highest" and bonuses:
        bonuses = [max(bonuses, key=lambda item: item[1])]
    detail += bonuses
    points = sum(value for _, value in detail)
    latest = day.toordinal()
    keys = {
        "points": -points,
        "years_in_post": summary.post_since.toordinal() if summary.post_since else latest,
        "years_in_directorate": summary.directorate_since.toordinal() if summary.directorate_since else latest,
        "years_of_service": summary.recruited_on.toordinal(),
        "age": summary.born_on.toordinal(),
    }
    return Standing(klass, labels[klass], points, detail, tuple(keys[c] for c in rules.tie_break))
