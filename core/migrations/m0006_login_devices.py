"""Login throttling per (account, address) and per known device: ``login_attempt.device``.

A failed login now records the known device it came from (the nonce of the account's signed token the
client presented), so an account's failures from elsewhere no longer slow the devices it logged in from.
The index serves the pair's lookup (account and address, newest first).
"""

from core.migrate import Migrator

DEPENDS_ON = [("core", "m0001_initial")]

#: The column as this migration adds it, per dialect (frozen text).
COLUMNS = {
    "postgres": ('ALTER TABLE "login_attempt" ADD COLUMN "device" VARCHAR(64) NOT NULL DEFAULT \'\'',),
    "sqlite": ('ALTER TABLE "login_attempt" ADD COLUMN "device" VARCHAR(64) NOT NULL DEFAULT \'\'',),
}


async def forwards(m: Migrator) -> None:
    """Add the column (existing failures count as unknown devices) and the pair's index."""
    await m.ddl(COLUMNS)
    await m.sql('CREATE INDEX login_attempt_pair ON "login_attempt" (email, ip, at)')
