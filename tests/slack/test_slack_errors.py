"""Slack answers of every shape, read one way (bot.slack.errors), and the adapters that survive them: the
user-group directory (per-group cache, shared look-ups, last known members through passing failures)
and the notifier (never raises; "not delivered" instead). Against the Slack stand-in on 127.0.0.1, and
a tiny server for the answers the stand-in does not give (a text/plain body)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.core.ports import GroupLookupError
from bot.core.rules.backup_request import BackupRequest
from bot.core.rules.instances import BackupFormat
from bot.core.rules.messages import BackupStarted, Usage
from bot.slack.app import retry_handlers
from bot.slack.errors import (
    TIMEOUT,
    UNREACHABLE,
    UNREADABLE,
    SlackCallError,
    SlackFailure,
    call_slack,
    slack_error,
)
from bot.slack.groups import MEMBERS_TTL, STALE_LIMIT, SlackGroupDirectory
from bot.slack.notifier import SlackNotifier
from bot.standins.faults import Answer, Fault
from bot.standins.slack.standin import SlackStandIn

TOKEN = "xoxb-errors-test"
GROUPS = "usergroups.users.list"
NOW = datetime(2026, 11, 26, tzinfo=UTC)
REQUEST = BackupRequest(
    request_id="r1",
    requester_id="UALICE1",
    requester_name="alice",
    channel_id="COPS1",
    instance_id="11111111-2222-3333-4444-555555555555",
    instance_name="redis-prod",
    backup_format=BackupFormat.AOF,
    remark="x",
    rule="sre",
    created_at=NOW,
    expires_at=NOW + timedelta(minutes=5),
    backup_id="b1",
)

# Every answer that is not Slack's JSON, and none at all; ``times`` outlasts slack_sdk's own retries.
ODD_ANSWERS = [
    pytest.param(Fault(Answer.HTML, status=502, times=5), id="html-502"),
    pytest.param(Fault(Answer.HTML, status=503, times=5), id="html-503"),
    pytest.param(Fault(Answer.HTML, status=200, times=5), id="html-200"),
    pytest.param(Fault(Answer.EMPTY, times=5), id="empty"),
    pytest.param(Fault(Answer.EMPTY, status=500, times=5), id="empty-500"),
    pytest.param(Fault(Answer.TRUNCATED, times=5), id="truncated"),
    pytest.param(Fault(Answer.NOTHING, times=5), id="nothing"),
    pytest.param(Fault(Answer.ERROR, error="internal_error", status=500, times=5), id="internal-error"),
    pytest.param(Fault(Answer.ERROR, error="ratelimited", retry_after=0, times=5), id="ratelimited"),
]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    standin = SlackStandIn(signing_secret="s" * 16, bot_token=TOKEN)
    standin.add_channel("COPS1", "ops")
    standin.add_channel("CPRIVATE1", "private", bot_member=False)
    standin.set_usergroup("SSRE1", ["UALICE1"])
    standin.set_usergroup("SLEADS1", ["ULEAD1"])
    server = TestServer(standin.app(), host="127.0.0.1")
    await server.start_server()
    standin.bind(str(server.make_url("")).rstrip("/"))
    yield standin
    await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def client(
    base_url: str, session: aiohttp.ClientSession, timeout: int = 5, *, retries: bool = False
) -> AsyncWebClient:
    """A Web API client; with ``retries`` it has the bot's retry handlers, which take a while (backoff)."""
    handlers = retry_handlers() if retries else []
    return AsyncWebClient(
        token=TOKEN, base_url=base_url, session=session, retry_handlers=handlers, timeout=timeout
    )


def with_target(fault: Fault, target: str) -> Fault:
    return Fault(
        fault.answer,
        target=target,
        times=fault.times,
        status=fault.status,
        error=fault.error,
        retry_after=fault.retry_after,
    )


# --- reading an error --------------------------------------------------------------------------------


