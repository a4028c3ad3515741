"""The HR module — not available to schools yet: its pages are only a landing page that says so.

Staff records, the administrative situation, payslips, transfers and the duty roster are planned. Until they
exist the module is off by default, so no school is offered a feature that is not there. What exists is the
transfer movement's allocation engine, a library with no tables, routes or pages (:mod:`plugins.hr.movement`).

Movement rules (README)
-----------------------

A campaign's rules are data (:mod:`plugins.hr.movement.rules`), never constants in code. The 2025 national
campaign's rules ship in ``plugins/hr/movement/rules_2025.json``; ``default_rules(2025)`` loads them. Each value,
its source and its confidence ([V] stated by the source, [P] partly supported or secondary, [U] unverified):

- ``scope: national``; the regional and provincial movements take ``min_years_in_post: 1`` [V] (dalilrif 2025,
  expresstv 2025).
- ``min_years_in_post: 2``, counted up to the end of the school year, hence ``reference_date: 2025-08-31``: 2
  school years [V] (dalilrif 2025, kechpresse 2025); the exact reference day is [U].
- ``max_wishes: 15`` establishments or communes [V] (kechpresse 2025, dalilrif 2025); the 16th "accept other
  posts" option is not modelled. ``wish_kinds``: a school's post, a commune or a province ("any post there") [V]
  for schools and communes, [P] for provinces (the 2017 "any post in the province" option).
- ``priority_categories``: spouse reunion, then 12+ years in the current post [V] (dalilrif 2025, sefroupress).
- ``bonus_points``: 15 for a stay-at-home spouse or a spouse not eligible for reunion, and for a disability; 10
  for divorced or widowed women returning home and divorced or widowed men with children under 18 [V] (dalilrif
  2025; the source's list of 10-point cases is cut off, so it may be longer). ``bonus_combination: highest``
  (whether bonuses add up) is [U].
- ``points_per_year_in_post: 2`` and ``points_per_year_in_directorate: 2`` [P] (vuseen 2023, a secondary site);
  points per child or for general seniority are [U] and left out.
- ``tie_break``: points, years in post, years of service, age (the older first) [U]: the usual practice, not
  confirmed; the applicant's id breaks any remaining tie.
- ``eligible_positions: [activite]`` [U]: only staff in activity apply.
- ``situations``: the declared situations the rules refer to; the province accepts or rejects each one.

A rule that does not parse is refused with a :class:`~plugins.hr.movement.rules.RuleError` naming it
(``tie_break[2]: unknown criterion “foo”.``), translated in ``plugins/hr/locale``.
"""
