"""How a command's audit rows reach the database: the command's own row rides along with the decision's,
in one write, and the answer is given only once every row it follows from is committed. The service on
the fakes, with the real SQLite audit trail."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.core.flow.service import BackupService
from bot.core.rules.audit import AuditKind
from bot.core.rules.messages import Confirmation, Help, InstanceNotFound, Reply
from bot.store.audit import SqlAuditLog
from bot.store.database import open_database
from bot.store.engine import Database, SqliteDatabase
from tests.fakes import Fakes
from tests.flow.conftest import Flow


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    connection = await open_database(tmp_path / "bot.sqlite3")
    yield connection
    await connection.close()


@pytest.fixture
def audited(fakes: Fakes, database: Database) -> Flow:
    service = BackupService(
        dcs=fakes.dcs,
        requests=fakes.requests,
        audit=SqlAuditLog(database, fakes.clock.now),
        groups=fakes.groups,
        notifier=fakes.notifier,
        policy=lambda: fakes.policy,
        clock=fakes.clock,
        options=fakes.options,
    )
    return Flow(fakes, service)


def committed_kinds(tmp_path: Path) -> list[str]:
    """What another connection sees: only committed rows, in their order."""
    with sqlite3.connect(tmp_path / "bot.sqlite3") as other:
        return [row[0] for row in other.execute("SELECT kind FROM audit ORDER BY seq")]


async def audit_inserts(database: Database, flow: Flow, text: str) -> tuple[Reply, int]:
    statements: list[str] = []
    assert isinstance(database, SqliteDatabase)
    await database.connection.set_trace_callback(statements.append)
    reply = await flow.command(text)
    await database.connection.set_trace_callback(lambda statement: None)
    return reply, sum(s.lstrip().upper().startswith("INSERT INTO AUDIT") for s in statements)


async def test_a_backup_command_s_row_goes_in_with_its_decision(
    audited: Flow, database: Database, tmp_path: Path
) -> None:
    reply, inserts = await audit_inserts(database, audited, "redis-prod")

    assert isinstance(reply, Confirmation)
    # The command and the decision in one write, the card's row in the next (after the request row).
    assert inserts == 2
    assert committed_kinds(tmp_path) == [
        str(AuditKind.COMMAND),
        str(AuditKind.DECISION),
        str(AuditKind.CONFIRMATION_SHOWN),
    ]


@pytest.mark.parametrize(("text", "answer"), [("help", Help), ("redis-nowhere", InstanceNotFound)])
async def test_a_command_is_answered_only_once_its_row_is_committed(
    audited: Flow, database: Database, tmp_path: Path, text: str, answer: type[Reply]
) -> None:
    reply, inserts = await audit_inserts(database, audited, text)

    assert isinstance(reply, answer)
    assert inserts == 1
    assert committed_kinds(tmp_path) == [str(AuditKind.COMMAND)]
