"""The audit trail a flow leaves behind, and the ``dcs-bot audit`` / ``dcs-bot check-policy`` commands."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bot.cli import main
from bot.core.rules.audit import AuditKind
from tests.e2e.conftest import ALICE, DEFAULT_POLICY, OPS, World

FLOW_KINDS = [
    AuditKind.COMMAND,
    AuditKind.DECISION,
    AuditKind.CONFIRMATION_SHOWN,
    AuditKind.CLICK,
    AuditKind.CONFIRMED,
    AuditKind.API_CALL,
    AuditKind.API_RESULT,
]


async def backed_up(world: World) -> str:
    card = await world.card('redis-prod aof "audited"')
    await world.click(card, "backup_confirm")
    await world.channel_message(OPS)
    [backup] = world.dcs.backups_of(world.prod.instance_id)
    return backup.backup_id


async def test_a_flow_leaves_every_step_in_the_audit_trail(world: World) -> None:
    backup_id = await backed_up(world)

    records = await world.bot.audit.records()
    kinds = [r.entry.kind for r in records]
    assert [k for k in kinds if k in FLOW_KINDS][: len(FLOW_KINDS)] == FLOW_KINDS
    by_kind = {r.entry.kind: r.entry for r in records}
    for kind in FLOW_KINDS:
        entry = by_kind[kind]
        assert (entry.user_id, entry.channel_id) == (ALICE, OPS), kind
        if kind != AuditKind.COMMAND:
            assert (entry.instance_id, entry.instance_name) == (world.prod.instance_id, "redis-prod"), kind
    assert by_kind[AuditKind.DECISION].outcome == "allowed"
    assert by_kind[AuditKind.DECISION].rule == "sre-prod"
    assert by_kind[AuditKind.API_CALL].detail == {
        "call": "create_backup",
        "format": "aof",
        "remark": "audited",
    }
    assert by_kind[AuditKind.API_RESULT].backup_id == backup_id
    assert by_kind[AuditKind.API_RESULT].outcome == "accepted"
    assert [r.seq for r in records] == sorted(r.seq for r in records)


async def test_refusals_and_dcs_errors_are_audited_too(world: World) -> None:
    await world.command("redis-prod", user="USTRANGER1")
    await world.reply_to("USTRANGER1")
    world.dcs.add_backup(world.prod.instance_id, backuping_seconds=3600)
    card = await world.card("redis-prod")
    await world.click(card, "backup_confirm")
    await world.channel_message(OPS)

    entries = [r.entry for r in await world.bot.audit.records()]
    denied = [e for e in entries if e.kind == AuditKind.DECISION and e.outcome == "denied"]
    assert [e.user_id for e in denied] == ["USTRANGER1"]
    [refused] = [e for e in entries if e.kind == AuditKind.API_RESULT]
    assert refused.outcome == "refused" and refused.detail["error_code"] == "DCS.4096"


async def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    # The CLI runs its own event loop, so it gets a thread of its own.
    code = await asyncio.to_thread(main, args)
    return code, capsys.readouterr().out


async def test_the_audit_command_prints_the_trail_as_jsonl_and_as_a_table(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    backup_id = await backed_up(world)
    monkeypatch.setenv("BOT_DATABASE", str(world.bot.settings.bot_database))
    capsys.readouterr()

    code, out = await run_cli(["audit", "--format", "jsonl"], capsys)

    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    kinds = [row["kind"] for row in rows]
    assert all(str(kind) in kinds for kind in FLOW_KINDS)
    [result] = [row for row in rows if row["kind"] == "api_result"]
    assert (result["user"], result["channel"], result["instance"], result["backup_id"]) == (
        ALICE,
        OPS,
        "redis-prod",
        backup_id,
    )
    # Every record about the instance names its cloud (the one cloud of the DCS_* settings).
    assert result["cloud"] == world.bot.settings.dcs_cloud_name
    assert all(row["cloud"] == result["cloud"] for row in rows if row["instance"] is not None)

    code, out = await run_cli(["audit", "--format", "table"], capsys)

    assert code == 0
    header, *lines = out.splitlines()
    assert header.split() == [
        "seq",
        "at",
        "kind",
        "user",
        "channel",
        "cloud",
        "instance",
        "backup_id",
        "rule",
        "outcome",
    ]
    assert len(lines) == len(rows)
    [result_line] = [line for line in lines if " api_result " in line]
    assert ALICE in result_line and OPS in result_line and "redis-prod" in result_line
    assert backup_id in result_line

    code, out = await run_cli(["audit", "--format", "jsonl", "--since", "2999-01-01"], capsys)
    assert (code, out) == (0, "")


def test_check_policy_accepts_a_good_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(DEFAULT_POLICY)

    assert main(["check-policy", str(policy)]) == 0
    assert "ok" in capsys.readouterr().out


def test_check_policy_names_every_mistake(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "broken.toml"
    policy.write_text(
        """
admins = ["not-a-user"]
colour = "blue"

[[rules]]
name = "sre"
users = ["U01ABCDEF"]
instances = ["redis-[prod", "8a2f0000-"]
actions = ["backup", "destroy"]
"""
    )

    assert main(["check-policy", str(policy)]) == 1
    out = capsys.readouterr().out
    problems = [line for line in out.splitlines() if line.startswith("  - ")]
    assert len(problems) == 5, out
    for mistake in ("not-a-user", "colour", "redis-[prod", "8a2f0000-", "destroy"):
        assert any(mistake in line for line in problems), f"{mistake!r} not named in:\n{out}"


def test_check_policy_refuses_a_peer_rule_without_approvers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "peer.toml"
    policy.write_text(
        """
[[rules]]
name = "four-eyes"
users = ["U01ABCDEF"]
instances = ["*"]
actions = ["backup"]
approval = "peer"
"""
    )

    assert main(["check-policy", str(policy)]) == 1
    assert "needs approvers" in capsys.readouterr().out
