"""orgs.csv: the exported node, the nodes below it the scope covers, and their ancestors (region → state, …)."""

from __future__ import annotations

from typing import Any

from core.tenancy import parse_path
from tenants.oneroster import mapping
from tenants.oneroster.exporting.base import ExporterBase

NODE = "SELECT id, kind, parent_id, path, slug, code, name_fr, name_ar, name_en FROM tenant WHERE id = {}"


class OrgsExport(ExporterBase):
    """The tenant tree: sets ``nodes``, ``slug``, ``schools``, ``region_of`` and ``course_org``."""

    async def read_orgs(self) -> list[dict[str, str]]:
        """The orgs rows, parents first; the other parts use the nodes read here."""
        db = self.db
        scope = self.ctx.scope
        prefix = "/".join(str(p) for p in self.tenant.path) + "/"
        rows = await db.fetch(
            "SELECT id, kind, parent_id, path, slug, code, name_fr, name_ar, name_en FROM tenant "
            "WHERE path LIKE {} ORDER BY path",
            prefix + "%",
        )
        nodes: dict[int, dict[str, Any]] = {r["id"]: r for r in rows if scope.covers(parse_path(r["path"]))}
        for r in list(nodes.values()):
            for ancestor in parse_path(r["path"])[1:-1]:
                if ancestor not in nodes:
                    found = await db.fetchrow(NODE, ancestor)
                    if found is not None:
                        nodes[ancestor] = found
        if self.tenant.kind == "platform":
            root = await db.fetchrow(NODE, self.tenant.id)
            assert root is not None
            nodes[root["id"]] = root
        else:
            nodes.pop(self.tenant.path[0], None)
        self.nodes = nodes
        self.slug: dict[int, str] = {i: r["slug"] for i, r in nodes.items()}
        self.schools: list[int] = sorted(i for i, r in nodes.items() if r["kind"] == "school")
        self.region_of: dict[int, int] = {i: parse_path(nodes[i]["path"])[1] for i in self.schools}
        self.course_org: str = (
            self.slug[self.tenant.id]
            if self.tenant.id in self.slug
            else self.slug[min(nodes, key=lambda n: len(nodes[n]["path"]))]
        )
        return [
            {
                "sourcedId": r["slug"],
                "name": r["name_fr"] or r["slug"],
                "type": mapping.KIND_TYPES[r["kind"]],
                "identifier": r["code"] or "",
                "parentSourcedId": self.slug.get(r["parent_id"], ""),
                "metadata.nameAr": r["name_ar"],
                "metadata.nameEn": r["name_en"],
            }
            for r in sorted(nodes.values(), key=lambda r: (len(r["path"]), r["path"]))
        ]
