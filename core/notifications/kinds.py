"""Notification kinds: what a module may send, declared through the ``madrasa_notification_kinds`` hook."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from core.plugins import PluginHost

#: The channels beyond the in-app inbox (which every notification always has).
CHANNELS: tuple[str, ...] = ("email", "sms")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_.]*$")


class NotificationKind(msgspec.Struct, frozen=True, kw_only=True):
    """A kind of notification a plugin sends (``attendance.absence``…).

    ``label`` is a message id (translated where it is shown); ``channels`` are the channels used when the
    person has not chosen (``email``, ``sms``; the in-app inbox always); ``mandatory_allowed``: a school or
    region may make the kind mandatory (nobody can switch its default channels off); ``sms_eligible``: a school
    or region may let the kind use SMS (it costs money: no SMS unless one does).
    """

    name: str
    label: str
    channels: frozenset[str] = frozenset({"email"})
    mandatory_allowed: bool = False
    sms_eligible: bool = False


class KindError(ValueError):
    """A kind declared wrongly (a bad name, an unknown channel, declared twice)."""


def collect_kinds(host: PluginHost) -> dict[str, NotificationKind]:
    """Every kind the plugins declare, by name; raises :class:`KindError` on a bad or doubled declaration."""
    found: dict[str, NotificationKind] = {}
    for plugin, kinds in host.each("madrasa_notification_kinds"):
        for kind in kinds:
            if not isinstance(kind, NotificationKind) or not _NAME_RE.match(kind.name):
                raise KindError(f"{plugin}: a notification kind is named <plugin>.<what>, not {kind!r}")
            if unknown := set(kind.channels) - set(CHANNELS):
                raise KindError(f"{plugin}: kind {kind.name!r} names unknown channels {sorted(unknown)}")
            if kind.name in found:
                raise KindError(f"{plugin}: the notification kind {kind.name!r} is declared twice")
            found[kind.name] = kind
    return found