def api_error(data: object, status: int = 200, headers: dict[str, str] | None = None) -> SlackApiError:
    response = AsyncSlackResponse(
        client=None,
        http_verb="POST",
        api_url="https://slack.com/api/chat.postMessage",
        req_args={},
        data=data,  # type: ignore[arg-type]
        headers=headers or {},
        status_code=status,
    )
    return sdk_error(response)


def sdk_error(response: object) -> SlackApiError:
    """A SlackApiError as slack_sdk raises it, with ``response`` whatever it is."""
    return SlackApiError("failed", response)  # type: ignore[no-untyped-call]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            api_error({"ok": False, "error": "not_in_channel"}),
            SlackFailure("not_in_channel", False, None, 200),
        ),
        (
            api_error({"ok": False, "error": "plan_upgrade_required"}, 200),
            SlackFailure("plan_upgrade_required", False, None, 200),
        ),
        (
            api_error({"ok": False, "error": "ratelimited"}, 429, {"Retry-After": "7"}),
            SlackFailure("ratelimited", True, 7.0, 429),
        ),
        (
            api_error({"ok": False, "error": "ratelimited"}, 429, {"retry-after": "soon"}),
            SlackFailure("ratelimited", True, None, 429),
        ),
        (api_error({"ok": False, "error": "fatal_error"}), SlackFailure("fatal_error", True, None, 200)),
        (api_error({"ok": False, "error": "whatever"}, 503), SlackFailure("whatever", True, None, 503)),
        (api_error({}, 502), SlackFailure(UNREADABLE, True, None, 502)),
        (api_error(None, 200), SlackFailure(UNREADABLE, True, None, 200)),
        (api_error("<html>bad gateway</html>", 502), SlackFailure(UNREADABLE, True, None, 502)),
        (api_error({"ok": False}, 200), SlackFailure(UNREADABLE, True, None, 200)),
        (api_error({"ok": False, "error": 42}, 200), SlackFailure(UNREADABLE, True, None, 200)),
        (sdk_error("just a string"), SlackFailure(UNREADABLE, True)),
        (TimeoutError(), SlackFailure(TIMEOUT, True)),
        (aiohttp.ServerDisconnectedError(), SlackFailure(UNREACHABLE, True)),
        (aiohttp.ClientConnectionError("refused"), SlackFailure(UNREACHABLE, True)),
        (AttributeError("'str' object has no attribute 'get'"), SlackFailure(UNREADABLE, True)),
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), SlackFailure(UNREADABLE, True)),
    ],
)
def test_every_shape_of_error_reads_as_one_failure(error: BaseException, expected: SlackFailure) -> None:
    assert slack_error(error) == expected


def test_a_failure_reads_well() -> None:
    assert str(SlackFailure("ratelimited", True, 3.0, 429)) == "ratelimited (HTTP 429, retry after 3 s)"
    assert str(SlackFailure(TIMEOUT, True)) == "timeout"
    assert SlackFailure(UNREADABLE, True, status=502).summary == "an unreadable answer, HTTP 502"
    assert SlackFailure(TIMEOUT, True).summary == "no answer in time"
    assert SlackFailure(UNREACHABLE, True).summary == "no connection"
    assert SlackFailure("missing_scope", False).summary == "missing_scope"


async def test_a_call_slower_than_its_limit_is_a_passing_failure() -> None:
    with pytest.raises(SlackCallError) as failed:
        await call_slack("chat.postMessage", asyncio.sleep(5), timeout=0.05)
    assert failed.value.failure == SlackFailure(TIMEOUT, True)
    assert failed.value.method == "chat.postMessage"


@pytest.mark.parametrize("fault", ODD_ANSWERS)
async def test_every_odd_answer_reaches_the_caller_as_a_passing_failure(
    slack: SlackStandIn, session: aiohttp.ClientSession, fault: Fault
) -> None:
    slack.inject(with_target(fault, "chat.postMessage"))
    web_client = client(slack.api_url, session)

    with pytest.raises(SlackCallError) as failed:
        await call_slack(
            "chat.postMessage", web_client.chat_postMessage(channel="COPS1", text="hi"), timeout=5
        )

    assert failed.value.failure.passing


