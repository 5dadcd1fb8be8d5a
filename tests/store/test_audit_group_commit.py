"""Group commit of audit rows: rows recorded together go into one write, and what the audit promises is
kept — a row is committed when its commit (what ``record`` returns) is awaited, rows keep their order, a
row recorded and not yet awaited goes in with the next one awaited, none is lost when its caller is
cancelled or the bot shuts down, and a failed write reaches every caller of its batch."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.core.rules.audit import AuditEntry, AuditKind
from bot.store.audit import BATCH_LIMIT, SqlAuditLog
from bot.store.database import open_database
from bot.store.engine import Database, SqliteDatabase

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "bot.sqlite3"


@pytest.fixture
async def database(path: Path) -> AsyncIterator[Database]:
    connection = await open_database(path)
    yield connection
    await connection.close()


def entry(number: int) -> AuditEntry:
    return AuditEntry(AuditKind.COMMAND, user_id=f"U{number}", detail={"n": number})


def committed_users(path: Path) -> list[str]:
    """What another connection sees: only committed rows."""
    with sqlite3.connect(path) as other:
        return [row[0] for row in other.execute("SELECT user_id FROM audit ORDER BY seq")]


async def inserts_while(database: Database, work: Awaitable[object]) -> list[str]:
    assert isinstance(database, SqliteDatabase)
    statements: list[str] = []
    await database.connection.set_trace_callback(statements.append)
    await work
    await database.connection.set_trace_callback(lambda statement: None)
    return [s for s in statements if s.lstrip().upper().startswith("INSERT INTO AUDIT")]


async def test_rows_recorded_together_go_in_one_write_in_their_order(database: Database, path: Path) -> None:
    audit = SqlAuditLog(database, lambda: NOW)
    inserts = await inserts_while(database, asyncio.gather(*(audit.record(entry(n)) for n in range(20))))
    assert len(inserts) == 1
    assert committed_users(path) == [f"U{n}" for n in range(20)]


async def test_a_row_is_committed_when_record_returns(database: Database, path: Path) -> None:
    audit = SqlAuditLog(database, lambda: NOW)
    await audit.record(entry(1))
    assert committed_users(path) == ["U1"]
    await audit.record(entry(2))
    assert committed_users(path) == ["U1", "U2"]


async def test_rows_recorded_during_a_write_follow_in_the_next(database: Database, path: Path) -> None:
    audit = SqlAuditLog(database, lambda: NOW)

    async def record_during_a_write() -> None:
        first = asyncio.ensure_future(audit.record(entry(1)))
        await asyncio.sleep(0)  # the writer is started …
        await asyncio.sleep(0)  # … and has taken row 1
        later = [asyncio.ensure_future(audit.record(entry(n))) for n in (2, 3)]
        await asyncio.gather(first, *later)

    inserts = await inserts_while(database, record_during_a_write())
    assert len(inserts) == 2
    assert committed_users(path) == ["U1", "U2", "U3"]


async def test_a_row_not_yet_awaited_goes_in_with_the_next_one_awaited(
    database: Database, path: Path
) -> None:
    audit = SqlAuditLog(database, lambda: NOW)

    async def record_two() -> None:
        first = audit.record(entry(1))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert committed_users(path) == []  # nothing is written until a commit is awaited
        await audit.record(entry(2))
        assert committed_users(path) == ["U1", "U2"]
        await first

    inserts = await inserts_while(database, record_two())
    assert len(inserts) == 1


async def test_large_batches_are_split(database: Database, path: Path) -> None:
    audit = SqlAuditLog(database, lambda: NOW)
    count = BATCH_LIMIT + 5
    inserts = await inserts_while(database, asyncio.gather(*(audit.record(entry(n)) for n in range(count))))
    assert len(inserts) == 2 and len(committed_users(path)) == count


async def test_a_cancelled_caller_s_row_is_written_and_flush_waits_for_it(
    database: Database, path: Path
) -> None:
    audit = SqlAuditLog(database, lambda: NOW)
    caller = asyncio.ensure_future(audit.record(entry(1)))
    await asyncio.sleep(0)
    caller.cancel()
    unawaited = asyncio.ensure_future(audit.record(entry(2)))
    audit.record(entry(3))  # never awaited
    await audit.flush()
    assert committed_users(path) == ["U1", "U2", "U3"]
    assert unawaited.done() and caller.cancelled()


async def test_a_failed_write_reaches_every_caller_of_its_batch(
    database: Database, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    audit = SqlAuditLog(database, lambda: NOW)
    real_insert = audit._insert

    async def failing(rows: list[tuple[str | None, ...]]) -> None:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(audit, "_insert", failing)
    results = await asyncio.gather(audit.record(entry(1)), audit.record(entry(2)), return_exceptions=True)
    assert [type(r) for r in results] == [sqlite3.OperationalError] * 2

    monkeypatch.setattr(audit, "_insert", real_insert)
    await audit.record(entry(3))
    assert committed_users(path) == ["U3"]
