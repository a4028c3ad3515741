"""A transfer campaign's rules as data: parsed from JSON or a dict, refused with an error naming the rule.

Every threshold, point value, number of wishes, priority and tie-break comes from the campaign's rules (the
rules change every year); the 2025 national rules ship as ``rules_2025.json`` (sources and confidence in the
``plugins.hr`` docstring). ``parse_rules`` checks the shape with msgspec, then the cross-references (situations
named by priorities and bonuses must be declared, tie-break criteria must exist and not repeat)::

    rules = parse_rules({"max_wishes": 15, ...})
    parse_rules({..., "tie_break": ["points", "age", "foo"]})
    # RuleError: tie_break[2]: unknown criterion “foo”
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from core.plugin_api import Invalid

__all__ = [
    "POSITIONS",
    "TIE_BREAKS",
    "WISH_KINDS",
    "BonusPoints",
    "CampaignRules",
    "PriorityBySituation",
    "PriorityByYearsInPost",
    "RuleError",
    "default_rules",
    "parse_rules",
]

#: Tie-break criteria a campaign may order (each ranks the larger value first); the applicant's stable id always
#: comes last, so no two applicants ever tie.
TIE_BREAKS = ("points", "years_in_post", "years_in_directorate", "years_of_service", "age")
#: Administrative positions of the staff record (the statute's list).
POSITIONS = ("activite", "detachement", "mise_a_disposition", "disponibilite", "conge")
#: What a wish may name: one school's post (school, subject, cycle), or any post of one's subject and cycle in a
#: commune or a province.
WISH_KINDS = ("post", "commune", "province")
DATA_DIR = Path(__file__).parent

Code = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
Count = Annotated[int, msgspec.Meta(ge=0, le=1000)]


class RuleError(Invalid):
    """A campaign's rules that do not parse: the message starts with the rule's path (``tie_break[2]: …``)."""

    def __init__(self, rule: str, msgid: str, **values: Any) -> None:
        super().__init__(rule, msgid, rule=rule, **values)
        self.rule = rule

    def __str__(self) -> str:
        return str(self.detail)


#: The messages of :class:`RuleError` (translated in ``plugins/hr/locale``).
MISSING = "{rule}: this rule is missing."
UNKNOWN_RULE = "{rule}: there is no such rule."
WRONG_TYPE = "{rule}: expected {expected}, got {got}."
OUT_OF_RANGE = "{rule}: the value must be {bound}."
BAD_CHOICE = "{rule}: “{value}” is not one of the allowed values."
BAD_DATE = "{rule}: not a date (YYYY-MM-DD)."
BAD_CODE = "{rule}: a code is lower-case letters, digits and underscores."
BAD_DOCUMENT = "{rule}: not valid JSON ({problem})."
INVALID = "{rule}: invalid value."
UNKNOWN_CRITERION = "{rule}: unknown criterion “{value}”."
REPEATED = "{rule}: “{value}” is already listed."
UNKNOWN_SITUATION = "{rule}: unknown situation “{value}” (not in situations)."
EMPTY = "{rule}: the list must not be empty."
RULE_MESSAGES = (
    MISSING,
    UNKNOWN_RULE,
    WRONG_TYPE,
    OUT_OF_RANGE,
    BAD_CHOICE,
    BAD_DATE,
    BAD_CODE,
    BAD_DOCUMENT,
    INVALID,
    UNKNOWN_CRITERION,
    REPEATED,
    UNKNOWN_SITUATION,
    EMPTY,
)


class PriorityBySituation(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind", tag="situation"):
    """A priority category for applicants whose declared ``situation`` the province accepted (spouse reunion)."""

    code: Code
    situation: Code


class PriorityByYearsInPost(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind", tag="years_in_post"
):
    """A priority category for applicants with at least ``min_years`` in their current post."""

    code: Code
    min_years: Annotated[int, msgspec.Meta(ge=1, le=60)]


class BonusPoints(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``points`` for an accepted declared ``situation``."""

    situation: Code
    points: Count


class CampaignRules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One campaign's rules. Years are whole years counted up to ``reference_date``."""

    scope: Literal["national", "regional", "provincial"]
    reference_date: date
    min_years_in_post: Annotated[int, msgspec.Meta(ge=0, le=60)]
    eligible_positions: list[Literal["activite", "detachement", "mise_a_disposition", "disponibilite", "conge"]]
    max_wishes: Annotated[int, msgspec.Meta(ge=1, le=100)]
    wish_kinds: list[Literal["post", "commune", "province"]]
    #: The declared situations the campaign knows (priorities and bonuses may only name these).
    situations: list[Code]
    #: In order: an applicant is in the class of the first category they fall in; outside all, after them.
    priority_categories: list[PriorityBySituation | PriorityByYearsInPost]
    bonus_points: list[BonusPoints]
    #: ``highest``: the largest bonus of the accepted situations; ``sum``: all of them added.
    bonus_combination: Literal["highest", "sum"]
    points_per_year_in_post: Count
    points_per_year_in_directorate: Count
    #: Criteria after the priority class, most significant first (see :data:`TIE_BREAKS`).
    tie_break: list[str]

    def priority_labels(self) -> list[str]:
        """Each class's code, the last one (``ordinary``) for applicants outside every category."""
        return [category.code for category in self.priority_categories] + ["ordinary"]


