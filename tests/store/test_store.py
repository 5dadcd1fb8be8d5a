"""The store on SQLite and PostgreSQL: schema migration, atomic transitions under concurrency, the
append-only audit."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.core.rules.audit import AuditEntry, AuditKind
from bot.core.rules.backup_request import BackupRequest, RequestEvent, RequestState
from bot.store.audit import SqlAuditLog
from bot.store.database import open_database
from bot.store.engine import DATABASE_ERRORS, Database
from bot.store.migrations import MIGRATIONS, schema_version
from bot.store.requests import SqlRequestStore
from tests import factories

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def make_request(request_id: str = "r1", ttl: float = 300) -> BackupRequest:
    return factories.make_request(
        request_id=request_id,
        ttl=ttl,
        now=NOW,
        remark="before the migration",
        response_url="http://127.0.0.1/response/x",
        approvers=("ULEAD1",),
    )


async def test_request_round_trip(database: Database) -> None:
    store = SqlRequestStore(database)
    request = make_request()
    await store.add(request)
    assert await store.get("r1") == request
    assert await store.get("missing") is None


async def test_concurrent_confirms_have_exactly_one_winner(database: Database) -> None:
    store = SqlRequestStore(database)
    await store.add(make_request())
    results = await asyncio.gather(
        *(
            store.transition("r1", RequestEvent.CONFIRM, now=NOW, unexpired=True, confirmed_by=f"U{i}X")
            for i in range(20)
        )
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert winners[0].state == RequestState.SUBMITTING
    stored = await store.get("r1")
    assert stored is not None
    assert stored.confirmed_by == winners[0].confirmed_by


async def test_expired_requests_cannot_be_confirmed(database: Database) -> None:
    store = SqlRequestStore(database)
    await store.add(make_request(ttl=1))
    later = NOW + timedelta(seconds=2)
    assert await store.transition("r1", RequestEvent.CONFIRM, now=later, unexpired=True) is None
    expired = await store.transition("r1", RequestEvent.EXPIRE, now=later)
    assert expired is not None
    assert expired.state == RequestState.EXPIRED


async def test_transitions_follow_the_state_machine(database: Database) -> None:
    store = SqlRequestStore(database)
    await store.add(make_request())
    assert await store.transition("r1", RequestEvent.ACCEPTED, now=NOW, backup_id="b") is None
    assert await store.transition("r1", RequestEvent.CANCEL, now=NOW) is not None
    assert await store.transition("r1", RequestEvent.CONFIRM, now=NOW) is None
    with pytest.raises(ValueError, match="unknown request fields"):
        await store.transition("r1", RequestEvent.EXPIRE, now=NOW, colour="red")


async def test_update_and_queries(database: Database) -> None:
    store = SqlRequestStore(database)
    await store.add(make_request("r1"))
    await store.add(make_request("r2"))
    await store.transition("r2", RequestEvent.CONFIRM, now=NOW)
    await store.transition("r2", RequestEvent.ACCEPTED, now=NOW, backup_id="b-2")
    await store.update("r2", message_ts="1.2")
    assert [r.request_id for r in await store.in_states(RequestState.PENDING)] == ["r1"]
    found = await store.by_backup_id("b-2")
    assert found is not None
    assert found.message_ts == "1.2"
    with pytest.raises(ValueError, match="transition"):
        await store.update("r1", state="submitted")


async def test_audit_is_append_only(database: Database) -> None:
    audit = SqlAuditLog(database, lambda: NOW)
    await audit.record(AuditEntry(AuditKind.COMMAND, user_id="UALICE1", detail={"text": "redis-prod aof"}))
    await audit.record(AuditEntry(AuditKind.API_RESULT, backup_id="b-1", outcome="accepted"))
    records = await audit.records()
    assert [r.entry.kind for r in records] == [AuditKind.COMMAND, AuditKind.API_RESULT]
    assert records[0].entry.detail == {"text": "redis-prod aof"}
    assert await audit.records(since=NOW + timedelta(seconds=1)) == []
    with pytest.raises(DATABASE_ERRORS, match="append-only"):
        await database.execute("UPDATE audit SET kind = 'x'")
    with pytest.raises(DATABASE_ERRORS, match="append-only"):
        await database.execute("DELETE FROM audit")
    if database.dialect == "postgresql":  # SQLite has no TRUNCATE (its DELETE without WHERE is refused)
        with pytest.raises(DATABASE_ERRORS, match="append-only"):
            await database.execute("TRUNCATE audit")
    assert len(await audit.records()) == 2


# --- one unsettled request per instance -----------------------------------------------------------------


async def test_only_one_request_of_an_instance_can_be_unsettled_at_a_time(
    database: Database,
) -> None:
    store = SqlRequestStore(database)
    for name in ("r1", "r2", "r3"):
        await store.add(make_request(name))
    other = make_request("elsewhere")
    await store.add(replace(other, instance_id="99999999-2222-3333-4444-555555555555"))

    results = await asyncio.gather(
        *(store.transition(name, RequestEvent.CONFIRM, now=NOW) for name in ("r1", "r2", "r3", "elsewhere"))
    )

    winners = sorted(r.request_id for r in results if r is not None)
    assert len(winners) == 2 and "elsewhere" in winners
    [first] = [w for w in winners if w != "elsewhere"]
    # Checking keeps the instance taken; a final state frees it.
    assert await store.transition(first, RequestEvent.OUTCOME_UNKNOWN, now=NOW) is not None
    losers = [name for name in ("r1", "r2", "r3") if name != first]
    assert await store.transition(losers[0], RequestEvent.CONFIRM, now=NOW) is None
    assert (await store.get(losers[0])).state == RequestState.PENDING  # type: ignore[union-attr]
    assert await store.transition(first, RequestEvent.NONE_CREATED, now=NOW) is not None
    assert await store.transition(losers[0], RequestEvent.CONFIRM, now=NOW) is not None


async def test_the_new_fields_round_trip_and_owed_notices_are_found(database: Database) -> None:
    store = SqlRequestStore(database)
    await store.add(make_request("r1"))
    await store.add(make_request("r2"))
    await store.transition("r1", RequestEvent.CONFIRM, now=NOW, sent_at=NOW)
    checking = await store.transition(
        "r1",
        RequestEvent.OUTCOME_UNKNOWN,
        now=NOW,
        answer_lost_at=NOW + timedelta(seconds=30),
        notice_due="checking",
        notice_refused_since=NOW + timedelta(seconds=31),
        error_status=504,
        error_hint="later",
        error_request_id="dcs-req",
    )
    assert checking is not None and await store.get("r1") == checking
    assert (checking.sent_at, checking.answer_lost_at) == (NOW, NOW + timedelta(seconds=30))
    assert [r.request_id for r in await store.owing_notices()] == ["r1"]
    await store.update("r1", notice_due=None)
    assert await store.owing_notices() == []


async def test_a_database_of_the_previous_release_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with closing(sqlite3.connect(path)) as raw:
        for number, migration in enumerate(MIGRATIONS[:2], start=1):
            raw.executescript(f"BEGIN;\n{migration.sqlite}\nPRAGMA user_version = {number};\nCOMMIT;")
        raw.execute(
            "INSERT INTO requests (request_id, state, requester_id, requester_name, channel_id, instance_id,"
            " instance_name, backup_format, remark, rule, approval, approvers, created_at, expires_at,"
            " submitted_at, backup_id) VALUES ('old', 'submitted', 'UALICE1', 'alice', 'COPS1', 'i-1',"
            " 'redis-prod', 'rdb', 'r', 'sre-prod', 'self', '[]', '2026-11-26T12:00:00.000000Z',"
            " '2026-11-26T12:05:00.000000Z', '2026-11-26T12:01:00.000000Z', 'b-old')"
        )
        raw.commit()

    connection = await open_database(path)
    try:
        assert await schema_version(connection) == len(MIGRATIONS)
        store = SqlRequestStore(connection)
        old = await store.get("old")
        assert old is not None and old.state == RequestState.SUBMITTED
        assert (old.sent_at, old.notice_due, old.error_status) == (None, None, None)
        assert old.sent_since == datetime(2026, 11, 26, 12, 1, tzinfo=UTC)
        # A request runs through the upgraded schema.
        await store.add(make_request("new"))
        await store.transition("new", RequestEvent.CONFIRM, now=NOW, sent_at=NOW)
        await store.transition("new", RequestEvent.ACCEPTED, now=NOW, backup_id="b-new", notice_due="started")
        assert [r.request_id for r in await store.owing_notices()] == ["new"]
        finished = await store.transition("new", RequestEvent.FINISH, now=NOW, backup_status="succeed")
        assert finished is not None and finished.sent_at == NOW
    finally:
        await connection.close()


#: The schema of the release before requests and audit records carried their cloud.
BEFORE_CLOUDS = 3


async def test_a_database_of_the_release_before_clouds_upgrades_and_its_requests_get_the_cloud(
    tmp_path: Path,
) -> None:
    path = tmp_path / "before-clouds.sqlite3"
    with closing(sqlite3.connect(path)) as raw:
        for number, migration in enumerate(MIGRATIONS[:BEFORE_CLOUDS], start=1):
            raw.executescript(f"BEGIN;\n{migration.sqlite}\nPRAGMA user_version = {number};\nCOMMIT;")
        raw.execute(
            "INSERT INTO requests (request_id, state, requester_id, requester_name, channel_id, instance_id,"
            " instance_name, backup_format, remark, rule, approval, approvers, created_at, expires_at,"
            " submitted_at, backup_id) VALUES ('old', 'submitted', 'UALICE1', 'alice', 'COPS1', 'i-1',"
            " 'redis-prod', 'rdb', 'r', 'sre-prod', 'self', '[]', '2026-11-26T12:00:00.000000Z',"
            " '2026-11-26T12:05:00.000000Z', '2026-11-26T12:01:00.000000Z', 'b-old')"
        )
        raw.execute(
            "INSERT INTO audit (at, kind, user_id, instance_name, detail) VALUES"
            " ('2026-11-26T12:00:00.000000Z', 'command', 'UALICE1', 'redis-prod', '{}')"
        )
        raw.commit()

    connection = await open_database(path)
    try:
        assert await schema_version(connection) == len(MIGRATIONS)
        store = SqlRequestStore(connection)
        before = await store.get("old")
        assert before is not None and (before.cloud, before.instance_tags) == (None, None)
        assert await store.adopt_cloudless("eu-de") == 1
        assert await store.adopt_cloudless("eu-nl") == 0  # once only
        old = await store.get("old")
        assert old is not None and old.cloud == "eu-de" and old.state == RequestState.SUBMITTED
        finished = await store.transition("old", RequestEvent.FINISH, now=NOW, backup_status="succeed")
        assert finished is not None and finished.cloud == "eu-de"
        # New requests and audit records carry their cloud and the instance's tags.
        await store.add(replace(make_request("new"), cloud="eu-nl", instance_tags=(("env", "prod"),)))
        new = await store.get("new")
        assert new is not None and (new.cloud, new.instance_tags) == ("eu-nl", (("env", "prod"),))
        audit = SqlAuditLog(connection, lambda: NOW)
        await audit.record(AuditEntry(AuditKind.COMMAND, user_id="UALICE1", cloud="eu-nl"))
        clouds = [record.entry.cloud async for record in audit.stream(None)]
        assert clouds == [None, "eu-nl"]
    finally:
        await connection.close()
