"""The transfer movement as a library: campaign rules (``rules``), eligibility (``eligibility``), applicants'
priority and points (``standing``), the allocation engine (``engine``) and its explanations and re-run diffs
(``explanations``). Pure functions over msgspec Structs: no database, no routes.
"""
