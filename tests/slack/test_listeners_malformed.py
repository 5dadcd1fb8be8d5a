"""The listeners fed malformed bodies straight (no Bolt, no HTTP): whatever Slack — or someone pretending to
be Slack — sends, the listener acks, nothing raises, nothing reaches DCS's create call, and the person gets
a clear answer where there is one to give.

The work behind the ack runs on a real :class:`Runner` and :class:`Supervisor` over the in-memory fakes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from slack_bolt import BoltResponse
from slack_bolt.async_app import AsyncAck

from bot.core.flow.inputs import Click, Invocation
from bot.core.rules.backup_request import RequestState
from bot.core.rules.grammar import BackupCommand
from bot.core.rules.messages import (
    CardClosed,
    ClickRefused,
    Confirmation,
    Help,
    InternalError,
    OutcomeChecking,
    Refusal,
    Usage,
)
from bot.slack.blocks import APPROVE_ACTION, CONFIRM_ACTION
from bot.slack.listeners.actions import _listener, click_from
from bot.slack.listeners.commands import handle_command
from bot.slack.listeners.runner import BUSY, Runner
from bot.slack.middleware.shutdown_gate import RESTARTING
from bot.supervisor import Supervisor
from tests.factories import ALICE, BOB, OPS, RESPONSE_URL, click_body, command_body, make_instance
from tests.fakes import Fakes, make_fakes, service_on

POLICY = f"""
[[rules]]
name = "sre-prod"
users = ["{ALICE}", "{BOB}"]
instances = ["redis-*"]
actions = ["backup", "list", "status"]
"""
PROD = make_instance("redis-prod")
LOOKING_UP = "Looking up *redis-prod*…"


class RecordingAck(AsyncAck):
    """Bolt's own ``ack`` (it builds the HTTP answer), counting how often it was called."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.calls = 0

    async def __call__(self, *args: Any, **kwargs: Any) -> BoltResponse:
        self.calls += 1
        return await super().__call__(*args, **kwargs)


@dataclass
class Bot:
    fakes: Fakes
    runner: Runner
    supervisor: Supervisor

    async def settle(self) -> None:
        """Waits for the work spawned after the ack (the fakes never block, so this is immediate)."""
        await self.supervisor.drain(timeout=1)

    def nothing_happened_in_the_cloud(self) -> bool:
        return self.fakes.dcs.calls == [] and self.fakes.requests.requests == {}


@pytest.fixture
async def bot() -> AsyncIterator[Bot]:
    fakes = make_fakes(POLICY, PROD)
    supervisor = Supervisor()
    runner = Runner(
        service=service_on(fakes), notifier=fakes.notifier, audit=fakes.audit, supervisor=supervisor
    )
    yield Bot(fakes, runner, supervisor)
    await supervisor.drain(timeout=1)


def acked_text(ack: RecordingAck) -> str | None:
    """The text of the ack's HTTP answer (None when ``ack`` was never called); an ack happens once."""
    if ack.response is None:
        return None
    assert ack.calls == 1
    body = ack.response.body
    if not body.startswith("{"):
        return body  # a text-only ack is sent as plain text
    return str(json.loads(body).get("text", ""))


def without(body: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key not in keys}


# --- /dcs-backup ---------------------------------------------------------------------------------------
async def test_a_command_finding_the_queue_full_is_answered_in_the_ack(bot: Bot) -> None:
    full = Runner(
        service=service_on(bot.fakes),
        notifier=bot.fakes.notifier,
        audit=bot.fakes.audit,
        supervisor=bot.supervisor,
        workers=1,
        capacity=1,
        admission_wait=0,
    )
    first, second = RecordingAck(), RecordingAck()
    await handle_command(first, command_body("redis-prod"), full)
    await handle_command(second, command_body("redis-prod"), full)
    await bot.settle()

    assert acked_text(first) == LOOKING_UP
    assert acked_text(second) == BUSY
    assert len(bot.fakes.notifier.replies_of(Confirmation)) == 1


