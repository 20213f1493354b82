"""asyncpg SQL, one module per noun. Use-case modules call these; nothing else writes SQL."""
