"""The Home tab (INTERFACE §11), end to end over HTTP signed as Slack signs: ``app_home_opened`` publishes
the person's view (``views.publish``, checked by the stand-in as Slack checks a Home view) with only what
they may back up; its approval buttons work as they do in the channel; a redelivered event is handled
once; a change of state publishes it again; an estate of 500 instances still gives a valid view."""

from __future__ import annotations

import json

from bot.standins.slack.delivery import post_raw
from bot.standins.slack.payloads import signed_headers
from bot.standins.slack.timeline import JsonDict, find_buttons
from tests.e2e.conftest import (
    ALICE,
    BOB,
    LEAD,
    OPS,
    SIGNING_SECRET,
    VIEWER,
    StandInsFactory,
    World,
    WorldFactory,
)
from tests.e2e.test_approval import approval_request
from tests.fakes import FakeEventDeliveries


async def home_views(world: World, user: str, count: int = 1) -> list[JsonDict]:
    """The views published to ``user``'s Home tab, once there are at least ``count``."""
    await world.slack.wait_until(
        lambda: len(world.slack.home_views(user)) >= count, what=f"{count} Home view(s) of {user}"
    )
    return world.slack.home_views(user)


def text_of(view: JsonDict) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)


def buttons_of(view: JsonDict) -> list[tuple[str, str | None]]:
    return [(b.action_id, b.value) for b in find_buttons(view["blocks"])]


async def test_the_home_tab_shows_only_what_the_person_may_back_up(world: World) -> None:
    assert (await world.slack.open_home(world.bot_url, user_id=BOB)).status == 200
    [view] = await home_views(world, BOB)

    [call] = world.slack.calls("views.publish")
    assert call.ok and call.params["user_id"] == BOB
    shown = text_of(view)
    assert world.staging.instance_id in shown
    assert world.prod.instance_id not in shown and world.single.instance_id not in shown
    assert "in any channel, with a second person's approval" in shown
    assert ("backup_new", "home") in buttons_of(view)
    home = world.slack.render_home(BOB)
    assert "# Instances you may back up" in home and "redis-prod" not in home


async def test_channels_are_named_where_rules_limit_them(world: World) -> None:
    await world.slack.open_home(world.bot_url, user_id=ALICE)
    [view] = await home_views(world, ALICE)

    assert "in <#COPS1>, <#GPRIVATE1>" in text_of(view)
    assert "in #ops, #private-ops" in world.slack.render_home(ALICE)


async def test_someone_who_may_back_up_nothing_is_told_so(world: World) -> None:
    await world.slack.open_home(world.bot_url, user_id=VIEWER)
    [view] = await home_views(world, VIEWER)

    shown = text_of(view)
    assert "ask a bot admin" in shown
    assert all(i.instance_id not in shown for i in (world.prod, world.staging, world.single))


async def test_an_approver_approves_from_the_home_tab_as_from_the_channel(world: World) -> None:
    await world.slack.open_home(world.bot_url, user_id=LEAD)
    [empty] = await home_views(world, LEAD)
    assert not any(action == "backup_approve" for action, _ in buttons_of(empty))

    message = await approval_request(world)
    [request] = await world.requests()
    # The request waits for LEAD: the tab is published again, with its buttons.
    await world.slack.wait_until(
        lambda: ("backup_approve", request.request_id) in buttons_of(world.slack.home_views(LEAD)[-1]),
        what="the approval on LEAD's Home tab",
    )
    assert ("backup_reject", request.request_id) in buttons_of(world.slack.home_views(LEAD)[-1])

    status = await world.slack.click_home(
        world.bot_url, user_id=LEAD, action_id="backup_approve", value=request.request_id
    )
    started = await world.channel_message(OPS, 2)

    assert status == 200
    assert world.backups_created() == 1
    assert f"<@{LEAD}>" in started.shown and f"<@{BOB}>" in started.shown
    # The approval request in the channel is closed as a click there would close it.
    await world.slack.wait_until(lambda: bool(message.history), what="approval request replaced")
    assert world.slack.buttons(message) == [] and f"Approved by <@{LEAD}>" in message.shown
    [call] = world.slack.calls("chat.update")
    assert call.ok and call.params["ts"] == message.ts
    # LEAD's tab loses the buttons and says what the click did.
    await world.slack.wait_until(
        lambda: (
            "backup_approve" not in text_of(world.slack.home_views(LEAD)[-1])
            and "Approved by" in text_of(world.slack.home_views(LEAD)[-1])
        ),
        what="LEAD's Home tab after the approval",
    )
    [stored] = await world.requests()
    assert stored.approved_by == LEAD