async def test_a_command_arriving_as_shutdown_begins_is_told_the_bot_restarts(bot: Bot) -> None:
    await bot.settle()
    ack = RecordingAck()
    await handle_command(ack, command_body("redis-prod"), bot.runner)
    assert acked_text(ack) == RESTARTING
    assert bot.nothing_happened_in_the_cloud()


async def test_a_well_formed_command_brings_up_the_card(bot: Bot) -> None:
    ack = RecordingAck()
    await handle_command(ack, command_body("redis-prod"), bot.runner)
    await bot.settle()

    assert acked_text(ack) == LOOKING_UP
    [sent] = bot.fakes.notifier.replies
    assert isinstance(sent.reply, Confirmation) and sent.response_url == RESPONSE_URL
    assert sent.replace_original, "the card replaces the ack"


async def test_an_empty_body_is_acked_and_opens_no_form_without_a_trigger(bot: Bot) -> None:
    ack = RecordingAck()
    await handle_command(ack, {}, bot.runner)
    await bot.settle()

    assert acked_text(ack) == ""
    assert bot.fakes.notifier.replies == []
    assert bot.nothing_happened_in_the_cloud()


@pytest.mark.parametrize(
    "user", [None, {"id": ALICE}, ["UALICE1"], 42], ids=["missing", "dict", "list", "int"]
)
async def test_a_command_without_a_usable_user_is_refused_before_any_cloud_call(
    bot: Bot, user: object
) -> None:
    body = without(command_body("redis-prod"), "user_id", "user_name")
    if user is not None:
        body["user_id"] = user
    ack = RecordingAck()

    await handle_command(ack, body, bot.runner)
    await bot.settle()

    assert acked_text(ack) == LOOKING_UP
    [reply] = [sent.reply for sent in bot.fakes.notifier.replies]
    assert isinstance(reply, Refusal)
    assert bot.nothing_happened_in_the_cloud()


async def test_a_command_without_a_channel_submits_nothing(bot: Bot) -> None:
    ack = RecordingAck()
    await handle_command(ack, without(command_body("redis-prod"), "channel_id", "channel_name"), bot.runner)
    await bot.settle()

    assert acked_text(ack) is not None
    assert bot.fakes.dcs.created == []


async def test_a_command_without_a_response_url_submits_nothing(bot: Bot) -> None:
    # There is no way to answer after the ack; the work must at least not fail or start anything.
    ack = RecordingAck()
    await handle_command(ack, without(command_body("redis-prod"), "response_url"), bot.runner)
    await bot.settle()

    assert acked_text(ack) is not None
    assert bot.fakes.dcs.created == []


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(None, id="null"),
        pytest.param(123, id="int"),
        pytest.param(["redis-prod"], id="list"),
        pytest.param({"text": "redis-prod"}, id="dict"),
        pytest.param(b"redis-prod", id="bytes"),
    ],
)
async def test_a_text_that_is_not_a_string_is_answered_without_asking_dcs(bot: Bot, text: object) -> None:
    ack = RecordingAck()
    await handle_command(ack, command_body() | {"text": text}, bot.runner)
    await bot.settle()

    answered = acked_text(ack) or ""
    later = [sent.reply for sent in bot.fakes.notifier.replies]
    # Read as no text at all, it asks for the form (which needs a trigger id this body lacks).
    assert "Usage" in answered or later == [] or isinstance(later[0], Help | Usage), (answered, later)
    assert bot.nothing_happened_in_the_cloud()


# --- clicks: reading the body --------------------------------------------------------------------------


def test_a_well_formed_click_is_read() -> None:
    body = click_body(CONFIRM_ACTION, "r1", user_id=BOB)

    assert click_from(body) == Click(
        user_id=BOB, request_id="r1", response_url=RESPONSE_URL, channel_id=OPS, user_name=BOB.lower()
    )


def test_the_channel_is_taken_from_the_container_when_missing() -> None:
    body = without(click_body(CONFIRM_ACTION, "r1"), "channel")

    click = click_from(body)
    assert click is not None and click.channel_id == OPS


_GOOD = click_body(CONFIRM_ACTION, "r1")
_ACTION = _GOOD["actions"][0]

UNREADABLE_CLICKS = [
    pytest.param(without(_GOOD, "user"), id="user missing"),
    pytest.param(_GOOD | {"user": None}, id="user null"),
    pytest.param(_GOOD | {"user": ALICE}, id="user a string"),
    pytest.param(_GOOD | {"user": {"name": "alice"}}, id="user without id"),
    pytest.param(_GOOD | {"user": {"id": 7}}, id="user id not a string"),
    pytest.param(without(_GOOD, "actions"), id="actions missing"),
    pytest.param(_GOOD | {"actions": []}, id="actions empty"),
    pytest.param(_GOOD | {"actions": "r1"}, id="actions a string"),
    pytest.param(_GOOD | {"actions": [None]}, id="action null"),
    pytest.param(_GOOD | {"actions": ["r1"]}, id="action a string"),
    pytest.param(
        _GOOD | {"actions": _ACTION},
        id="actions a dict",
    ),
    pytest.param(
        _GOOD | {"actions": 5},
        id="actions a number",
    ),
    pytest.param(_GOOD | {"actions": [without(_ACTION, "value")]}, id="value missing"),
    pytest.param(_GOOD | {"actions": [_ACTION | {"value": None}]}, id="value null"),
    pytest.param(_GOOD | {"actions": [_ACTION | {"value": 17}]}, id="value a number"),
    pytest.param(_GOOD | {"actions": [_ACTION | {"value": ["r1"]}]}, id="value a list"),
    pytest.param(without(_GOOD, "response_url"), id="response_url missing"),
    pytest.param(_GOOD | {"response_url": None}, id="response_url null"),
    pytest.param(_GOOD | {"response_url": 1}, id="response_url a number"),
]


@pytest.mark.parametrize("body", UNREADABLE_CLICKS)
def test_an_unreadable_click_is_no_click(body: dict[str, Any]) -> None:
    assert click_from(body) is None


@pytest.mark.parametrize(
    ("channel", "container"),
    [
        pytest.param({"id": OPS}, {"channel_id": OPS}, id="both strings"),
        pytest.param(None, None, id="both missing"),
        pytest.param("COPS1", [OPS], id="neither a dict"),
        pytest.param(
            {"id": 5},
            {"channel_id": OPS},
            id="channel id a number",
        ),
        pytest.param(
            None,
            {"channel_id": 9},
            id="container channel id a number",
        ),
    ],
)
def test_a_strange_channel_never_gives_a_channel_id_that_is_not_a_string(
    channel: object, container: object
) -> None:
    click = click_from(_GOOD | {"channel": channel, "container": container})

    assert click is not None
    assert click.channel_id is None or isinstance(click.channel_id, str)


# --- clicks: the listener ------------------------------------------------------------------------------


async def card(bot: Bot) -> str:
    """Alice's confirmation card for redis-prod (asked of the service directly); returns its request id."""
    invocation = Invocation(ALICE, "alice", OPS, RESPONSE_URL, "redis-prod")
    reply = await bot.runner.service.handle(BackupCommand("redis-prod", None, None), invocation)
    assert isinstance(reply, Confirmation)
    return reply.request.request_id


async def test_a_well_formed_click_confirms(bot: Bot) -> None:
    request_id = await card(bot)
    on_click = _listener(bot.runner.service.confirm, bot.runner)
    ack = RecordingAck()

    await on_click(ack, click_body(CONFIRM_ACTION, request_id))
    await bot.settle()

    assert ack.response is not None
    assert [r.outcome for r in bot.fakes.notifier.replies_of(CardClosed)] == ["confirmed", "started"]
    assert len(bot.fakes.dcs.created) == 1


@pytest.mark.parametrize("body", UNREADABLE_CLICKS)
async def test_an_unreadable_click_is_acked_and_changes_nothing(bot: Bot, body: dict[str, Any]) -> None:
    request_id = await card(bot)
    body = json.loads(json.dumps(body).replace('"r1"', json.dumps(request_id)))
    on_click = _listener(bot.runner.service.confirm, bot.runner)
    ack = RecordingAck()

    await on_click(ack, body)
    await bot.settle()

    assert ack.calls == 1 and ack.response is not None and ack.response.status == 200
    assert bot.fakes.dcs.created == []
    assert bot.fakes.notifier.replies == []
    assert (await bot.fakes.requests.get(request_id)).state == RequestState.PENDING  # type: ignore[union-attr]


async def test_a_click_by_someone_else_is_refused(bot: Bot) -> None:
    request_id = await card(bot)
    on_click = _listener(bot.runner.service.confirm, bot.runner)

    await on_click(RecordingAck(), click_body(CONFIRM_ACTION, request_id, user_id=BOB))
    await bot.settle()

    [refused] = bot.fakes.notifier.replies_of(ClickRefused)
    assert refused.plain == f"Only @{ALICE} can confirm this backup request. Nothing was changed."
    assert bot.fakes.dcs.created == []


async def test_a_forged_request_id_is_refused(bot: Bot) -> None:
    await card(bot)
    on_click = _listener(bot.runner.service.confirm, bot.runner)

    await on_click(RecordingAck(), click_body(CONFIRM_ACTION, "' OR 1=1 --"))
    await bot.settle()

    [refused] = bot.fakes.notifier.replies_of(ClickRefused)
    assert "unknown to the bot" in refused.message
    assert bot.fakes.dcs.created == []


async def test_an_adapter_bug_behind_a_click_is_answered_with_a_reference(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    request_id = await card(bot)

    async def broken(request_id: str) -> None:
        raise RuntimeError("a bug in the adapter")

    monkeypatch.setattr(bot.fakes.requests, "get", broken)
    on_click = _listener(bot.runner.service.confirm, bot.runner)

    await on_click(RecordingAck(), click_body(CONFIRM_ACTION, request_id))
    await bot.settle()

    [error] = bot.fakes.notifier.replies_of(InternalError)
    assert error.reference
    assert bot.fakes.dcs.created == []
    assert bot.fakes.requests.requests[request_id].state == RequestState.PENDING


async def test_an_adapter_bug_in_the_backup_call_leaves_its_outcome_unknown_and_checked(bot: Bot) -> None:
    request_id = await card(bot)
    bot.fakes.dcs.fail("create_backup", RuntimeError("a bug in the adapter"))
    on_click = _listener(bot.runner.service.confirm, bot.runner)

    await on_click(RecordingAck(), click_body(CONFIRM_ACTION, request_id))
    await bot.settle()

    # The POST may have gone out before the bug: not an error to retry, an outcome to look for.
    assert bot.fakes.notifier.replies_of(InternalError) == []
    [checking] = bot.fakes.notifier.notices_of(OutcomeChecking)
    assert "bug" not in checking.reason and "Traceback" not in checking.reason
    assert bot.fakes.requests.requests[request_id].state == RequestState.CHECKING


# --- clicks on the Home tab ----------------------------------------------------------------------------


def home_click_body(**view: object) -> dict[str, Any]:
    body = without(without(click_body(APPROVE_ACTION, "r1", user_id=BOB), "response_url"), "channel")
    return body | {
        "container": {"type": "view", "view_id": "V1"},
        "view": {"id": "V1", "type": "home"} | view,
    }


def test_a_click_on_the_home_tab_is_read_without_response_url_or_channel() -> None:
    assert click_from(home_click_body()) == Click(
        user_id=BOB, request_id="r1", response_url=None, channel_id=None, user_name="ubob1"
    )


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(home_click_body(type="modal"), id="a modal"),
        pytest.param(home_click_body() | {"container": {"type": "message"}}, id="a message container"),
        pytest.param(without(home_click_body(), "view"), id="no view"),
        pytest.param(home_click_body() | {"view": "home"}, id="view a string"),
    ],
)
def test_a_click_without_response_url_elsewhere_than_the_home_tab_is_no_click(body: dict[str, Any]) -> None:
    assert click_from(body) is None
