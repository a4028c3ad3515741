"""Campaign rules as data: the 2025 defaults, refusals naming the rule, eligibility and standing, translations."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path

import msgspec
import pytest
from babel.messages.pofile import read_po

from core.i18n import gettext_in, register_catalogue_dirs
from plugins.hr.movement.eligibility import REASON_MESSAGES, StaffSummary, eligibility
from plugins.hr.movement.engine import Applicant, Post, Wish, allocate
from plugins.hr.movement.rules import RULE_MESSAGES, RuleError, default_rules, parse_rules
from plugins.hr.movement.standing import standing

LOCALE = Path(__file__).resolve().parent.parent / "plugins" / "hr" / "locale"


def rules_2025() -> dict:
    return msgspec.to_builtins(default_rules(2025))


def test_the_2025_rules_ship_as_data():
    rules = default_rules(2025)
    assert (rules.max_wishes, rules.min_years_in_post, rules.reference_date) == (15, 2, date(2025, 8, 31))
    assert rules.priority_labels() == ["spouse_reunion", "twelve_years_in_post", "ordinary"]
    assert {b.points for b in rules.bonus_points} == {15, 10}
    assert rules.tie_break == ["points", "years_in_post", "years_of_service", "age"]
    # A dict, a JSON string and bytes give the same rules; a changed value is taken as given.
    data = rules_2025()
    assert parse_rules(json.dumps(data)) == parse_rules(data) == rules
    assert parse_rules({**data, "max_wishes": 10}).max_wishes == 10


def _set(path: list, value: object):
    def change(data: dict) -> None:
        target = data
        for step in path[:-1]:
            target = target[step]
        if value is _DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value

    return change


_DELETE = object()


@pytest.mark.parametrize(
    ("change", "rule", "message"),
    [
        (_set(["tie_break", 2], "foo"), "tie_break[2]", "tie_break[2]: unknown criterion “foo”."),
        (_set(["tie_break", 3], "points"), "tie_break[3]", "tie_break[3]: “points” is already listed."),
        (_set(["tie_break"], []), "tie_break", "tie_break: the list must not be empty."),
        (_set(["max_wishes"], _DELETE), "max_wishes", "max_wishes: this rule is missing."),
        (_set(["max_wishes"], "15"), "max_wishes", "max_wishes: expected int, got str."),
        (_set(["max_wishes"], 0), "max_wishes", "max_wishes: the value must be >= 1."),
        (_set(["wishes"], 15), "wishes", "wishes: there is no such rule."),
        (_set(["scope"], "world"), "scope", "scope: “world” is not one of the allowed values."),
        (_set(["reference_date"], "31/08/2025"), "reference_date", "reference_date: not a date (YYYY-MM-DD)."),
        (
            _set(["priority_categories", 1, "min_years"], _DELETE),
            "priority_categories[1].min_years",
            "priority_categories[1].min_years: this rule is missing.",
        ),
        (
            _set(["priority_categories", 0, "kind"], "age"),
            "priority_categories[0].kind",
            "priority_categories[0].kind: “age” is not one of the allowed values.",
        ),
        (
            _set(["priority_categories", 1, "code"], "spouse_reunion"),
            "priority_categories[1].code",
            "priority_categories[1].code: “spouse_reunion” is already listed.",
        ),
        (
            _set(["priority_categories", 0, "situation"], "married"),
            "priority_categories[0].situation",
            "priority_categories[0].situation: unknown situation “married” (not in situations).",
        ),
        (
            _set(["bonus_points", 2, "points"], -5),
            "bonus_points[2].points",
            "bonus_points[2].points: the value must be >= 0.",
        ),
        (
            _set(["situations", 1], "Spouse At Home"),
            "situations[1]",
            "situations[1]: a code is lower-case letters, digits and underscores.",
        ),
        (_set(["eligible_positions", 0], "retired"), "eligible_positions[0]", None),
    ],
)
def test_rules_that_do_not_parse_are_refused_naming_the_rule(change, rule, message):
    data = copy.deepcopy(rules_2025())
    change(data)
    with pytest.raises(RuleError) as caught:
        parse_rules(data)
    assert caught.value.rule == rule and caught.value.field == rule
    assert caught.value.status_code == 400
    if message:
        assert str(caught.value) == message


def test_a_document_that_is_not_json_is_refused():
    with pytest.raises(RuleError, match=r"^rules: not valid JSON"):
        parse_rules(b'{"max_wishes": ')
    with pytest.raises(RuleError, match=r"^rules: expected object, got array"):
        parse_rules("[]")


def test_rule_errors_read_in_french_and_arabic():
    register_catalogue_dirs([LOCALE])
    data = rules_2025()
    data["tie_break"] = ["points", "foo"]
    with pytest.raises(RuleError) as caught:
        parse_rules(data)
    error = caught.value
    assert gettext_in("fr", error.msgid, **error.values) == "tie_break[1] : critère inconnu « foo »."
    assert gettext_in("ar", error.msgid, **error.values) == "tie_break[1]: معيار غير معروف «foo»."


@pytest.mark.parametrize("locale", ["fr", "ar"])
def test_every_movement_message_is_translated(locale):
    with (LOCALE / locale / "LC_MESSAGES" / "movement.po").open("rb") as handle:
        catalogue = {m.id: m.string for m in read_po(handle) if m.id}
    missing = [m for m in (*RULE_MESSAGES, *REASON_MESSAGES) if not catalogue.get(m)]
    assert not missing


def summary(**changes) -> StaffSummary:
    base = {
        "ref": "1234567",
        "position": "activite",
        "born_on": date(1980, 5, 1),
        "recruited_on": date(2005, 9, 1),
        "post_since": date(2019, 9, 1),
        "directorate_since": date(2015, 9, 1),
        "situations": frozenset(),
    }
    return StaffSummary(**{**base, **changes})


def test_eligibility_is_explained_condition_by_condition():
    rules = default_rules(2025)
    verdict = eligibility(summary(), rules)
    assert verdict.eligible and [(r.code, r.ok) for r in verdict.reasons] == [
        ("position", True),
        ("years_in_post", True),
    ]
    assert verdict.reasons[1].values == {"day": "2025-08-31", "years": 5, "minimum": 2}
    # One year short on the reference date (taken up 1 Sept 2023: 1 whole year on 31 Aug 2025).
    short = eligibility(summary(post_since=date(2023, 9, 1)), rules)
    assert not short.eligible and [r.ok for r in short.reasons] == [True, False]
    assert short.reasons[1].text() == "Years in the current post on 2025-08-31: 1 (the campaign requires at least 2)."
    away = eligibility(summary(position="detachement", post_since=None), rules)
    assert not away.eligible and [(r.code, r.ok) for r in away.reasons] == [
        ("position", False),
        ("years_in_post", False),
    ]
    # The threshold is the campaign's: a regional campaign asking one year accepts the same teacher.
    regional = parse_rules({**rules_2025(), "scope": "regional", "min_years_in_post": 1})
    assert eligibility(summary(post_since=date(2023, 9, 1)), regional).eligible


def test_standing_follows_the_rules():
    rules = default_rules(2025)
    plain = standing(summary(), rules)
    # 5 years in post ×2 + 9 years in the directorate ×2 (whole years on 31 Aug 2025), no bonus, no priority.
    assert plain.points_detail == [("years_in_post", 10), ("years_in_directorate", 18)]
    assert (plain.priority_class, plain.priority_code, plain.points) == (2, "ordinary", 28)
    # Spouse reunion comes first; bonuses: the highest of the accepted situations.
    spouse = standing(summary(situations=frozenset({"spouse_reunion", "disability", "spouse_at_home"})), rules)
    assert (spouse.priority_code, spouse.points) == ("spouse_reunion", 28 + 15)
    long = standing(summary(post_since=date(2012, 6, 1)), rules)
    assert (long.priority_class, long.priority_code) == (1, "twelve_years_in_post")
    summed = parse_rules({**rules_2025(), "bonus_combination": "sum"})
    both = standing(summary(situations=frozenset({"disability", "divorced_or_widowed_woman_returning_home"})), summed)
    assert both.points == 28 + 15 + 10
    # Tie-break key: points, then the earlier post, then the earlier recruitment, then the older.
    assert plain.tie_key == (
        -28,
        date(2019, 9, 1).toordinal(),
        date(2005, 9, 1).toordinal(),
        date(1980, 5, 1).toordinal(),
    )
    by_age = parse_rules({**rules_2025(), "tie_break": ["age", "points"]})
    assert standing(summary(), by_age).tie_key == (date(1980, 5, 1).toordinal(), -28)


def test_standing_orders_the_engine():
    """Two teachers want the one vacant post: the one the rules rank first gets it, and ties go to the elder."""
    rules = default_rules(2025)
    posts = [Post(1, 10, "MATH", "col", 1, 1, True), Post(2, 20, "MATH", "col", 1, 1), Post(3, 30, "MATH", "col", 1, 1)]

    def applicant(i: int, record: StaffSummary) -> Applicant:
        s = standing(record, rules)
        return Applicant(i, record.ref, "MATH", "col", s.priority_class, s.points, s.tie_key, i + 1, [Wish("post", 10)])

    younger = summary(ref="1", born_on=date(1990, 1, 1))
    older = summary(ref="2", born_on=date(1970, 1, 1))
    assert allocate([applicant(1, younger), applicant(2, older)], posts).holder_of(1) == 2
    reunion = summary(ref="1", situations=frozenset({"spouse_reunion"}), born_on=date(1990, 1, 1))
    assert allocate([applicant(1, reunion), applicant(2, older)], posts).holder_of(1) == 1
