"""orgs.csv → the tenant tree: state → region, district/local → province, school → school."""

from __future__ import annotations

from typing import Any

from core.tenancy import KINDS, SLUG_RE, TenantInfo
from tenants import service as tenants
from tenants.oneroster import mapping
from tenants.oneroster.bundle import tr
from tenants.oneroster.importing.base import ImporterBase


class OrgsImport(ImporterBase):
    """Maps orgs onto the tenant tree below (or at, or above) the importing node."""

    def _ordered_orgs(self) -> list[dict[str, str]]:
        rows = self.bundle.by_id("orgs")
        out: list[dict[str, str]] = []
        state: dict[str, int] = {}

        def visit(sid: str) -> None:
            """Parents before children (depth first); a cycle is an error."""
            if state.get(sid) == 2:
                return
            if state.get(sid) == 1:
                self.error("orgs", rows[sid], "parentSourcedId", tr("org {sid!r} is its own ancestor", sid=sid))
                return
            state[sid] = 1
            parent = rows[sid].get("parentSourcedId", "")
            if parent in rows:
                visit(parent)
            state[sid] = 2
            out.append(rows[sid])

        for sid in rows:
            visit(sid)
        return out

    async def import_orgs(self) -> None:
        """Map orgs onto the tenant tree below (or at, or above) the importing node; create what is missing."""
        manage = await self.ctx.scope_for("tenants.manage")
        anchor_rank = KINDS.index(self.anchor.kind)
        taken: dict[int, str] = {}
        for row in self._ordered_orgs():
            sid = row["sourcedId"]
            kind = mapping.TYPE_KINDS.get(row["type"].casefold() if row["type"] else "")
            if kind is None:
                self.warn(
                    "orgs",
                    row,
                    "type",
                    tr("org {sid!r} of type {type!r} has no place in the tenant tree", sid=sid, type=row["type"]),
                )
                self.orgs[sid] = None
                continue
            rank = KINDS.index(kind)
            node: TenantInfo | None = None
            previous = self.linked("org", sid)
            if previous is not None:
                found = await self.ctx.services.tenants.by_id(previous)
                if (
                    found is not None
                    and found.kind == kind
                    and (found.id in self.anchor.path or self.anchor.covers(found))
                ):
                    node = found
            if node is None and rank <= anchor_rank:
                node = await self.ctx.services.tenants.by_id(self.anchor.path[rank])
            if node is None:
                node = await self._child_org(row, kind, manage)
                if node is None:
                    self.orgs[sid] = None
                    continue
            if rank <= anchor_rank and node.id != self.anchor.path[rank]:
                self.error(
                    "orgs",
                    row,
                    "sourcedId",
                    tr("org {sid!r} was imported elsewhere before; it is not part of this tenant", sid=sid),
                )
                continue
            if node.id in taken and rank <= anchor_rank and kind != "platform":
                self.error(
                    "orgs",
                    row,
                    "sourcedId",
                    tr(
                        "org {sid!r} and {taken!r} both stand for {slug}: import this bundle higher up",
                        sid=sid,
                        taken=taken[node.id],
                        slug=node.slug,
                    ),
                )
                continue
            taken[node.id] = sid
            self.orgs[sid] = node
            if kind != "platform":
                await self.link("org", sid, node.id)

    async def _child_org(self, row: dict[str, str], kind: str, manage: Any) -> TenantInfo | None:
        """An org below the importing node: found under its parent by slug or code, else created there."""
        sid = row["sourcedId"]
        expected = KINDS[KINDS.index(kind) - 1]
        parent_sid = row.get("parentSourcedId", "")
        parent: TenantInfo | None
        if parent_sid:
            parent = self.orgs.get(parent_sid)
            if parent is None:
                self.error(
                    "orgs",
                    row,
                    "parentSourcedId",
                    tr("the parent {parent_sid!r} of org {sid!r} was not imported", parent_sid=parent_sid, sid=sid),
                )
                return None
        elif self.anchor.kind == expected:
            parent = self.anchor
        else:
            self.error(
                "orgs",
                row,
                "parentSourcedId",
                tr(
                    "org {sid!r} ({type}) needs a parent org of type {expected} to be placed under {slug}",
                    sid=sid,
                    type=row["type"],
                    expected=mapping.KIND_TYPES[expected],
                    slug=self.anchor.slug,
                ),
            )
            return None
        if parent.kind != expected:
            self.error(
                "orgs",
                row,
                "parentSourcedId",
                tr(
                    "a {type} sits under a {expected} org, not under a {found} ({parent})",
                    type=row["type"],
                    expected=mapping.KIND_TYPES[expected],
                    found=mapping.KIND_TYPES[parent.kind],
                    parent=parent_sid or parent.slug,
                ),
            )
            return None
        identifier = row.get("identifier", "")[:40]
        candidates = await self.db.fetch(
            "SELECT id, slug, code FROM tenant WHERE parent_id = {} AND kind = {}", parent.id, kind
        )
        for cand in candidates:
            if cand["slug"] == sid.lower() or (identifier and cand["code"] == identifier):
                found = await self.ctx.services.tenants.by_id(cand["id"])
                self.count("orgs", "linked")
                return found
        if not manage.covers(parent.path):
            self.error(
                "orgs",
                row,
                "sourcedId",
                tr(
                    "org {sid!r} would be a new {kind} under {slug}: you may not create it",
                    sid=sid,
                    kind=kind,
                    slug=parent.slug,
                ),
            )
            return None
        readable = SLUG_RE.match(sid.lower()) and any(c.isalpha() for c in sid)
        slug = await self._free_slug(sid.lower() if readable else mapping.slugify(row["name"]))
        node = await tenants.create_node(
            self.ctx,
            parent,
            kind=kind,
            slug=slug,
            code=identifier or None,
            name_ar=row.get("metadata.nameAr", "")[:200],
            name_fr=row["name"][:200],
            name_en=row.get("metadata.nameEn", "")[:200],
            default_locale=parent.default_locale,
        )
        self.count("orgs", "created")
        return node

    async def _free_slug(self, base: str) -> str:
        slug, n = base[:80], 1
        while await self.db.fetchval("SELECT id FROM tenant WHERE slug = {}", slug) is not None:
            n += 1
            slug = f"{base[:74]}-{n}"
        return slug