@pytest.fixture
async def plain_text_server() -> AsyncIterator[str]:
    """Answers every Web API call with a text/plain body, which slack_sdk keeps as a ``str``."""

    async def answer(request: web.Request) -> web.Response:
        status = int(request.query.get("status", "200"))
        return web.Response(status=status, text="upstream connect error", content_type="text/plain")

    app = web.Application()
    app.router.add_route("*", "/api/{method}", answer)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("/api/"))
    await server.close()


async def test_a_plain_text_body_is_a_passing_failure_not_a_crash(
    plain_text_server: str, session: aiohttp.ClientSession
) -> None:
    web_client = client(plain_text_server, session)
    for status in ("200", "502"):
        with pytest.raises(SlackCallError) as failed:
            # slack_sdk itself fails on these (its validate() calls .get on a str).
            await call_slack(
                GROUPS, web_client.usergroups_users_list(usergroup="S1", status=status), timeout=5
            )
        assert failed.value.failure.passing and failed.value.failure.reason == UNREADABLE


async def test_a_plain_text_body_leaves_the_notifier_and_directory_standing(
    plain_text_server: str, session: aiohttp.ClientSession
) -> None:
    web_client = client(plain_text_server, session, retries=True)
    notifier = SlackNotifier(web_client, session, web_client.retry_handlers)
    assert await notifier.announce("COPS1", BackupStarted(REQUEST)) is None
    with pytest.raises(GroupLookupError) as failed:
        await SlackGroupDirectory(web_client).members(frozenset({"SSRE1"}))
    assert failed.value.passing


# --- the user-group directory --------------------------------------------------------------------------


async def test_an_ok_answer_without_a_list_of_users_is_a_passing_failure(
    session: aiohttp.ClientSession,
) -> None:
    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "users": "UALICE1"})

    app = web.Application()
    app.router.add_route("*", "/api/{method}", answer)
    async with TestServer(app, host="127.0.0.1") as server:
        groups = SlackGroupDirectory(client(str(server.make_url("/api/")), session))
        with pytest.raises(GroupLookupError, match="an unreadable answer") as failed:
            await groups.members(frozenset({"SSRE1"}))
    assert failed.value.passing


async def test_concurrent_callers_share_one_look_up_per_group(
    slack: SlackStandIn, session: aiohttp.ClientSession
) -> None:
    slack.inject(Fault(Answer.NORMAL, target=GROUPS, delay=0.2, times=10))
    groups = SlackGroupDirectory(client(slack.api_url, session))
    wanted = frozenset({"SSRE1", "SLEADS1"})

    answers = await asyncio.gather(*(groups.members(wanted) for _ in range(5)))

    assert all(a == {"SSRE1": {"UALICE1"}, "SLEADS1": {"ULEAD1"}} for a in answers)
    assert sorted(str(c.params["usergroup"]) for c in slack.calls(GROUPS)) == ["SLEADS1", "SSRE1"]


async def test_a_caller_that_gives_up_does_not_cancel_the_look_up_of_the_others(
    slack: SlackStandIn, session: aiohttp.ClientSession
) -> None:
    slack.inject(Fault(Answer.NORMAL, target=GROUPS, delay=0.2))
    groups = SlackGroupDirectory(client(slack.api_url, session))
    impatient = asyncio.create_task(groups.members(frozenset({"SSRE1"})))
    patient = asyncio.create_task(groups.members(frozenset({"SSRE1"})))
    await slack.wait_for(GROUPS)

    impatient.cancel()

    assert await patient == {"SSRE1": {"UALICE1"}}
    assert len(slack.calls(GROUPS)) == 1


