"""Answers to commands, on the fakes: help, refusals before any cloud call, resolution with suggestions,
the dry run, list and status."""

from __future__ import annotations

from datetime import timedelta

from bot.core.errors import DcsApiError, DcsTransportError
from bot.core.rules.audit import AuditKind
from bot.core.rules.backup_request import RequestState
from bot.core.rules.messages import (
    BackupList,
    BackupStatus,
    CloudUnavailable,
    Confirmation,
    DryRun,
    Help,
    InstanceAmbiguous,
    InstanceNotFound,
    NotBackupable,
    Refusal,
    Usage,
)
from bot.core.rules.policy import Action
from tests.factories import ALICE, BOB, make_instance, make_record
from tests.fakes import CONFIRM_TTL, fake_backup_id
from tests.flow.conftest import CAROL, PROD, SINGLE, Flow, click

UNKNOWN_BACKUP = "99999999-0000-4000-8000-000000000000"


async def test_help_lists_what_this_person_may_do(flow: Flow) -> None:
    reply = await flow.command("help")

    assert isinstance(reply, Help)
    assert reply.user_id == ALICE
    assert [(p.rule, p.actions, p.approval) for p in reply.permissions] == [
        ("critical", (Action.BACKUP,), "peer"),
        ("sre-prod", (Action.BACKUP, Action.LIST, Action.STATUS), "self"),
    ]
    assert reply.groups_unknown is None
    assert flow.fakes.dcs.calls == []
    assert flow.fakes.audit.kinds() == [AuditKind.COMMAND]


async def test_help_for_someone_without_rights_lists_nothing(flow: Flow) -> None:
    reply = await flow.command("help", user=CAROL)

    assert isinstance(reply, Help) and reply.permissions == ()


async def test_help_says_when_user_groups_cannot_be_read(flow: Flow) -> None:
    flow.fakes.groups.fail("plan_upgrade_required")

    reply = await flow.command("help")

    assert isinstance(reply, Help) and reply.groups_unknown == "plan_upgrade_required"


async def test_a_person_with_no_rights_is_refused_before_any_cloud_call(flow: Flow) -> None:
    for text in ("redis-prod", "list redis-prod", f"{PROD.instance_id} rdb --dry-run"):
        reply = await flow.command(text, user=CAROL)
        assert isinstance(reply, Refusal), text
        assert reply.decision.reason == "No rule in the bot's policy gives you any permission."

    assert flow.fakes.dcs.calls == []
    assert flow.fakes.requests.requests == {}
    assert [e.outcome for e in flow.fakes.audit.of(AuditKind.DECISION)] == ["denied"] * 3


async def test_an_instance_outside_the_rules_is_refused_after_resolution(flow: Flow) -> None:
    flow.fakes.dcs.add_instance(make_instance("cache-eu", "55555555-2222-3333-4444-555555555555"))

    reply = await flow.command("cache-eu")

    assert isinstance(reply, Refusal) and reply.instance is not None and reply.instance.name == "cache-eu"
    assert flow.fakes.dcs.created == [] and flow.fakes.requests.requests == {}


async def test_an_unknown_name_gets_suggestions_and_no_guess(flow: Flow) -> None:
    reply = await flow.command("redis-prd")

    assert reply == InstanceNotFound("redis-prd", ("redis-prod",), picks=(PROD.instance_id,))
    assert flow.fakes.requests.requests == {}


async def test_a_partial_name_suggests_the_names_that_contain_it(flow: Flow) -> None:
    reply = await flow.command("redis")

    assert isinstance(reply, InstanceNotFound)
    assert set(reply.suggestions) == {"redis-prod", "redis-staging", "redis-single"}


async def test_an_unknown_instance_id_is_not_found(flow: Flow) -> None:
    reply = await flow.command("99999999-2222-3333-4444-555555555555")

    assert reply == InstanceNotFound("99999999-2222-3333-4444-555555555555")


async def test_two_instances_with_the_same_name_are_ambiguous(flow: Flow) -> None:
    twin = flow.fakes.dcs.add_instance(make_instance("redis-prod", "66666666-2222-3333-4444-555555555555"))

    reply = await flow.command("redis-prod")

    assert isinstance(reply, InstanceAmbiguous)
    assert {i.instance_id for i in reply.candidates} == {PROD.instance_id, twin.instance_id}
    assert flow.fakes.requests.requests == {}


