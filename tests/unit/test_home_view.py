"""The Home tab's view (bot.slack.home_view) and the rules behind it (bot.core.rules.home), as pure
functions: what is shown, and Block Kit's limits kept whatever the estate."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from bot.core.rules.backup_request import RequestState
from bot.core.rules.home import (
    HomeCloud,
    HomeInstance,
    HomeNote,
    HomeSnapshot,
    Where,
    backup_channels,
    concerns,
    is_stale,
    stale_window,
    waits_for,
)
from bot.core.rules.messages import ClickRefused
from bot.core.rules.policy import Actor, InstanceRef, Policy, Rule, Watch
from bot.slack.home_view import MAX_BLOCKS, home_view
from bot.standins.slack.timeline import find_buttons
from bot.standins.slack.view_checks import view_problems
from tests.factories import (
    ALICE,
    BOB,
    LEAD,
    NOW,
    OPS,
    awaiting_approval,
    make_instance,
    make_request,
    submitted_request,
)

STAGING = InstanceRef("22222222-2222-3333-4444-555555555555", "redis-staging")


def rule(name: str, **fields: Any) -> Rule:
    values: dict[str, Any] = {"users": (ALICE,), "instances": ("redis-*",), "actions": ("backup",)}
    return Rule(name=name, **(values | fields))


# --- where a person may back an instance up --------------------------------------------------------------


def test_a_rule_without_channels_allows_any_channel() -> None:
    policy = Policy(rules=(rule("any"),))

    assert backup_channels(policy, Actor(ALICE, ""), STAGING) == Where(anywhere=True)


def test_rules_limited_to_channels_name_those_channels() -> None:
    policy = Policy(
        rules=(
            rule("ops", channels=("COPS1",)),
            rule("peer", channels=("CSTAGE1",), approval="peer", approvers=(LEAD,)),
            rule("other", instances=("cache-*",), channels=("COTHER1",)),
        )
    )

    where = backup_channels(policy, Actor(ALICE, ""), STAGING)

    assert where == Where(anywhere=False, channels=("COPS1", "CSTAGE1"), approval=True)


def test_an_instance_no_rule_covers_is_nowhere() -> None:
    policy = Policy(rules=(rule("caches", instances=("cache-*",)),))

    assert backup_channels(policy, Actor(ALICE, ""), STAGING) is None
    assert backup_channels(policy, Actor(BOB, ""), STAGING) is None


def test_groups_count_and_admins_may_anywhere() -> None:
    policy = Policy(admins=(LEAD,), rules=(rule("sre", users=(), groups=("SSRE1",)),))

    assert backup_channels(policy, Actor(BOB, "", groups=frozenset({"SSRE1"})), STAGING) is not None
    assert backup_channels(policy, Actor(BOB, ""), STAGING) is None
    assert backup_channels(policy, Actor(LEAD, ""), STAGING) == Where(anywhere=True)


# --- stale, waiting, concerned ---------------------------------------------------------------------------


def test_stale_is_what_the_watch_says() -> None:
    watches = (
        Watch(instances=("redis-*",), channel=OPS, stale_after_hours=24),
        Watch(instances=("redis-staging",), channel=OPS, stale_after_hours=6),
        Watch(instances=("*",), channel=OPS),
    )
    window = stale_window(watches, STAGING)

    assert window == timedelta(hours=6)
    assert stale_window(watches, InstanceRef("x", "cache-x")) is None
    assert is_stale(window, None, NOW)
    assert is_stale(window, NOW - timedelta(hours=7), NOW)
    assert not is_stale(window, NOW - timedelta(hours=5), NOW)
    assert not is_stale(None, None, NOW), "an instance no watch judges is never stale"


def test_an_approval_waits_for_listed_approvers_only() -> None:
    request = awaiting_approval(requester=BOB, approvers=(LEAD, "SLEADS1"))

    assert waits_for(request, LEAD, frozenset(), NOW)
    assert waits_for(request, ALICE, frozenset({"SLEADS1"}), NOW)
    assert not waits_for(request, ALICE, frozenset(), NOW)
    assert not waits_for(request, BOB, frozenset({"SLEADS1"}), NOW), "never the requester's own"
    assert not waits_for(request, LEAD, frozenset(), NOW + timedelta(hours=1)), "expired"


def test_a_change_concerns_requester_approvers_and_who_sees_the_instance() -> None:
    request = awaiting_approval(requester=BOB, approvers=(LEAD,))

    assert concerns(request, BOB, frozenset(), frozenset())
    assert concerns(request, LEAD, frozenset(), frozenset())
    assert concerns(request, ALICE, frozenset(), frozenset({request.instance_id}))
    assert not concerns(request, ALICE, frozenset(), frozenset())


# --- the view --------------------------------------------------------------------------------------------


def snapshot(**fields: Any) -> HomeSnapshot:
    values: dict[str, Any] = {"user_id": ALICE, "at": NOW, "clouds": ()}
    return HomeSnapshot(**(values | fields))


def estate(count: int, cloud: str = "default", *, shown: int = 40, name: str = "redis-estate") -> HomeCloud:
    items = tuple(
        HomeInstance(
            make_instance(f"{name}-{n:04d}", f"{n:08d}-2222-3333-4444-555555555555"),
            Where(anywhere=False, channels=tuple(f"C{c:07d}" for c in range(6))),
            NOW - timedelta(days=n % 3),
            stale=n % 5 == 0,
        )
        for n in range(min(shown, count))
    )
    return HomeCloud(cloud, items, count)


def text(view: dict[str, Any]) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)


def test_an_instance_line_says_when_it_was_last_backed_up_and_whether_it_is_stale() -> None:
    ok = HomeInstance(make_instance("redis-prod"), Where(anywhere=True), NOW - timedelta(hours=2))
    stale = HomeInstance(make_instance("redis-old", "o1"), Where(anywhere=False, channels=(OPS,)), stale=True)
    unknown = HomeInstance(make_instance("redis-x", "x1", status="FROZEN"), Where(True), records_known=False)
    view = home_view(snapshot(clouds=(HomeCloud("default", (ok, stale, unknown), 3),)))

    shown = text(view)
    stamp = int((NOW - timedelta(hours=2)).timestamp())
    assert f"last successful backup <!date^{stamp}^{{date_short_pretty}} {{time}}|" in shown
    assert "*redis-old*" in shown and "no successful backup on record :warning: *stale*" in shown
    assert f"in <#{OPS}>" in shown and "in any channel" in shown
    assert "last successful backup unknown" in shown and "Instance state: Frozen" in shown
    assert view_problems(view, expected_type="home") == []


def test_several_clouds_are_grouped_each_under_its_name() -> None:
    clouds = (estate(2, "eu-de"), HomeCloud("eu-nl", (), 0, unavailable="DCS could not be reached"))
    view = home_view(snapshot(clouds=clouds, multi_cloud=True))

    shown = text(view)
    assert "*eu-de* — 2 instances" in shown
    assert "Could not list the instances in eu-nl (DCS could not be reached)" in shown
    assert view_problems(view, expected_type="home") == []


def test_approvals_come_with_the_buttons_of_the_channel_message() -> None:
    request = awaiting_approval(requester=BOB, remark="four eyes")
    view = home_view(snapshot(awaiting=(request,)))

    buttons = {(b.action_id, b.value) for b in find_buttons(view["blocks"])}
    assert {("backup_approve", request.request_id), ("backup_reject", request.request_id)} <= buttons
    assert ("backup_new", "home") in buttons
    assert f"Requested by <@{BOB}>" in text(view)


def test_running_backups_and_recent_requests_are_listed_in_words() -> None:
    running = submitted_request(request_id="r2", backup_status="backuping")
    done = submitted_request(request_id="r3", state=RequestState.FINISHED, backup_status="succeed")
    view = home_view(snapshot(running=(running,), recent=(done, running)))

    shown = text(view)
    assert "Backup status: Running" in shown and "Succeeded" in shown


@pytest.mark.parametrize("state", list(RequestState))
def test_a_recent_request_in_any_state_is_listed_in_words(state: RequestState) -> None:
    request = make_request(state=state)
    view = home_view(snapshot(recent=(request,)))

    assert f"*{request.instance_name}* — " in text(view)


def test_an_answer_to_a_home_tab_click_is_shown_at_the_top() -> None:
    note = HomeNote(NOW, ClickRefused("Only the approvers of rule 'x' can approve this request."))
    view = home_view(snapshot(notes=(note,)))

    assert "Only the approvers of rule" in json.dumps(view["blocks"][3:6])


def test_an_estate_of_500_instances_gives_a_valid_view() -> None:
    view = home_view(snapshot(clouds=(estate(500),)))

    assert view_problems(view, expected_type="home") == []
    assert len(view["blocks"]) <= MAX_BLOCKS
    assert "And 460 more — use `/dcs-backup list <instance>`" in text(view)


def test_everything_at_its_largest_still_fits_block_kits_limits() -> None:
    long_name = "redis-" + "x" * 300
    approvals = tuple(
        awaiting_approval(request_id=f"r{n:03d}", requester=BOB, remark="r" * 128, instance_name=long_name)
        for n in range(60)
    )
    notes = tuple(HomeNote(NOW, ClickRefused("No. " * 900)) for _ in range(3))
    clouds = tuple(estate(500, f"cloud-{c}", shown=20, name=long_name) for c in range(8))
    view = home_view(
        snapshot(
            clouds=clouds,
            awaiting=approvals,
            running=approvals[:30],
            recent=approvals[:30],
            notes=notes,
            multi_cloud=True,
            groups_unknown="ratelimited",
        )
    )

    assert view_problems(view, expected_type="home") == []
    assert len(view["blocks"]) <= MAX_BLOCKS
    assert "And 50 more waiting for you" in text(view)


@pytest.mark.parametrize(
    ("view", "problem"),
    [
        ({"type": "modal", "blocks": []}, "must be home"),
        ({"type": "home", "blocks": [{"type": "divider"}] * 101}, "no more than 100"),
        (
            {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]},
            "less than 3001",
        ),
        (
            {
                "type": "home",
                "blocks": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
            },
            "no more than 10 items",
        ),
        (
            {
                "type": "home",
                "blocks": [
                    {
                        "type": "actions",
                        "elements": [
                            {
                                "type": "button",
                                "text": {"type": "plain_text", "text": "b" * 76},
                                "action_id": "a",
                            }
                        ],
                    }
                ],
            },
            "less than 76",
        ),
    ],
)
def test_the_stand_in_refuses_what_slack_refuses(view: dict[str, Any], problem: str) -> None:
    assert any(problem in line for line in view_problems(view, expected_type="home"))
