"""The listener runner: whatever goes wrong after the ack, the person gets a polite answer with a
reference, never a traceback, and the log keeps the details."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from bot.clock import SystemClock
from bot.core.flow.context import ServiceOptions
from bot.core.flow.inputs import Click, Invocation
from bot.core.flow.service import BackupService
from bot.core.ports import Delivered
from bot.core.rules.grammar import BackupCommand, UsageError
from bot.core.rules.instances import BackupFormat, BackupPage, Instance, InstancePage
from bot.core.rules.messages import InternalError, Notice, PlannedCall, Reply
from bot.policy_file import parse_policy
from bot.slack.listeners.runner import Runner
from bot.store.audit import SqliteAuditLog
from bot.store.database import open_database
from bot.store.requests import SqliteRequestStore
from bot.supervisor import Supervisor


class BrokenCloud:
    """A DCS adapter with a bug: every call raises something no one expects."""

    async def show_instance(self, instance_id: str) -> Instance:
        raise RuntimeError("unexpected")

    async def list_instances(
        self, *, name: str | None = None, exact: bool = False, limit: int = 100, offset: int = 0
    ) -> InstancePage:
        raise RuntimeError("unexpected")

    def planned_backup(self, instance_id: str, backup_format: BackupFormat, remark: str) -> PlannedCall:
        raise RuntimeError("unexpected")

    async def create_backup(self, instance_id: str, *, backup_format: BackupFormat, remark: str) -> str:
        raise RuntimeError("unexpected")

    async def list_backups(
        self,
        instance_id: str,
        *,
        begin_time: datetime | None = None,
        end_time: datetime | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> BackupPage:
        raise RuntimeError("unexpected")


class NoGroups:
    async def members(self, group_ids: frozenset[str]) -> dict[str, frozenset[str]]:
        return {}


class RecordingNotifier:
    def __init__(self) -> None:
        self.replies: list[Reply] = []

    async def reply(self, response_url: str, reply: Reply, *, replace_original: bool = False) -> bool:
        self.replies.append(reply)
        return True

    async def announce(
        self,
        channel_id: str,
        notice: Notice,
        *,
        thread_ts: str | None = None,
        fallback_response_url: str | None = None,
    ) -> Delivered | None:
        return Delivered()


@dataclass
class Harness:
    runner: Runner
    notifier: RecordingNotifier
    audit: SqliteAuditLog


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    database = await open_database(tmp_path / "bot.sqlite3")
    notifier = RecordingNotifier()
    audit = SqliteAuditLog(database, SystemClock().now)
    policy = parse_policy('admins = ["UADMIN1"]')
    service = BackupService(
        dcs=BrokenCloud(),
        requests=SqliteRequestStore(database),
        audit=audit,
        groups=NoGroups(),
        notifier=notifier,
        policy=lambda: policy,
        clock=SystemClock(),
        options=ServiceOptions(300, 3600, BackupFormat.RDB),
    )
    supervisor = Supervisor()
    yield Harness(
        Runner(service=service, notifier=notifier, audit=audit, supervisor=supervisor), notifier, audit
    )
    await supervisor.drain(timeout=5)
    await database.close()


INVOCATION = Invocation("UADMIN1", "admin", "C1X", "http://127.0.0.1:9/response/x", "redis-prod")


async def test_an_unexpected_error_becomes_a_polite_reply_with_a_reference(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    run, notifier = harness.runner, harness.notifier
    assert run.command(BackupCommand("redis-prod", None, None), INVOCATION)
    await run.supervisor.drain(timeout=5)

    [reply] = notifier.replies
    assert isinstance(reply, InternalError)
    assert f"unexpected error (reference {reply.reference})" in caplog.text
    assert "RuntimeError" in caplog.text


async def test_a_failing_click_handler_is_answered_too(harness: Harness) -> None:
    run, notifier = harness.runner, harness.notifier

    async def broken(click: Click) -> None:
        raise RuntimeError("unexpected")

    run.click(broken, Click("UADMIN1", "req", "http://127.0.0.1:9/response/y"))
    await run.supervisor.drain(timeout=5)

    assert [type(r) for r in notifier.replies] == [InternalError]


async def test_usage_errors_are_audited_after_the_ack(harness: Harness) -> None:
    run = harness.runner
    run.usage_error(UsageError("bad"), INVOCATION)
    await run.supervisor.drain(timeout=5)
    records = await harness.audit.records()
    assert [(r.entry.outcome, r.entry.detail["error"]) for r in records] == [("usage_error", "bad")]


async def test_no_new_work_while_shutting_down(harness: Harness) -> None:
    run, notifier = harness.runner, harness.notifier
    await run.supervisor.drain(timeout=1)
    assert not run.accepting
    assert not run.command(BackupCommand("redis-prod", None, None), INVOCATION)
    assert notifier.replies == []
