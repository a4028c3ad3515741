"""Tables of the OneRoster exchange: which of our rows a bundle's sourcedId stands for, per importing tenant."""

from __future__ import annotations

from typing import Any

from piccolo.columns import Integer, Serial, Timestamptz, Varchar
from piccolo.table import Table


class OneRosterLink(Table, tablename="oneroster_link"):
    """A sourcedId seen in a bundle imported at a tenant node (``anchor_id``), and the row it became.

    ``kind`` names the OneRoster object and what ``local_id`` points at (``org`` → tenant, ``session`` → term
    or school year, ``course``, ``class`` → school_class, ``user`` → person, ``pupil`` → student,
    ``enrollment`` → enrolment or teaching assignment, ``lineItem`` → grade assessment, ``result`` → grade mark).
    The scope columns are those of the anchor, so a link is seen only by whoever may import there.
    """

    id = Serial(primary_key=True)
    region_id = Integer(null=True, default=None, index=True)
    province_id = Integer(null=True, default=None)
    school_id = Integer(null=True, default=None, index=True)
    anchor_id = Integer()
    #: The sending system (the manifest's ``source.systemCode``, else ``source.systemName``): two systems may
    #: use the same sourcedIds for different things.
    source = Varchar(length=100, default="")
    kind = Varchar(length=24)
    sourced_id = Varchar(length=255)
    local_id = Integer()
    #: A second key where one sourcedId stands for a pair (a course: level code and subject code).
    local_key = Varchar(length=40, default="")
    updated_at = Timestamptz()


EXCHANGE_TABLES: list[Any] = [OneRosterLink]
