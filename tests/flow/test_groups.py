"""User-group look-ups that fail, on the fakes: a definite refusal fails closed and says why; a passing
failure (Slack could not tell just now) decides nothing that could turn on the groups — the person is
asked to try again, nothing is audited as a decision against them, and a pending request stays pending."""

from __future__ import annotations

from bot.core.rules.audit import AuditKind
from bot.core.rules.backup_request import RequestState
from bot.core.rules.messages import (
    BackupStarted,
    CardClosed,
    ClickRefused,
    Confirmation,
    GroupsUnavailable,
    Help,
    Refusal,
)
from tests.factories import ALICE, BOB
from tests.flow.conftest import DANA, LEADS_GROUP, POLICY, Flow, click

SRE_GROUP = "SSRE1"
# A group rule first: for redis-* its answer could turn on SSRE1 for anyone, Alice included.
GROUP_POLICY = (
    f"""
[[rules]]
name = "sre-group"
groups = ["{SRE_GROUP}"]
instances = ["redis-*"]
actions = ["backup", "list", "status"]
"""
    + POLICY
)


def group_flow(flow: Flow) -> Flow:
    flow.fakes.set_policy(GROUP_POLICY)
    flow.fakes.groups.groups[SRE_GROUP] = frozenset({DANA})
    return flow


def refusals(flow: Flow, user: str) -> list[str]:
    return [
        sent.reply.message
        for sent in flow.fakes.notifier.replies
        if isinstance(sent.reply, ClickRefused) and sent.response_url.endswith(f"/click/{user}")
    ]


async def test_a_group_member_is_asked_to_try_again_when_slack_cannot_tell(flow: Flow) -> None:
    group_flow(flow).fakes.groups.fail("no answer in time", passing=True)

    for text in ("redis-prod", "list redis-prod", "redis-prod --dry-run"):
        reply = await flow.command(text, user=DANA)
        assert reply == GroupsUnavailable("no answer in time"), text

    assert flow.fakes.dcs.calls == [], "the pre-check stops before any cloud call"
    assert flow.fakes.requests.requests == {}
    assert AuditKind.DECISION not in flow.fakes.audit.kinds()


async def test_status_waits_for_the_groups_too(flow: Flow) -> None:
    group_flow(flow)
    request = await flow.card("redis-prod", user=DANA)
    await flow.service.confirm(click(DANA, request))
    backup_id = (await flow.request(request.request_id)).backup_id
    flow.fakes.groups.fail("timeout", passing=True)

    assert await flow.command(f"status {backup_id}", user=DANA) == GroupsUnavailable("timeout")


async def test_once_slack_answers_again_the_same_command_works(flow: Flow) -> None:
    group_flow(flow).fakes.groups.fail("timeout", passing=True)
    await flow.command("redis-prod", user=DANA)

    flow.fakes.groups.recover()

    assert isinstance(await flow.command("redis-prod", user=DANA), Confirmation)


async def test_a_person_whose_answer_cannot_turn_on_groups_is_answered_as_usual(flow: Flow) -> None:
    # The policy names a group only as approvers: no rule grants through groups.
    flow.fakes.groups.fail("timeout", passing=True)

    assert isinstance(await flow.command("redis-prod"), Confirmation)
    assert isinstance(await flow.command("critical-payments"), Confirmation)


async def test_a_group_rule_above_the_persons_own_makes_the_answer_wait(flow: Flow) -> None:
    group_flow(flow).fakes.groups.fail("timeout", passing=True)

    assert await flow.command("redis-prod") == GroupsUnavailable("timeout")
    # The group rule does not cover critical-*: Alice's own rule decides whatever her groups.
    assert isinstance(await flow.command("critical-payments"), Confirmation)


async def test_a_refusal_that_groups_could_not_change_is_made_without_a_group_note(flow: Flow) -> None:
    group_flow(flow).fakes.groups.fail("timeout", passing=True)

    # No rule lets anyone list critical-* backups, whatever groups they are in.
    reply = await flow.command("list critical-payments", user=BOB)

    assert isinstance(reply, Refusal) and not reply.decision.allowed
    assert "timeout" not in reply.decision.reason


