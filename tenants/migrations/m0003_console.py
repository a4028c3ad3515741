"""Console: a school code names one school on the whole platform (a partial unique index on ``tenant``)."""

from core.migrate import Migrator

DEPENDS_ON = [("core", "m0001_initial")]

#: Schools sharing a code, which the index would refuse; listed in the error so they can be fixed first.
DUPLICATES = (
    "SELECT code, COUNT(*) AS n FROM tenant WHERE kind = 'school' AND code IS NOT NULL "
    "GROUP BY code HAVING COUNT(*) > 1 ORDER BY code"
)


async def forwards(m: Migrator) -> None:
    """Refuse a second school with the same code, also when two creations race.

    Regions and provinces keep their own numbering (a region's code may equal a province's), so
    only schools are covered. Fails with the duplicated codes named when existing data has some.
    """
    duplicates = await m.engine.run_ddl(DUPLICATES)
    if duplicates:
        listed = ", ".join(f"{r['code']} ({r['n']} schools)" for r in duplicates[:20])
        raise RuntimeError(f"school codes used more than once; give each school its own code first: {listed}")
    await m.sql(
        "CREATE UNIQUE INDEX tenant_school_code ON \"tenant\" (code) WHERE kind = 'school' AND code IS NOT NULL"
    )
