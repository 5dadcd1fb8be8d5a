"""The listener runner: whatever goes wrong after the ack, the person gets a polite answer with a
reference, never a traceback, and the log keeps the details."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from bot.core.flow.inputs import Click, Invocation
from bot.core.rules.audit import AuditKind
from bot.core.rules.grammar import BackupCommand, UsageError
from bot.core.rules.messages import InternalError
from bot.slack.listeners.runner import Runner
from bot.supervisor import Admission, Supervisor
from tests.fakes import Fakes, make_fakes, service_on


@dataclass
class Harness:
    runner: Runner
    fakes: Fakes


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    fakes = make_fakes('admins = ["UADMIN1"]')
    for method in ("show_instance", "list_instances", "create_backup", "list_backups"):
        # A DCS adapter with a bug: every call raises something no one expects.
        fakes.dcs.fail(method, RuntimeError("unexpected"), times=100)
    supervisor = Supervisor()
    runner = Runner(
        service=service_on(fakes), notifier=fakes.notifier, audit=fakes.audit, supervisor=supervisor
    )
    yield Harness(runner, fakes)
    await supervisor.drain(timeout=5)


INVOCATION = Invocation("UADMIN1", "admin", "C1X", "http://127.0.0.1:9/response/x", "redis-prod")


async def test_an_unexpected_error_becomes_a_polite_reply_with_a_reference(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    run, notifier = harness.runner, harness.fakes.notifier
    assert await run.command(BackupCommand("redis-prod", None, None), INVOCATION) is Admission.QUEUED
    await run.supervisor.drain(timeout=5)

    [reply] = [sent.reply for sent in notifier.replies]
    assert isinstance(reply, InternalError)
    assert f"unexpected error (reference {reply.reference})" in caplog.text
    assert "RuntimeError" in caplog.text


async def test_a_failing_click_handler_is_answered_too(harness: Harness) -> None:
    run, notifier = harness.runner, harness.fakes.notifier

    async def broken(click: Click) -> None:
        raise RuntimeError("unexpected")

    run.click(broken, Click("UADMIN1", "req", "http://127.0.0.1:9/response/y"))
    await run.supervisor.drain(timeout=5)

    assert [type(sent.reply) for sent in notifier.replies] == [InternalError]


async def test_usage_errors_are_audited_after_the_ack(harness: Harness) -> None:
    run = harness.runner
    run.usage_error(UsageError("bad"), INVOCATION)
    await run.supervisor.drain(timeout=5)
    entries = harness.fakes.audit.of(AuditKind.COMMAND)
    assert [(e.outcome, e.detail["error"]) for e in entries] == [("usage_error", "bad")]


async def test_no_new_work_while_shutting_down(harness: Harness) -> None:
    run, notifier = harness.runner, harness.fakes.notifier
    await run.supervisor.drain(timeout=1)
    assert not run.accepting
    assert await run.command(BackupCommand("redis-prod", None, None), INVOCATION) is Admission.CLOSED
    assert notifier.replies == []


async def test_a_command_finding_the_queue_full_is_not_taken_and_is_audited() -> None:
    fakes = make_fakes('admins = ["UADMIN1"]')
    supervisor = Supervisor()
    run = Runner(
        service=service_on(fakes),
        notifier=fakes.notifier,
        audit=fakes.audit,
        supervisor=supervisor,
        workers=1,
        capacity=1,
        admission_wait=0,
    )
    command = BackupCommand("redis-prod", None, None)
    # No await in between gives the one worker a turn: the first waits in the queue, the second finds it full.
    assert await run.command(command, INVOCATION) is Admission.QUEUED
    assert await run.command(command, INVOCATION) is Admission.FULL
    await supervisor.drain(timeout=5)

    assert len(fakes.notifier.replies) == 1, "only the command taken is answered after the ack"
    outcomes = [e.outcome for e in fakes.audit.of(AuditKind.COMMAND)]
    assert sorted(o or "" for o in outcomes) == ["", "busy"]