async def test_a_click_from_the_home_tab_is_checked_like_one_from_the_channel(world: World) -> None:
    await world.slack.open_home(world.bot_url, user_id=LEAD)
    await home_views(world, LEAD)
    message = await approval_request(world)
    [request] = await world.requests()
    await world.slack.wait_until(
        lambda: ("backup_reject", request.request_id) in buttons_of(world.slack.home_views(LEAD)[-1]),
        what="the approval on LEAD's Home tab",
    )
    # Alice is no approver: the same click, made by her, is refused on her own Home tab.
    forged, _ = world.slack.build_home_click(
        user_id=LEAD, action_id="backup_approve", value=request.request_id
    )
    forged["user"] = forged["user"] | {"id": ALICE, "username": "alice", "name": "alice"}
    await world.slack.send_interactive(world.bot_url, forged)
    [refusal] = await home_views(world, ALICE)

    assert "Only the approvers of rule" in text_of(refusal)
    assert world.backups_created() == 0
    assert world.slack.buttons(message), "the approval request is untouched"

    await world.slack.click_home(
        world.bot_url, user_id=LEAD, action_id="backup_reject", value=request.request_id
    )
    await world.slack.wait_until(lambda: bool(message.history), what="approval request replaced")
    assert f"Rejected by <@{LEAD}>" in message.shown
    assert world.backups_created() == 0


async def test_a_redelivered_app_home_opened_is_handled_once(world_factory: WorldFactory) -> None:
    deliveries = FakeEventDeliveries()
    world = await world_factory(event_deliveries=deliveries)
    event = world.slack.user.home_opened_event(user_id=ALICE, event_id="Ev0HOMEONCE")
    body = json.dumps(event)
    headers = signed_headers(body, secret=SIGNING_SECRET, content_type="application/json")

    first = await post_raw(world.bot_url, body, headers)
    await home_views(world, ALICE)
    retry = signed_headers(body, secret=SIGNING_SECRET, content_type="application/json")
    again = await post_raw(
        world.bot_url, body, retry | {"x-slack-retry-num": "1", "x-slack-retry-reason": "http_timeout"}
    )
    # Another person's event afterwards: once its publish is seen, a second one of Alice's would be too.
    await world.slack.open_home(world.bot_url, user_id=BOB)
    await home_views(world, BOB)

    assert (first.status, again.status) == (200, 200)
    assert [event_id for event_id, _ in deliveries.asked].count("Ev0HOMEONCE") == 2
    assert len(world.slack.home_views(ALICE)) == 1


async def test_the_home_tab_follows_a_backup_of_the_person(world: World) -> None:
    await world.slack.open_home(world.bot_url, user_id=ALICE)
    [first] = await home_views(world, ALICE)
    assert "None yet." in text_of(first)

    card = await world.card('redis-prod aof "from home"')
    await world.click(card, "backup_confirm")
    await world.slack.wait_until(
        lambda: "Succeeded" in text_of(world.slack.home_views(ALICE)[-1]),
        what="the finished backup on Alice's Home tab",
    )

    latest = world.slack.home_views(ALICE)[-1]
    assert "last successful backup <!date^" in text_of(latest)
    assert all(call.ok for call in world.slack.calls("views.publish"))


async def test_url_verification_is_answered_through_the_signed_path(world: World) -> None:
    body = json.dumps(
        {
            "token": "x",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification",
        }
    )
    reply = await post_raw(
        world.bot_url, body, signed_headers(body, secret=SIGNING_SECRET, content_type="application/json")
    )

    assert reply.status == 200
    assert "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" in reply.body


async def test_an_estate_of_500_instances_gives_a_valid_home_view(
    world_factory: WorldFactory, stand_ins_factory: StandInsFactory
) -> None:
    stand_ins = await stand_ins_factory()
    for n in range(500):
        stand_ins.dcs.add_instance(f"redis-estate-{n:03d}")
    world = await world_factory(stand_ins=stand_ins)

    await world.slack.open_home(world.bot_url, user_id=ALICE)
    [view] = await home_views(world, ALICE)

    [call] = world.slack.calls("views.publish")
    assert call.ok, call.reply.body
    assert len(view["blocks"]) <= 100
    assert "And 463 more" in text_of(view)
    assert len(world.dcs.calls_to("list_backups")) <= 40
