"""asyncpg SQL, one module per noun. Use-case modules call these; nothing else writes SQL."""

from __future__ import annotations

from typing import TypeAlias

import asyncpg

# A connection (inside a transaction) or the pool (a statement on its own).
Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool
