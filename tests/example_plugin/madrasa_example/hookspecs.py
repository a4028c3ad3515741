"""Hooks the example plugin declares for other plugins (added through ``madrasa_addhooks``)."""

from __future__ import annotations

from core.plugin_api import hookspec


@hookspec
def madrasa_example_greetings(school_id: int) -> list[str]:
    """Return extra greetings for a school's hello page; only plugins enabled there are asked."""
