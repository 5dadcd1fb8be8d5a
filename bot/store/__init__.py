"""SQLite persistence (aiosqlite, WAL): backup requests, the audit trail and tracking state."""
