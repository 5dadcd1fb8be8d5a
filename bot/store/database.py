"""Opening the database and migrating its schema on start-up."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import aiosqlite

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

# Each entry moves the schema one version up; never edit an entry once released, append a new one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE requests (
        request_id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        requester_id TEXT NOT NULL,
        requester_name TEXT NOT NULL,
        channel_id TEXT NOT NULL,
        instance_id TEXT NOT NULL,
        instance_name TEXT NOT NULL,
        backup_format TEXT NOT NULL,
        remark TEXT NOT NULL,
        rule TEXT NOT NULL,
        approval TEXT NOT NULL,
        approvers TEXT NOT NULL,
        response_url TEXT,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        updated_at TEXT,
        confirmed_by TEXT,
        approved_by TEXT,
        submitted_at TEXT,
        backup_id TEXT,
        error_code TEXT,
        error_msg TEXT,
        message_ts TEXT,
        approval_message_ts TEXT
    );
    CREATE INDEX requests_by_state ON requests (state);
    CREATE INDEX requests_by_backup ON requests (backup_id);

    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        user_id TEXT,
        channel_id TEXT,
        request_id TEXT,
        instance_id TEXT,
        instance_name TEXT,
        backup_id TEXT,
        rule TEXT,
        outcome TEXT,
        detail TEXT NOT NULL
    );
    CREATE INDEX audit_by_time ON audit (at);
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
    """,
    """
    ALTER TABLE requests ADD COLUMN backup_status TEXT;
    ALTER TABLE requests ADD COLUMN finished_at TEXT;

    CREATE TABLE watch_state (
        channel_id TEXT NOT NULL,
        instance_id TEXT NOT NULL,
        instance_name TEXT NOT NULL,
        watching_since TEXT NOT NULL,
        stale_since TEXT,
        PRIMARY KEY (channel_id, instance_id)
    );

    CREATE TABLE watch_seen (
        channel_id TEXT NOT NULL,
        backup_id TEXT NOT NULL,
        instance_id TEXT NOT NULL,
        status TEXT NOT NULL,
        announced INTEGER NOT NULL,
        seen_at TEXT NOT NULL,
        PRIMARY KEY (channel_id, backup_id)
    );
    """,
    """
    ALTER TABLE requests ADD COLUMN sent_at TEXT;
    ALTER TABLE requests ADD COLUMN answer_lost_at TEXT;
    ALTER TABLE requests ADD COLUMN notice_due TEXT;
    ALTER TABLE requests ADD COLUMN notice_refused_since TEXT;
    ALTER TABLE requests ADD COLUMN error_status INTEGER;
    ALTER TABLE requests ADD COLUMN error_hint TEXT;
    ALTER TABLE requests ADD COLUMN error_request_id TEXT;
    CREATE INDEX requests_by_instance ON requests (instance_id, state);
    CREATE INDEX requests_owing_notices ON requests (notice_due) WHERE notice_due IS NOT NULL;
    """,
    """
    ALTER TABLE requests ADD COLUMN cloud TEXT;
    ALTER TABLE requests ADD COLUMN instance_tags TEXT;
    """,
    """
    ALTER TABLE audit ADD COLUMN cloud TEXT;
    """,
    # Several replicas: the lease on the background work (one row per lease name, its holder, the fencing
    # epoch that grows with every change of holder, and its expiry by the database's clock), and each
    # submission's claim by the replica making it (renewed while that replica lives).
    """
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        expires_at TEXT NOT NULL
    );
    ALTER TABLE requests ADD COLUMN claimed_by TEXT;
    ALTER TABLE requests ADD COLUMN claim_until TEXT;
    """,
]


def to_db_time(moment: datetime) -> str:
    """One fixed UTC format, ``_TIME_FORMAT`` (``2026-01-02T03:04:05.000006Z``), so that text comparison in
    SQL orders times correctly. ``isoformat`` writes the same text as ``strftime(_TIME_FORMAT)`` (for years
    1000–9999) at a fraction of the cost."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def from_db_time(text: str) -> datetime:
    """Reads what :func:`to_db_time` writes (every row ever stored has that format), as an aware UTC time;
    ``fromisoformat`` is several times faster than ``strptime``."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None or len(text) != _TIME_LENGTH or not text.endswith("Z"):
        raise ValueError(f"not a stored time: {text!r}")
    return moment


_TIME_LENGTH = len("2026-01-02T03:04:05.000006Z")


def maybe_time(text: str | None) -> datetime | None:
    return None if text is None else from_db_time(text)


async def open_database(path: Path | str) -> aiosqlite.Connection:
    connection = await aiosqlite.connect(path, isolation_level=None)
    try:
        connection.row_factory = aiosqlite.Row
        await connection.execute("PRAGMA journal_mode=WAL")
        await connection.execute("PRAGMA synchronous=NORMAL")
        await connection.execute("PRAGMA busy_timeout=5000")
        await migrate(connection)
    except BaseException:
        await connection.close()
        raise
    return connection


async def schema_version(connection: aiosqlite.Connection) -> int:
    async with connection.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row is not None else 0


async def migrate(connection: aiosqlite.Connection) -> None:
    version = await schema_version(connection)
    if version > len(MIGRATIONS):
        raise RuntimeError(
            f"the database schema is version {version}, newer than this bot knows ({len(MIGRATIONS)})"
        )
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        await connection.executescript(
            f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;"
        )
