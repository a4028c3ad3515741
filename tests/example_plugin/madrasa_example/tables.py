"""The example plugin's one table: notes written by a school's staff (its own, like every plugin's)."""

from __future__ import annotations

from piccolo.columns import Integer, Serial, Text, Timestamptz
from piccolo.table import Table


class ExampleNote(Table, tablename="example_note"):
    """A note left at a school; scope columns make it tenant-owned (RLS on PostgreSQL)."""

    id = Serial(primary_key=True)
    region_id = Integer(index=True)
    province_id = Integer()
    school_id = Integer(index=True)
    author_id = Integer()
    body = Text()
    created_at = Timestamptz()


EXAMPLE_TABLES: list[type[Table]] = [ExampleNote]
