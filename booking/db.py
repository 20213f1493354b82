"""PostgreSQL: the connection pool and the numbered-migration runner."""

from __future__ import annotations

import logging
from importlib import resources

import asyncpg
import orjson

log = logging.getLogger(__name__)

# Any constant works; it only has to be the same for every process that migrates.
_MIGRATION_LOCK = 724_113_901
COMMAND_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 5.0


async def _init_connection(conn: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name,
            encoder=lambda value: orjson.dumps(value).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


async def create_pool(database_url: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        # A PostgreSQL that hangs instead of refusing must fail a statement, not stall the
        # hold writer (and every reserve behind it) forever.
        command_timeout=COMMAND_TIMEOUT_S,
        timeout=CONNECT_TIMEOUT_S,
    )
    assert pool is not None
    return pool


def migration_files() -> list[tuple[int, str, str]]:
    """(number, name, sql) of every `booking/migrations/NNNN_name.sql`, in order."""
    found = []
    for entry in resources.files("booking.migrations").iterdir():
        if entry.name.endswith(".sql"):
            number, _, _ = entry.name.partition("_")
            found.append((int(number), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


async def migrate(database_url: str) -> list[str]:
    """Apply the migrations not yet applied; safe to run any number of times, concurrently too."""
    conn = await asyncpg.connect(database_url)
    applied_now: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   number int PRIMARY KEY,
                   name text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {row["number"] for row in await conn.fetch("SELECT number FROM schema_migrations")}
        for number, name, sql in migration_files():
            if number in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (number, name) VALUES ($1, $2)", number, name
                )
            applied_now.append(name)
            log.info("applied migration %s", name)
    finally:
        try:
            await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
        finally:
            await conn.close()
    return applied_now