_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_EXPECTED = re.compile(r"^Expected `(?P<expected>[^`]+)`, got `(?P<got>[^`]+)`$")
_BOUND = re.compile(r"^Expected `\w+` (?P<bound>[<>]=? \S+)$")
_LENGTH = re.compile(r"^Expected `\w+` of length (?P<bound>[<>]=? \S+)$")
_CHOICE = re.compile(r"^Invalid (?:enum )?value (?P<value>.+)$")


def _rule_error(error: msgspec.ValidationError) -> RuleError:
    """msgspec's message turned into a :class:`RuleError` whose rule is the path (``priority_categories[1].kind``)."""
    text = str(error)
    path = ""
    match = _PATH.search(text)
    if match:
        path = match["path"].lstrip(".")
        text = text[: match.start()]
    if text.startswith("Object missing required field `"):
        field = text.split("`")[1]
        return RuleError(f"{path}.{field}" if path else field, MISSING)
    if text.startswith("Object contains unknown field `"):
        field = text.split("`")[1]
        return RuleError(f"{path}.{field}" if path else field, UNKNOWN_RULE)
    rule = path or "rules"
    if "RFC3339" in text:
        return RuleError(rule, BAD_DATE)
    if text.startswith("Expected `str` matching regex"):
        return RuleError(rule, BAD_CODE)
    for pattern, msgid in ((_BOUND, OUT_OF_RANGE), (_LENGTH, OUT_OF_RANGE)):
        if found := pattern.match(text):
            return RuleError(rule, msgid, bound=found["bound"])
    if found := _EXPECTED.match(text):
        return RuleError(rule, WRONG_TYPE, expected=found["expected"], got=found["got"])
    if found := _CHOICE.match(text):
        return RuleError(rule, BAD_CHOICE, value=found["value"].strip("'\""))
    return RuleError(rule, INVALID)


def _check_references(rules: CampaignRules) -> None:
    """Cross-checks msgspec cannot express: known and unrepeated criteria, situations and codes."""
    situations = set(rules.situations)
    for field, values in (
        ("situations", rules.situations),
        ("eligible_positions", rules.eligible_positions),
        ("wish_kinds", rules.wish_kinds),
    ):
        _no_repeat(field, values)
    for field, values in (("wish_kinds", rules.wish_kinds), ("tie_break", rules.tie_break)):
        if not values:
            raise RuleError(field, EMPTY)
    for i, criterion in enumerate(rules.tie_break):
        if criterion not in TIE_BREAKS:
            raise RuleError(f"tie_break[{i}]", UNKNOWN_CRITERION, value=criterion)
    _no_repeat("tie_break", rules.tie_break)
    _no_repeat("priority_categories", [category.code for category in rules.priority_categories], ".code")
    for i, category in enumerate(rules.priority_categories):
        if isinstance(category, PriorityBySituation) and category.situation not in situations:
            raise RuleError(f"priority_categories[{i}].situation", UNKNOWN_SITUATION, value=category.situation)
    for i, bonus in enumerate(rules.bonus_points):
        if bonus.situation not in situations:
            raise RuleError(f"bonus_points[{i}].situation", UNKNOWN_SITUATION, value=bonus.situation)
    _no_repeat("bonus_points", [bonus.situation for bonus in rules.bonus_points], ".situation")


def _no_repeat(field: str, values: list[str], suffix: str = "") -> None:
    seen: set[str] = set()
    for i, value in enumerate(values):
        if value in seen:
            raise RuleError(f"{field}[{i}]{suffix}", REPEATED, value=value)
        seen.add(value)


def parse_rules(data: dict[str, Any] | str | bytes) -> CampaignRules:
    """A campaign's rules from a dict or a JSON document; :class:`RuleError` names the first rule that is wrong."""
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise RuleError("rules", BAD_DOCUMENT, problem=str(exc)) from None
    try:
        rules = msgspec.convert(data, CampaignRules)
    except msgspec.ValidationError as exc:
        raise _rule_error(exc) from None
    _check_references(rules)
    return rules


def default_rules(year: int = 2025) -> CampaignRules:
    """The shipped rules of a year's national campaign (``rules_<year>.json`` beside this module)."""
    return parse_rules((DATA_DIR / f"rules_{year}.json").read_bytes())