async def test_groups_are_cached_each_on_its_own(slack: SlackStandIn, session: aiohttp.ClientSession) -> None:
    clock = FakeClock()
    groups = SlackGroupDirectory(client(slack.api_url, session), clock)
    await groups.members(frozenset({"SSRE1"}))
    clock.now += MEMBERS_TTL / 2

    await groups.members(frozenset({"SSRE1", "SLEADS1"}))
    assert [c.params["usergroup"] for c in slack.calls(GROUPS)] == ["SSRE1", "SLEADS1"]

    clock.now += MEMBERS_TTL / 2
    await groups.members(frozenset({"SSRE1", "SLEADS1"}))
    assert [c.params["usergroup"] for c in slack.calls(GROUPS)] == ["SSRE1", "SLEADS1", "SSRE1"]


async def test_a_refusal_for_one_group_does_not_stop_look_ups_of_the_others(
    slack: SlackStandIn, session: aiohttp.ClientSession
) -> None:
    groups = SlackGroupDirectory(client(slack.api_url, session), FakeClock())
    slack.fail(GROUPS, "missing_scope")
    with pytest.raises(GroupLookupError, match="missing_scope"):
        await groups.members(frozenset({"SSRE1"}))

    assert await groups.members(frozenset({"SLEADS1"})) == {"SLEADS1": {"ULEAD1"}}
    with pytest.raises(GroupLookupError, match="missing_scope"):
        await groups.members(frozenset({"SSRE1", "SLEADS1"}))
    assert len(slack.calls(GROUPS)) == 2, "the refusal of SSRE1 is remembered, SLEADS1 is cached"


