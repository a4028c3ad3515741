"""The tenant scope of a request: which tenant nodes its data access may touch."""

from __future__ import annotations

import msgspec


class Scope(msgspec.Struct, frozen=True):
    """Tenant nodes (region, province or school ids) whose subtrees are visible.

    ``platform`` grants every node; an empty scope sees nothing.
    """

    nodes: frozenset[int] = frozenset()
    platform: bool = False

    @classmethod
    def nothing(cls) -> Scope:
        """A scope that matches no row."""
        return cls()

    @classmethod
    def everything(cls) -> Scope:
        """The platform scope (platform administrators, migrations, the demo loader)."""
        return cls(platform=True)

    def covers(self, path: tuple[int, ...]) -> bool:
        """Whether a tenant node (given by its root-first path) lies inside this scope."""
        return self.platform or any(node in self.nodes for node in path)

    def __bool__(self) -> bool:
        return self.platform or bool(self.nodes)