async def test_someone_with_no_rule_of_their_own_waits_before_any_cloud_call(flow: Flow) -> None:
    group_flow(flow).fakes.groups.fail("timeout", passing=True)

    # Which instance it is would take a cloud call; a group might grant something, so: try again.
    assert await flow.command("critical-payments", user=DANA) == GroupsUnavailable("timeout")
    assert flow.fakes.dcs.calls == []


async def test_a_definite_failure_fails_closed_and_says_why(flow: Flow) -> None:
    group_flow(flow).fakes.groups.fail("plan_upgrade_required")

    reply = await flow.command("redis-prod", user=DANA)

    assert isinstance(reply, Refusal)
    assert "plan_upgrade_required" in reply.decision.reason
    assert [e.outcome for e in flow.fakes.audit.of(AuditKind.DECISION)] == ["denied"]


async def test_help_says_groups_are_unknown_for_now(flow: Flow) -> None:
    group_flow(flow).fakes.groups.fail("timeout", passing=True)

    reply = await flow.command("help", user=DANA)

    assert isinstance(reply, Help)
    assert (reply.groups_unknown, reply.groups_passing, reply.permissions) == ("timeout", True, ())


async def test_a_passing_failure_at_click_time_leaves_the_request_pending(flow: Flow) -> None:
    group_flow(flow)
    request = await flow.card("redis-prod", user=DANA)
    flow.fakes.groups.fail("an unreadable answer, HTTP 502", passing=True)

    await flow.service.confirm(click(DANA, request))

    assert refusals(flow, DANA) == [
        "Slack could not tell which user groups you are in (an unreadable answer, HTTP 502), and whether "
        "you may confirm depends on them. Nothing was changed; try again in a moment."
    ]
    assert await flow.request(request.request_id) == request
    assert flow.fakes.notifier.replies_of(CardClosed) == [], "the card keeps its buttons"
    assert all(not t.won for t in flow.fakes.requests.transitions)
    assert flow.fakes.dcs.created == []

    flow.fakes.groups.recover()
    await flow.service.confirm(click(DANA, request))

    assert len(flow.fakes.dcs.created) == 1
    assert (await flow.request(request.request_id)).state == RequestState.SUBMITTED
    assert len(flow.fakes.notifier.notices_of(BackupStarted)) == 1


async def test_a_definite_failure_at_click_time_still_revokes(flow: Flow) -> None:
    group_flow(flow)
    request = await flow.card("redis-prod", user=DANA)
    flow.fakes.groups.fail("missing_scope")

    await flow.service.confirm(click(DANA, request))

    [card] = flow.fakes.notifier.replies_of(CardClosed)
    assert card.outcome == "revoked" and card.reason is not None and "missing_scope" in card.reason
    assert (await flow.request(request.request_id)).state == RequestState.CANCELLED


async def test_a_passing_failure_at_approval_time_leaves_the_request_waiting(flow: Flow) -> None:
    request = await flow.card("critical-payments", user=BOB)
    await flow.service.confirm(click(BOB, request))
    flow.fakes.groups.fail("timeout", passing=True)

    await flow.service.approve(click(DANA, request))

    [message] = refusals(flow, DANA)
    assert message.startswith("Slack could not tell which user groups you are in (timeout)")
    assert "whether you may approve it depends on them" in message
    assert (await flow.request(request.request_id)).state == RequestState.AWAITING_APPROVAL

    flow.fakes.groups.recover()
    await flow.service.approve(click(DANA, request))

    assert (await flow.request(request.request_id)).approved_by == DANA
    assert len(flow.fakes.dcs.created) == 1


async def test_approvers_named_only_by_user_need_no_groups(flow: Flow) -> None:
    flow.fakes.set_policy(
        f"""
[[rules]]
name = "critical"
users = ["{ALICE}", "{BOB}"]
instances = ["critical-*"]
actions = ["backup"]
approval = "peer"
approvers = ["{ALICE}"]

[[rules]]
name = "group-holder"
groups = ["{LEADS_GROUP}"]
instances = ["nothing-*"]
actions = ["list"]
"""
    )
    request = await flow.card("critical-payments", user=BOB)
    await flow.service.confirm(click(BOB, request))
    flow.fakes.groups.fail("timeout", passing=True)

    await flow.service.approve(click(DANA, request))

    [message] = refusals(flow, DANA)
    assert message.startswith("Only the approvers of rule 'critical' can approve this request")
