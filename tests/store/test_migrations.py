"""Migrations: one ordered list in both dialects, recorded in schema_migrations, applied once even when
several processes start together; a SQLite file of the last release (PRAGMA user_version 5) upgrades."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest

from bot.core.rules.backup_request import UNSETTLED_STATES
from bot.store.database import open_database
from bot.store.engine import Database
from bot.store.migrations import MIGRATIONS, schema_version

#: PRAGMA user_version of the last release on SQLite alone.
LAST_SQLITE_RELEASE = 5


async def applied(database: Database) -> list[int]:
    rows = await database.fetch_all("SELECT version FROM schema_migrations ORDER BY version")
    return [int(row["version"]) for row in rows]


async def test_every_migration_is_recorded_once(database: Database) -> None:
    assert await applied(database) == list(range(1, len(MIGRATIONS) + 1))
    assert await schema_version(database) == len(MIGRATIONS)


async def test_a_migrated_sqlite_file_is_left_alone_and_keeps_user_version(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    first = await open_database(path)
    await first.close()
    second = await open_database(path)
    try:
        assert await applied(second) == list(range(1, len(MIGRATIONS) + 1))
        # An older release reads user_version, and so refuses a file newer than it knows.
        assert await second.fetch_value("PRAGMA user_version") == len(MIGRATIONS)
        assert await second.fetch_value("PRAGMA journal_mode") == "wal"
    finally:
        await second.close()


async def test_a_sqlite_file_of_the_last_release_adopts_its_user_version(tmp_path: Path) -> None:
    path = tmp_path / "release.sqlite3"
    with closing(sqlite3.connect(path)) as raw:
        for number, migration in enumerate(MIGRATIONS[:LAST_SQLITE_RELEASE], start=1):
            raw.executescript(f"BEGIN;\n{migration.sqlite}\nPRAGMA user_version = {number};\nCOMMIT;")
        raw.execute(
            "INSERT INTO audit (at, kind, detail, cloud)"
            " VALUES ('2026-11-26T12:00:00.000000Z', 'command', '{}', 'x')"
        )
        raw.commit()

    database = await open_database(path)
    try:
        assert await applied(database) == list(range(1, len(MIGRATIONS) + 1))
        assert await database.fetch_value("SELECT count(*) FROM audit") == 1
    finally:
        await database.close()


async def test_a_newer_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    with closing(sqlite3.connect(path)) as raw:
        raw.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(RuntimeError, match="newer"):
        await open_database(path)


async def test_a_newer_postgres_database_is_refused(postgres_url: str) -> None:
    database = await open_database(postgres_url)
    await database.execute(
        "INSERT INTO schema_migrations (version, applied_at) VALUES (:version, 'later')",
        {"version": len(MIGRATIONS) + 1},
    )
    await database.close()
    with pytest.raises(RuntimeError, match="newer"):
        await open_database(postgres_url)


async def test_replicas_starting_together_on_postgres_migrate_once(postgres_url: str) -> None:
    opened = await asyncio.gather(*(open_database(postgres_url) for _ in range(6)))
    try:
        for database in opened:
            assert await applied(database) == list(range(1, len(MIGRATIONS) + 1))
        assert (
            await opened[0].fetch_value(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'audit'"
            )
            == 1
        )
    finally:
        await asyncio.gather(*(database.close() for database in opened))


def test_the_unique_index_of_unsettled_requests_names_the_unsettled_states() -> None:
    index = next(m.postgresql for m in MIGRATIONS if "requests_one_unsettled_per_instance" in m.postgresql)
    states = set(re.findall(r"'(\w+)'", index))
    assert states == {str(state) for state in UNSETTLED_STATES}


async def test_a_new_sqlite_file_opens_while_another_process_holds_its_first_lock(tmp_path: Path) -> None:
    # What a replica starting at the same moment does to a new file: holds a lock while it creates the
    # schema. Switching to WAL then answered "database is locked" at once, without waiting.
    path = tmp_path / "bot.sqlite3"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("CREATE TABLE another_process_was_here (x INTEGER)")
        release = threading.Timer(0.2, other.execute, ["COMMIT"])
        release.start()
        database = await open_database(path)
        release.join()
    finally:
        other.close()
    try:
        assert await database.fetch_value("PRAGMA journal_mode") == "wal"
        assert await applied(database) == list(range(1, len(MIGRATIONS) + 1))
    finally:
        await database.close()


_OPEN_AT = """
import asyncio, sys, time
from bot.store.database import open_database

async def main() -> None:
    time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
    database = await open_database(sys.argv[1])
    await database.close()

asyncio.run(main())
"""


def test_replicas_starting_together_on_a_new_sqlite_file_migrate_once(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    start = time.time() + 2.0  # every process has imported the bot by then
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_AT, str(path), str(start)], stderr=subprocess.PIPE, text=True
        )
        for _ in range(6)
    ]
    errors = [process.communicate(timeout=60)[1] for process in processes]

    assert [process.returncode for process in processes] == [0] * 6, errors
    with closing(sqlite3.connect(path)) as raw:
        versions = [row[0] for row in raw.execute("SELECT version FROM schema_migrations ORDER BY version")]
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert versions == list(range(1, len(MIGRATIONS) + 1))