@pytest.mark.parametrize("fault", ODD_ANSWERS)
async def test_last_known_members_stand_in_through_a_passing_failure(
    slack: SlackStandIn, session: aiohttp.ClientSession, fault: Fault, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    groups = SlackGroupDirectory(client(slack.api_url, session), clock)
    await groups.members(frozenset({"SSRE1"}))
    clock.now += MEMBERS_TTL
    slack.inject(with_target(fault, GROUPS))

    assert await groups.members(frozenset({"SSRE1"})) == {"SSRE1": {"UALICE1"}}
    assert "last known members" in caplog.text


@pytest.mark.parametrize("fault", ODD_ANSWERS)
async def test_a_passing_failure_with_nothing_known_says_so(
    slack: SlackStandIn, session: aiohttp.ClientSession, fault: Fault
) -> None:
    groups = SlackGroupDirectory(client(slack.api_url, session))
    slack.inject(with_target(fault, GROUPS))

    with pytest.raises(GroupLookupError) as failed:
        await groups.members(frozenset({"SSRE1"}))

    assert failed.value.passing
    slack.server.faults.clear()
    assert await groups.members(frozenset({"SSRE1"})) == {"SSRE1": {"UALICE1"}}, "asked again at once"


async def test_members_known_too_long_ago_do_not_stand_in(
    slack: SlackStandIn, session: aiohttp.ClientSession
) -> None:
    clock = FakeClock()
    groups = SlackGroupDirectory(client(slack.api_url, session), clock)
    await groups.members(frozenset({"SSRE1"}))
    clock.now += STALE_LIMIT + 1
    slack.inject(Fault(Answer.HTML, target=GROUPS))

    with pytest.raises(GroupLookupError) as failed:
        await groups.members(frozenset({"SSRE1"}))
    assert failed.value.passing and "HTTP 502" in failed.value.reason


async def test_a_refusal_drops_what_was_known(slack: SlackStandIn, session: aiohttp.ClientSession) -> None:
    clock = FakeClock()
    groups = SlackGroupDirectory(client(slack.api_url, session), clock)
    await groups.members(frozenset({"SSRE1"}))
    clock.now += MEMBERS_TTL
    slack.fail(GROUPS, "missing_scope")

    with pytest.raises(GroupLookupError, match="missing_scope") as failed:
        await groups.members(frozenset({"SSRE1"}))
    assert not failed.value.passing


async def test_a_definite_failure_wins_over_a_passing_one(
    slack: SlackStandIn, session: aiohttp.ClientSession
) -> None:
    groups = SlackGroupDirectory(client(slack.api_url, session))
    slack.inject(Fault(Answer.HTML, target=GROUPS))
    slack.fail(GROUPS, "plan_upgrade_required")

    with pytest.raises(GroupLookupError, match="plan_upgrade_required"):
        await groups.members(frozenset({"SSRE1", "SLEADS1"}))


async def test_after_a_rate_limit_slack_is_not_asked_before_retry_after(
    slack: SlackStandIn, session: aiohttp.ClientSession
) -> None:
    clock = FakeClock()
    groups = SlackGroupDirectory(client(slack.api_url, session), clock)
    slack.fail(GROUPS, "ratelimited", retry_after=30)

    for _ in range(2):
        with pytest.raises(GroupLookupError, match="ratelimited") as failed:
            await groups.members(frozenset({"SSRE1"}))
        assert failed.value.passing
    assert len(slack.calls(GROUPS)) == 1

    clock.now += 30
    assert await groups.members(frozenset({"SSRE1"})) == {"SSRE1": {"UALICE1"}}


async def test_a_slow_look_up_is_a_passing_failure(
    slack: SlackStandIn, session: aiohttp.ClientSession
) -> None:
    slack.inject(Fault(Answer.NORMAL, target=GROUPS, delay=3))
    groups = SlackGroupDirectory(client(slack.api_url, session, timeout=1))

    with pytest.raises(GroupLookupError, match="no answer in time") as failed:
        await groups.members(frozenset({"SSRE1"}))
    assert failed.value.passing


# --- the notifier ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ODD_ANSWERS)
async def test_a_notice_slack_answers_oddly_is_not_delivered(
    slack: SlackStandIn, session: aiohttp.ClientSession, fault: Fault
) -> None:
    errors: list[tuple[str, str]] = []
    notifier = SlackNotifier(
        client(slack.api_url, session), session, [], on_error=lambda m, e: errors.append((m, e))
    )
    slack.inject(with_target(fault, "chat.postMessage"))

    assert await notifier.announce("COPS1", BackupStarted(REQUEST)) is None
    assert [method for method, _ in errors] == ["chat.postMessage"]


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(Fault(Answer.HTML, target="response_url", status=504, times=5), id="html-504"),
        pytest.param(Fault(Answer.EMPTY, target="response_url", status=500, times=5), id="empty-500"),
        pytest.param(Fault(Answer.NOTHING, target="response_url", times=5), id="nothing"),
        pytest.param(Fault(Answer.ERROR, target="response_url", status=404, error="expired_url"), id="error"),
    ],
)
async def test_a_reply_slack_answers_oddly_is_not_taken(
    slack: SlackStandIn, session: aiohttp.ClientSession, fault: Fault
) -> None:
    notifier = SlackNotifier(client(slack.api_url, session), session, [])
    response_url = slack.issue_response_url(channel_id="COPS1", user_id="UALICE1")
    slack.inject(fault)

    assert not await notifier.reply(response_url, Usage("hello"))


async def test_a_slow_response_url_is_given_up_in_time(
    slack: SlackStandIn, session: aiohttp.ClientSession
) -> None:
    notifier = SlackNotifier(client(slack.api_url, session, timeout=1), session, [])
    response_url = slack.issue_response_url(channel_id="COPS1", user_id="UALICE1")
    slack.inject(Fault(Answer.NORMAL, target="response_url", delay=5))

    async with asyncio.timeout(3):
        assert not await notifier.reply(response_url, Usage("hello"))


async def test_a_fallback_that_answers_oddly_is_not_delivered(
    slack: SlackStandIn, session: aiohttp.ClientSession
) -> None:
    notifier = SlackNotifier(client(slack.api_url, session), session, [])
    response_url = slack.issue_response_url(channel_id="CPRIVATE1", user_id="UALICE1")
    slack.inject(Fault(Answer.HTML, target="response_url", status=502))

    assert (
        await notifier.announce("CPRIVATE1", BackupStarted(REQUEST), fallback_response_url=response_url)
        is None
    )
