"""Background jobs: the ``job`` table (status, progress, result) with row-level security."""

from core.jobs import JOB_TABLES
from core.migrate import Migrator


async def forwards(m: Migrator) -> None:
    """Create the table, an index for a tenant's recent jobs, and its RLS policy."""
    await m.create_tables(*JOB_TABLES)
    await m.sql('CREATE INDEX job_school_created ON "job" (school_id, created_at)')
    for table in JOB_TABLES:
        await m.enable_rls(table._meta.tablename)
