"""The audit trail read as a stream (batches, ``--since`` on times out of order, a fixed end) and
the widths a table needs; pruning more rows than one delete statement takes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.core.rules.audit import AuditEntry, AuditKind
from bot.core.rules.backup_request import RequestState
from bot.store.audit import SqlAuditLog
from bot.store.database import to_db_time
from bot.store.engine import Database
from bot.store.requests import SqlRequestStore
from bot.store.watch import SqlWatchStore
from tests.factories import make_request

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


async def test_a_stream_in_small_batches_is_the_whole_trail_in_order(database: Database) -> None:
    audit = SqlAuditLog(database, lambda: NOW)
    for n in range(10):
        await audit.record(AuditEntry(AuditKind.COMMAND, user_id=f"U{n}", detail={"n": n}))

    streamed = [record async for record in audit.stream(batch=3)]

    assert [r.seq for r in streamed] == list(range(1, 11))
    assert [r.entry.detail for r in streamed] == [{"n": n} for n in range(10)]
    assert streamed == await audit.records()


async def test_since_picks_records_by_time_even_when_times_are_out_of_order(
    database: Database,
) -> None:
    clock = Clock()
    audit = SqlAuditLog(database, clock)
    # A clock set back between records: seq order and time order differ.
    for minutes in (0, 10, 5, 20, 1, 30):
        clock.now = NOW + timedelta(minutes=minutes)
        await audit.record(AuditEntry(AuditKind.COMMAND, outcome=str(minutes)))

    since = NOW + timedelta(minutes=5)
    streamed = [r.entry.outcome async for r in audit.stream(since, batch=2)]

    assert streamed == ["10", "5", "20", "30"]
    assert [r.entry.outcome async for r in audit.stream(NOW + timedelta(days=1))] == []


async def test_a_stream_ends_where_the_trail_ended_when_it_began(database: Database) -> None:
    audit = SqlAuditLog(database, lambda: NOW)
    for _ in range(5):
        await audit.record(AuditEntry(AuditKind.COMMAND))
    upto = await audit.last_seq()

    seen = []
    async for record in audit.stream(upto=upto, batch=2):
        seen.append(record.seq)
        await audit.record(AuditEntry(AuditKind.NOTICE))  # written while the trail is read

    assert seen == [1, 2, 3, 4, 5]
    assert await audit.last_seq() == 10


async def test_an_empty_trail(database: Database) -> None:
    audit = SqlAuditLog(database, lambda: NOW)

    assert await audit.last_seq() == 0
    assert [r async for r in audit.stream()] == []
    assert await audit.longest(["kind", "user_id"]) == {"kind": 0, "user_id": 0}


async def test_longest_measures_the_columns_a_table_shows(database: Database) -> None:
    clock = Clock()
    audit = SqlAuditLog(database, clock)
    await audit.record(AuditEntry(AuditKind.CONFIRMATION_SHOWN, user_id="UALICE1", instance_name="ä" * 40))
    clock.now = NOW + timedelta(hours=1)
    await audit.record(AuditEntry(AuditKind.API_CALL, user_id="ULONGERUSER1", rule="sre-prod"))

    everything = await audit.longest(["seq", "kind", "user_id", "instance_name", "rule", "backup_id"])
    later = await audit.longest(["kind", "user_id", "instance_name"], NOW + timedelta(minutes=1))

    assert everything == {
        "seq": 1,
        "kind": len("confirmation_shown"),
        "user_id": len("ULONGERUSER1"),
        "instance_name": 40,  # characters, not bytes
        "rule": len("sre-prod"),
        "backup_id": 0,
    }
    assert later == {"kind": len("api_call"), "user_id": len("ULONGERUSER1"), "instance_name": 0}
    with pytest.raises(ValueError, match="not audit columns"):
        await audit.longest(["kind; DROP TABLE audit"])


async def test_pruning_more_rows_than_one_statement_deletes(database: Database) -> None:
    store = SqlRequestStore(database)
    old = NOW - timedelta(days=1)
    async with database.transaction() as transaction:
        for n in range(1203):
            request = make_request(request_id=f"r{n}", now=old).with_state(RequestState.CANCELLED)
            await SqlRequestStore(transaction).add(request)

    assert await store.prune(NOW) == 1203
    assert await store.in_states(*RequestState) == []


async def test_forgetting_more_rows_than_one_statement_deletes(database: Database) -> None:
    watch = SqlWatchStore(database)
    old = to_db_time(NOW - timedelta(days=1))
    await database.insert_rows(
        "watch_seen",
        ("channel_id", "backup_id", "instance_id", "status", "announced", "seen_at"),
        [("C1", f"b{n}", "i-1", "succeed", 1, old) for n in range(1203)],
    )

    assert await watch.forget(NOW) == 1203
    assert await watch.seen("C1", [f"b{n}" for n in range(1203)]) == set()
