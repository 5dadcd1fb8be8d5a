"""``--dry-run``: parsing, resolution and the decision, shown with the exact call; no call, and only a
``backup_run`` button (when the backup could be made) that asks for the real confirmation."""

from __future__ import annotations

import pytest

from bot.core.rules.audit import AuditKind
from bot.core.rules.backup_request import RequestState
from tests.e2e.conftest import ALICE, BOB, OPS, PROJECT_ID, World


async def dry_run(world: World, text: str, *, user: str = ALICE) -> str:
    result = await world.command(text, user=user)
    assert result.status == 200
    reply = await world.reply_to(user)
    assert reply.is_ephemeral
    assert {b.action_id for b in world.slack.buttons(reply)} <= {"backup_run"}
    assert world.backups_created() == 0
    assert world.slack.channel_messages(OPS) == []
    assert {r.state for r in await world.requests()} <= {RequestState.DRY_RUN}
    return reply.shown


@pytest.mark.parametrize(
    "text",
    [
        'redis-prod aof "before the migration" --dry-run',
        "redis-prod --dry-run aof before the migration",
        "redis-prod aof before the migration —dry-run",
    ],
)
async def test_dry_run_shows_the_decision_and_the_exact_call(world: World, text: str) -> None:
    shown = await dry_run(world, text)

    assert "Dry run" in shown and "nothing was sent to DCS" in shown
    assert ":white_check_mark: allowed" in shown and "Rule `sre-prod`" in shown
    assert f"POST /v2/{PROJECT_ID}/instances/{world.prod.instance_id}/backups" in shown
    assert '"remark": "before the migration"' in shown
    assert '"backup_format": "aof"' in shown
    audit = [r.entry.kind for r in await world.bot.audit.records()]
    assert AuditKind.DRY_RUN in audit and AuditKind.CONFIRMATION_SHOWN not in audit


async def test_dry_run_shows_the_defaults_that_would_be_sent(world: World) -> None:
    shown = await dry_run(world, "redis-prod --dry-run")

    assert '"remark": "Slack backup by @alice"' in shown
    assert '"backup_format": "rdb"' in shown


async def test_dry_run_shows_that_a_peer_must_approve(world: World) -> None:
    shown = await dry_run(world, "redis-staging --dry-run", user=BOB)

    assert "needs approval by one of <@ULEAD1>, <!subteam^SLEADS1>" in shown


async def test_dry_run_on_a_single_node_instance_names_the_blocker(world: World) -> None:
    shown = await dry_run(world, "cache-single --dry-run")

    assert "Single-node instances cannot be backed up" in shown
