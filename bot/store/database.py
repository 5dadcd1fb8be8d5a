"""Opening the database (and migrating its schema: :mod:`bot.store.migrations`); times as stored."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bot.store.engine import Database, PostgresDatabase, SqliteDatabase
from bot.store.migrations import migrate

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


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


def is_postgres_url(target: str) -> bool:
    """Whether ``BOT_DATABASE`` names a PostgreSQL database rather than a SQLite file."""
    return target.startswith(("postgresql://", "postgres://"))


async def open_database(target: Path | str) -> Database:
    """The database ``target`` names (a SQLite file's path, or a ``postgresql://`` URL), its schema
    migrated to this release's."""
    database: Database
    if isinstance(target, str) and is_postgres_url(target):
        database = await PostgresDatabase.open(target)
    else:
        database = await SqliteDatabase.open(target)
    try:
        await migrate(database)
    except BaseException:
        await database.close()
        raise
    return database
