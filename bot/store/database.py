"""Opening the database (and migrating its schema: :mod:`bot.store.migrations`); times as stored."""

from __future__ import annotations

import errno
import socket
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from bot.database_url import PostgresUrl, is_postgres_url
from bot.store.engine import CONNECT_TIMEOUT, Database, PostgresDatabase, SqliteDatabase
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


async def open_database(target: Path | str | PostgresUrl) -> Database:
    """The database ``target`` names (a SQLite file's path, or a PostgreSQL URL), its schema migrated to
    this release's."""
    if isinstance(target, str) and is_postgres_url(target):
        target = PostgresUrl(target)
    database: Database
    if isinstance(target, PostgresUrl):
        database = await PostgresDatabase.open(target.secret())
    else:
        database = await SqliteDatabase.open(target)
    try:
        await migrate(database)
    except BaseException:
        await database.close()
        raise
    return database


def database_problem(error: BaseException, target: Path | PostgresUrl) -> str:
    """Why opening ``target`` failed, in one line of this bot's words, without the password."""
    if isinstance(error, TimeoutError):
        text = f"no answer within {CONNECT_TIMEOUT:g} s"
    elif isinstance(error, socket.gaierror):
        text = "cannot resolve the host name"
    elif isinstance(error, OSError) and not isinstance(target, Path):
        refused = error.errno == errno.ECONNREFUSED or isinstance(error, ConnectionRefusedError)
        text = f"cannot connect to {target.host}:{target.port} ({'connection refused' if refused else error})"
    elif isinstance(error, asyncpg.PostgresError):
        text = error.args[0] if error.args else type(error).__name__
    else:
        text = str(error) or type(error).__name__
    text = " ".join(str(text).split())
    return target.redact(text) if isinstance(target, PostgresUrl) else text