async def test_an_unreachable_cloud_is_said_plainly(flow: Flow) -> None:
    flow.fakes.dcs.fail("list_instances", DcsTransportError("connect timeout"))

    reply = await flow.command("redis-prod")

    assert reply == CloudUnavailable("DCS could not be reached or did not answer in time")


async def test_a_single_node_instance_is_not_backupable(flow: Flow) -> None:
    reply = await flow.command("redis-single")

    assert isinstance(reply, NotBackupable) and reply.instance.instance_id == SINGLE.instance_id
    assert flow.fakes.requests.requests == {}


async def test_a_backup_command_stores_a_pending_request_and_shows_the_card(flow: Flow) -> None:
    reply = await flow.command("redis-prod")

    assert isinstance(reply, Confirmation)
    request = reply.request
    assert flow.fakes.requests.requests == {request.request_id: request}
    assert request.state == RequestState.PENDING
    assert request.remark == "Slack backup by @ualice1"
    assert str(request.backup_format) == "rdb"  # the default format
    assert request.expires_at == flow.fakes.clock.now() + timedelta(seconds=CONFIRM_TTL)
    assert flow.fakes.dcs.created == []


async def test_a_dry_run_shows_the_call_and_makes_none(flow: Flow) -> None:
    reply = await flow.command('redis-prod aof "nightly" --dry-run')

    assert isinstance(reply, DryRun)
    assert reply.call.method == "POST"
    assert reply.call.path == f"/v2/{flow.fakes.dcs.project_id}/instances/{PROD.instance_id}/backups"
    assert reply.call.body == {"remark": "nightly", "backup_format": "aof"}
    assert reply.decision.allowed and reply.blockers == ()
    assert flow.fakes.dcs.created == []
    # Kept for its backup_run button only: a dry-run request can never be confirmed.
    [kept] = flow.fakes.requests.requests.values()
    assert kept.state == RequestState.DRY_RUN and reply.run_id == kept.request_id
    assert AuditKind.DRY_RUN in flow.fakes.audit.kinds()


async def test_a_dry_run_names_what_would_block_the_backup(flow: Flow) -> None:
    reply = await flow.command("redis-single --dry-run")

    assert isinstance(reply, DryRun) and len(reply.blockers) == 1
    assert flow.fakes.dcs.created == []


async def test_list_shows_the_newest_backups_first(flow: Flow) -> None:
    now = flow.fakes.clock.now()
    for minutes, backup_id in ((30, "older"), (10, "newer")):
        created = now - timedelta(minutes=minutes)
        flow.fakes.dcs.add_record(PROD.instance_id, make_record(backup_id, created_at=created))

    reply = await flow.command("list redis-prod")

    assert isinstance(reply, BackupList)
    assert [r.backup_id for r in reply.records] == ["newer", "older"]
    assert reply.total == 2
    assert flow.fakes.dcs.created == []


async def test_list_when_dcs_fails_says_so(flow: Flow) -> None:
    flow.fakes.dcs.fail("list_backups", DcsApiError(500, None, "internal error"))

    reply = await flow.command("list redis-prod")

    assert reply == CloudUnavailable("DCS answered HTTP 500: internal error")


async def test_status_of_a_backup_started_through_the_bot(flow: Flow) -> None:
    request = await flow.card("redis-prod")
    await flow.service.confirm(click(ALICE, request))

    reply = await flow.command(f"status {fake_backup_id(1)}", user=BOB)

    assert isinstance(reply, BackupStatus)
    assert reply.request.request_id == request.request_id
    assert reply.record is not None and reply.record.backup_id == fake_backup_id(1)


async def test_status_of_an_unknown_backup_says_where_to_look(flow: Flow) -> None:
    reply = await flow.command(f"status {UNKNOWN_BACKUP}")

    assert isinstance(reply, Usage) and "was started through this bot" in reply.message
    assert flow.fakes.dcs.calls == []


async def test_status_is_refused_to_someone_without_rights(flow: Flow) -> None:
    assert isinstance(await flow.command(f"status {UNKNOWN_BACKUP}", user=CAROL), Refusal)


async def test_nothing_in_a_command_runs_a_backup(flow: Flow) -> None:
    for text in ("redis-prod", "redis-prod --dry-run", "list redis-prod", "help", f"status {UNKNOWN_BACKUP}"):
        await flow.command(text)
    assert flow.fakes.dcs.created == []
    states = {r.state for r in flow.fakes.requests.requests.values()}
    assert states <= {RequestState.PENDING, RequestState.DRY_RUN}
