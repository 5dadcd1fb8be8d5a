"""Persistence: backup requests, the audit trail and tracking state, in SQLite (aiosqlite, WAL) or PostgreSQL
(asyncpg), through one small layer of our own (:mod:`bot.store.engine`)."""
