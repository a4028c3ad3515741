"""OneRoster exchange: the sourcedId links of imported bundles, with row-level security."""

from core.migrate import Migrator
from tenants.exchange_tables import OneRosterLink


async def forwards(m: Migrator) -> None:
    """Create the link table, its unique key per importing tenant, and RLS."""
    await m.create_tables(OneRosterLink)
    await m.sql('CREATE UNIQUE INDEX oneroster_link_key ON "oneroster_link" (anchor_id, source, kind, sourced_id)')
    await m.enable_rls("oneroster_link")
