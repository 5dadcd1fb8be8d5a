"""The Slack stand-in's views (views.open/update/publish, trigger ids), messages that change (chat.update,
chat.postEphemeral, reply_broadcast), and the payloads a person's work in a modal sends: shortcut,
block_suggestion, view_submission and block_actions from a view — signed as Slack signs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.standins.slack.render import Directory, render_view
from bot.standins.slack.standin import SlackStandIn
from bot.standins.slack.view_checks import suggestion_problems, view_problems
from bot.standins.slack.view_state import NotSubmittableError, view_state
from bot.standins.slack.views import TRIGGER_LIFETIME
from tests.standins.test_slack import ALICE, BOB, OPS, SECRET, TOKEN, FakeClock, ToyBot

MODAL: dict[str, Any] = {
    "type": "modal",
    "callback_id": "backup_form",
    "title": {"type": "plain_text", "text": "Back up an instance"},
    "submit": {"type": "plain_text", "text": "Continue"},
    "close": {"type": "plain_text", "text": "Cancel"},
    "private_metadata": '{"channel": "C0OPS"}',
    "blocks": [
        {
            "type": "input",
            "block_id": "instance",
            "label": {"type": "plain_text", "text": "Instance"},
            "element": {
                "type": "external_select",
                "action_id": "instance",
                "placeholder": {"type": "plain_text", "text": "Type a name"},
            },
        },
        {
            "type": "input",
            "block_id": "format",
            "label": {"type": "plain_text", "text": "Format"},
            "element": {
                "type": "radio_buttons",
                "action_id": "format",
                "options": [
                    {"text": {"type": "plain_text", "text": "AOF"}, "value": "aof"},
                    {"text": {"type": "plain_text", "text": "RDB"}, "value": "rdb"},
                ],
                "initial_option": {"text": {"type": "plain_text", "text": "RDB"}, "value": "rdb"},
            },
        },
        {
            "type": "input",
            "block_id": "remark",
            "optional": True,
            "label": {"type": "plain_text", "text": "Remark"},
            "element": {"type": "plain_text_input", "action_id": "remark", "max_length": 10},
        },
        {
            "type": "input",
            "block_id": "dry_run",
            "optional": True,
            "label": {"type": "plain_text", "text": "Options"},
            "element": {
                "type": "checkboxes",
                "action_id": "dry_run",
                "options": [{"text": {"type": "plain_text", "text": "Dry run"}, "value": "dry_run"}],
            },
        },
        {
            "type": "actions",
            "block_id": "more",
            "elements": [
                {
                    "type": "button",
                    "action_id": "help",
                    "text": {"type": "plain_text", "text": "Help"},
                    "value": "h",
                }
            ],
        },
    ],
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def slack(clock: FakeClock) -> AsyncIterator[SlackStandIn]:
    standin = SlackStandIn(signing_secret=SECRET, bot_token=TOKEN, clock=clock)
    standin.add_channel(OPS, "ops")
    standin.set_user(ALICE, "alice")
    async with TestServer(standin.app(), host="127.0.0.1") as server:
        standin.bind(str(server.make_url("/")))
        yield standin


@pytest.fixture
async def toy_bot() -> AsyncIterator[ToyBot]:
    bot = ToyBot()
    app = web.Application()
    app.router.add_post("/slack/events", bot.handle)
    async with TestServer(app, host="127.0.0.1") as server:
        bot.url = str(server.make_url("/slack/events"))
        yield bot


@pytest.fixture
def client(slack: SlackStandIn) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=slack.api_url)


async def trigger_of_command(slack: SlackStandIn, toy_bot: ToyBot) -> str:
    await slack.send_command(toy_bot.url, user_id=ALICE, channel_id=OPS, text="")
    trigger: str = toy_bot.received[-1].form["trigger_id"]
    return trigger


async def open_modal(slack: SlackStandIn, toy_bot: ToyBot, client: AsyncWebClient) -> Any:
    trigger = await trigger_of_command(slack, toy_bot)
    await client.views_open(trigger_id=trigger, view=MODAL)
    [modal] = slack.modals_for(ALICE)
    return modal


# ---- views.open and trigger ids -------------------------------------------------------------------------


async def test_a_command_trigger_opens_a_modal_for_its_person_once(
    slack: SlackStandIn, toy_bot: ToyBot, client: AsyncWebClient
) -> None:
    trigger = await trigger_of_command(slack, toy_bot)

    opened = await client.views_open(trigger_id=trigger, view=MODAL)
    with pytest.raises(SlackApiError) as again:
        await client.views_open(trigger_id=trigger, view=MODAL)

    [modal] = slack.modals_for(ALICE)
    assert opened["view"]["id"] == modal.view_id and opened["view"]["callback_id"] == "backup_form"
    assert (modal.callback_id, modal.private_metadata) == ("backup_form", '{"channel": "C0OPS"}')
    assert again.value.response["error"] == "exchanged_trigger_id"
    assert slack.modals_for(BOB) == []


async def test_unknown_and_expired_triggers_are_refused(
    slack: SlackStandIn, toy_bot: ToyBot, client: AsyncWebClient, clock: FakeClock
) -> None:
    trigger = await trigger_of_command(slack, toy_bot)
    clock.advance(TRIGGER_LIFETIME + 0.1)

    errors = []
    for candidate in ("1.2.3", trigger):
        with pytest.raises(SlackApiError) as refused:
            await client.views_open(trigger_id=candidate, view=MODAL)
        errors.append(refused.value.response["error"])

    assert errors == ["invalid_trigger_id", "expired_trigger_id"]
    assert slack.modals_for(ALICE) == []


async def test_a_view_slack_would_refuse_is_invalid_arguments_and_keeps_the_trigger(
    slack: SlackStandIn, toy_bot: ToyBot, client: AsyncWebClient
) -> None:
    trigger = await trigger_of_command(slack, toy_bot)
    bad = MODAL | {"title": {"type": "plain_text", "text": "A title longer than twenty-four"}}

    with pytest.raises(SlackApiError) as refused:
        await client.views_open(trigger_id=trigger, view=bad)
    await client.views_open(trigger_id=trigger, view=MODAL)

    assert refused.value.response["error"] == "invalid_arguments"
    assert refused.value.response["response_metadata"]["messages"] == [
        "[ERROR] must be less than 25 characters [json-pointer:/view/title/text]"
    ]
    assert len(slack.modals_for(ALICE)) == 1


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        ({"type": "sheet"}, "/view/type"),
        ({"blocks": [{"type": "divider"}] * 101}, "/view/blocks"),
        ({"submit": None}, "/view/submit"),
        ({"callback_id": "x" * 256}, "/view/callback_id"),
        ({"private_metadata": "x" * 3001}, "/view/private_metadata"),
    ],
)
def test_view_checks_name_the_field(change: dict[str, Any], pointer: str) -> None:
    problems = view_problems({k: v for k, v in (MODAL | change).items() if v is not None})

    assert any(f"[json-pointer:{pointer}]" in p for p in problems), problems


def test_view_checks_look_into_inputs() -> None:
    label = {"type": "plain_text", "text": "L" * 2001}
    radio = dict(MODAL["blocks"][1])
    radio["element"] = radio["element"] | {
        "initial_option": {"text": {"type": "plain_text", "text": "X"}, "value": "x"}
    }
    blocks = [MODAL["blocks"][0] | {"label": label}, radio, MODAL["blocks"][0]]

    problems = view_problems(MODAL | {"blocks": blocks}, expected_type="modal")

    assert problems == [
        "[ERROR] must be less than 2001 characters [json-pointer:/view/blocks/0/label/text]",
        "[ERROR] must match one of the options [json-pointer:/view/blocks/1/element/initial_option]",
        "[ERROR] must be unique [json-pointer:/view/blocks/2/block_id]",
    ]
    assert view_problems(MODAL, expected_type="home") == [
        "[ERROR] must be home for this method [json-pointer:/view/type]"
    ]


def test_suggestion_checks_limit_options_and_their_text() -> None:
    def option(text: str) -> dict[str, Any]:
        return {"text": {"type": "plain_text", "text": text}, "value": text[:150]}

    assert suggestion_problems({"options": [option("redis-prod")]}) == []
    assert suggestion_problems({"options": [option("x")] * 101}) == [
        "[ERROR] must provide no more than 100 items [json-pointer:/options]"
    ]
    assert suggestion_problems({"options": [option("y" * 76)]}) == [
        "[ERROR] must be less than 76 characters [json-pointer:/options/0/text/text]"
    ]


async def test_views_update_and_publish(slack: SlackStandIn, toy_bot: ToyBot, client: AsyncWebClient) -> None:
    modal = await open_modal(slack, toy_bot, client)
    old_hash = modal.hash
    changed = MODAL | {"title": {"type": "plain_text", "text": "Changed"}}

    await client.views_update(view_id=modal.view_id, view=changed, hash=old_hash)
    with pytest.raises(SlackApiError) as conflict:
        await client.views_update(view_id=modal.view_id, view=MODAL, hash=old_hash)
    home = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Hi"}}]}
    await client.views_publish(user_id=ALICE, view=home)
    with pytest.raises(SlackApiError) as not_home:
        await client.views_publish(user_id=ALICE, view=MODAL)

    assert modal.definition["title"]["text"] == "Changed" and modal.history == [MODAL]
    assert conflict.value.response["error"] == "hash_conflict"
    published = slack.home_of(ALICE)
    assert published is not None and published.blocks == home["blocks"]
    assert not_home.value.response["error"] == "invalid_arguments"


# ---- chat.update, chat.postEphemeral, reply_broadcast ------------------------------------------------


async def test_chat_update_keeps_each_version(slack: SlackStandIn, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel=OPS, text="waiting")
    ts = posted["ts"]

    await client.chat_update(channel=OPS, ts=ts, text="running")
    await client.chat_update(channel=OPS, ts=ts, text="succeeded")
    with pytest.raises(SlackApiError) as missing:
        await client.chat_update(channel=OPS, ts="1.000001", text="?")

    [message] = slack.channel_messages(OPS)
    assert message.text == "succeeded"
    assert [c.text for c in message.history] == ["waiting", "running"]
    assert missing.value.response["error"] == "message_not_found"


async def test_ephemeral_messages_cannot_be_updated(slack: SlackStandIn, client: AsyncWebClient) -> None:
    whispered = await client.chat_postEphemeral(channel=OPS, user=ALICE, text="only you")

    with pytest.raises(SlackApiError) as refused:
        await client.chat_update(channel=OPS, ts=whispered["message_ts"], text="changed")

    [message] = slack.ephemeral_for(ALICE)
    assert (message.text, message.source, message.visible_to) == ("only you", "chat.postEphemeral", ALICE)
    assert refused.value.response["error"] == "message_not_found"


async def test_reply_broadcast_shows_the_thread_reply_in_the_channel(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    parent = await client.chat_postMessage(channel=OPS, text="backup started")

    await client.chat_postMessage(channel=OPS, thread_ts=parent["ts"], text="quiet reply")
    await client.chat_postMessage(channel=OPS, thread_ts=parent["ts"], text="failed!", reply_broadcast=True)

    assert [m.text for m in slack.thread(OPS, parent["ts"])] == ["quiet reply", "failed!"]
    assert [m.text for m in slack.channel_messages(OPS)] == ["backup started", "failed!"]


# ---- what a person does in a modal -------------------------------------------------------------------


async def test_shortcut_is_signed_and_carries_a_trigger_that_opens_a_modal(
    slack: SlackStandIn, toy_bot: ToyBot, client: AsyncWebClient
) -> None:
    await slack.send_shortcut(toy_bot.url, user_id=ALICE, callback_id="backup_shortcut")

    [received] = toy_bot.received
    assert received.payload is not None
    assert received.payload["type"] == "shortcut"
    assert received.payload["callback_id"] == "backup_shortcut"
    assert "channel" not in received.payload and "response_url" not in received.payload
    await client.views_open(trigger_id=received.payload["trigger_id"], view=MODAL)
    assert len(slack.modals_for(ALICE)) == 1


async def test_block_suggestion_sends_what_was_typed_and_reads_the_options(
    slack: SlackStandIn, toy_bot: ToyBot, client: AsyncWebClient
) -> None:
    modal = await open_modal(slack, toy_bot, client)
    option = {"text": {"type": "plain_text", "text": "redis-prod"}, "value": "i-1"}
    toy_bot.ack_with({"options": [option]})
    toy_bot.ack_with({"options": [option | {"value": "v" * 151}]})

    listed = await slack.suggest(toy_bot.url, user_id=ALICE, view=modal, action_id="instance", typed="red")
    refused = await slack.suggest(toy_bot.url, user_id=ALICE, view=modal, action_id="instance", typed="re")

    payload = toy_bot.received[-2].payload
    assert payload is not None
    assert (payload["type"], payload["block_id"], payload["action_id"], payload["value"]) == (
        "block_suggestion",
        "instance",
        "instance",
        "red",
    )
    assert payload["container"] == {"type": "view", "view_id": modal.view_id}
    assert payload["view"]["private_metadata"] == modal.private_metadata
    assert (listed.labels, listed.values, listed.problems) == (["redis-prod"], ["i-1"], [])
    assert refused.options == [] and refused.problems


async def test_view_submission_carries_the_state_and_errors_keep_the_modal_open(
    slack: SlackStandIn, toy_bot: ToyBot, client: AsyncWebClient
) -> None:
    modal = await open_modal(slack, toy_bot, client)
    chosen = {"text": {"type": "plain_text", "text": "redis-prod"}, "value": "i-1"}
    toy_bot.ack_with({"response_action": "errors", "errors": {"remark": "Too long"}})

    kept = await slack.submit_view(
        toy_bot.url, user_id=ALICE, view=modal, entered={"instance": chosen, "remark": "hi", "dry_run": True}
    )
    closed = await slack.submit_view(toy_bot.url, user_id=ALICE, view=modal, entered={"instance": chosen})

    payload = toy_bot.received[-2].payload
    assert payload is not None and payload["type"] == "view_submission"
    assert payload["view"]["callback_id"] == "backup_form"
    values = payload["view"]["state"]["values"]
    assert values["instance"]["instance"] == {"type": "external_select", "selected_option": chosen}
    assert values["format"]["format"]["selected_option"]["value"] == "rdb"
    assert values["remark"]["remark"] == {"type": "plain_text_input", "value": "hi"}
    assert [o["value"] for o in values["dry_run"]["dry_run"]["selected_options"]] == ["dry_run"]
    assert kept.errors == {"remark": "Too long"} and not kept.closed and kept.problems == []
    assert "! Too long" in slack.render_view(modal)
    assert closed.closed and slack.modals_for(ALICE) == []


async def test_errors_on_a_block_that_is_no_input_are_a_problem(
    slack: SlackStandIn, toy_bot: ToyBot, client: AsyncWebClient
) -> None:
    modal = await open_modal(slack, toy_bot, client)
    toy_bot.ack_with({"response_action": "errors", "errors": {"more": "?"}})

    answer = await slack.submit_view(toy_bot.url, user_id=ALICE, view=modal, entered={"instance": "i-1"})

    assert answer.problems == ["errors names 'more', which is no input block of the view"]


def test_the_client_refuses_what_slack_would_not_submit() -> None:
    blocks = MODAL["blocks"]

    with pytest.raises(NotSubmittableError, match="'Instance' is required"):
        view_state(blocks, {})
    with pytest.raises(NotSubmittableError, match="at most 10 characters"):
        view_state(blocks, {"instance": "i-1", "remark": "x" * 11})
    with pytest.raises(NotSubmittableError, match="not one of the options"):
        view_state(blocks, {"instance": "i-1", "format": "csv"})
    forced = view_state(blocks, {"remark": "x" * 11}, force=True)
    assert forced["remark"]["remark"]["value"] == "x" * 11


async def test_a_button_in_a_view_sends_block_actions_from_the_view(
    slack: SlackStandIn, toy_bot: ToyBot, client: AsyncWebClient
) -> None:
    modal = await open_modal(slack, toy_bot, client)

    await slack.click_in_view(toy_bot.url, user_id=ALICE, view=modal, action_id="help")

    payload = toy_bot.received[-1].payload
    assert payload is not None and payload["type"] == "block_actions"
    assert payload["container"] == {"type": "view", "view_id": modal.view_id}
    assert payload["actions"][0] | {"action_ts": ""} == {
        "action_id": "help",
        "block_id": "more",
        "type": "button",
        "text": {"type": "plain_text", "text": "Help"},
        "value": "h",
        "action_ts": "",
    }
    assert "response_url" not in payload


async def test_a_modal_renders_as_text(slack: SlackStandIn, toy_bot: ToyBot, client: AsyncWebClient) -> None:
    modal = await open_modal(slack, toy_bot, client)

    assert slack.render_view(modal) == (
        "[ Back up an instance ]\n"
        "Instance: [Type a name v]\n"
        "Format: ( ) AOF  (•) RDB\n"
        "Remark (optional): [___] (at most 10 characters)\n"
        "Options (optional): [ ] Dry run\n"
        "[Help]\n"
        "[Cancel] [Continue]\n"
    )


def test_directory_is_enough_to_render_a_home_tab() -> None:
    home = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Hi <@U1>"}}]}

    assert render_view(home, Directory("UBOT", "DCS Backup", {"U1": "alice"})) == "[ Home ]\nHi @alice\n"
