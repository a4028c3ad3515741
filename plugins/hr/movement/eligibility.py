"""Who may apply to a campaign, explained: the staff record's summary checked against the campaign's rules.

Each condition gives a :class:`Reason` whether it holds or not, so a teacher reads why they may (or may not)
apply; ``eligible`` is true when every reason is satisfied::

    verdict = eligibility(summary, rules)
    verdict.eligible                              # False
    [(r.code, r.ok) for r in verdict.reasons]     # [("position", True), ("years_in_post", False)]
"""

from __future__ import annotations

from datetime import date
from typing import Any

import msgspec

from plugins.hr.movement.rules import CampaignRules

__all__ = ["Eligibility", "Reason", "StaffSummary", "eligibility", "whole_years"]

POSITION = "Administrative position: {position} (the campaign accepts: {allowed})."
YEARS_IN_POST = "Years in the current post on {day}: {years} (the campaign requires at least {minimum})."
NO_POST = "No current post on record: the years in post cannot be counted."
REASON_MESSAGES = (POSITION, YEARS_IN_POST, NO_POST)


class StaffSummary(msgspec.Struct, frozen=True):
    """What the movement needs from a staff record: dates, position and the situations the province accepted."""

    ref: str
    position: str
    born_on: date
    recruited_on: date
    #: The date the current post was taken up (``None``: no current post, e.g. back from détachement).
    post_since: date | None
    directorate_since: date | None = None
    situations: frozenset[str] = frozenset()


class Reason(msgspec.Struct, frozen=True):
    """One condition: its code, whether it holds, and its message (a catalogue msgid and its values)."""

    code: str
    ok: bool
    msgid: str
    values: dict[str, Any]

    def text(self) -> str:
        """The message in English (pages translate ``msgid`` with ``values`` instead)."""
        return self.msgid.format(**self.values)


class Eligibility(msgspec.Struct, frozen=True):
    """The verdict and every reason behind it."""

    eligible: bool
    reasons: list[Reason]


def whole_years(since: date | None, on: date) -> int:
    """Full years from ``since`` to ``on`` (0 for none or a future date)."""
    if since is None or since > on:
        return 0
    return on.year - since.year - ((on.month, on.day) < (since.month, since.day))


def eligibility(summary: StaffSummary, rules: CampaignRules) -> Eligibility:
    """May ``summary``'s teacher apply under ``rules``? Every condition is reported, met or not."""
    reasons = [
        Reason(
            "position",
            summary.position in rules.eligible_positions,
            POSITION,
            {"position": summary.position, "allowed": ", ".join(rules.eligible_positions)},
        )
    ]
    if summary.post_since is None:
        reasons.append(Reason("years_in_post", False, NO_POST, {}))
    else:
        years = whole_years(summary.post_since, rules.reference_date)
        reasons.append(
            Reason(
                "years_in_post",
                years >= rules.min_years_in_post,
                YEARS_IN_POST,
                {"day": rules.reference_date.isoformat(), "years": years, "minimum": rules.min_years_in_post},
            )
        )
    return Eligibility(all(reason.ok for reason in reasons), reasons)
