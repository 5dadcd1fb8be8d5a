"""End-to-end harness: the real bot, the DCS emulator and the Slack stand-in, each a real HTTP server on
127.0.0.1 with an ephemeral port. Tests talk to the bot only as Slack would: signed HTTP requests."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.typedefs import Handler

from bot.bootstrap import BOT, Bot, create_app
from bot.config import Settings, load_settings
from bot.core.flow.notices import NOTICE_BUDGET
from bot.core.ports import EventDeliveries
from bot.core.rules.backup_request import BackupRequest, RequestState, new_request_id
from bot.core.rules.instances import BackupFormat
from bot.logs import configure_logging
from bot.policy_file import PolicyHolder
from bot.standins.dcs.control import DcsEmulator, EmulatedInstance
from bot.standins.slack.delivery import Inbound, PayloadKind
from bot.standins.slack.payloads import AppContext, Person, Place, slash_command_form
from bot.standins.slack.standin import CommandResult, SlackStandIn
from bot.standins.slack.timeline import Content, Message
from bot.store.database import open_database
from bot.store.requests import SqlRequestStore
from tests.factories import confirmed_request

SIGNING_SECRET = "e2e-signing-secret-0123456789"
BOT_TOKEN = "xoxb-e2e-bot-token-0123456789"
ACCESS_KEY = "E2EACCESSKEY"
SECRET_KEY = "e2e-secret-key-0123456789"
PROJECT_ID = "0123456789abcdef0123456789abcdef"
SECRETS = (SIGNING_SECRET, BOT_TOKEN, SECRET_KEY)

ALICE, BOB, CAROL, VIEWER, ADMIN, LEAD = "UALICE1", "UBOB1", "UCAROL1", "UVIEW1", "UADMIN1", "ULEAD1"
OPS, RANDOM, PRIVATE, ALERTS = "COPS1", "CRANDOM1", "GPRIVATE1", "CALERTS1"

DEFAULT_POLICY = f"""
admins = ["{ADMIN}"]

[[rules]]
name = "sre-prod"
users = ["{ALICE}"]
groups = ["SSRE1"]
channels = ["{OPS}", "{PRIVATE}"]
instances = ["redis-*", "cache-*"]
actions = ["backup", "list", "status"]

[[rules]]
name = "viewers"
users = ["{VIEWER}"]
instances = ["*"]
actions = ["list"]

[[rules]]
name = "staging-four-eyes"
users = ["{BOB}"]
instances = ["redis-staging"]
actions = ["backup", "status"]
approval = "peer"
approvers = ["{LEAD}", "SLEADS1"]
"""


class DcsGate:
    """Holds every request to the DCS emulator at the door while closed (it starts closed), noting each
    one that arrives as ``"METHOD /path"``; with ``only``, just the requests whose ``"METHOD /path"``
    contains it (``DcsGate(only="POST ")`` holds backup creations and lets every read through).

    The emulator logs a call only once it has answered, so while the gate holds a call it is missing from
    ``dcs.calls`` and present in ``arrived``. A held call the bot gave up on is still carried out once the
    gate opens, as a backend that works on after its gateway timed out.
    """

    def __init__(self, only: str | None = None) -> None:
        self.arrived: list[str] = []
        self._only = only
        self._held: set[asyncio.Future[web.StreamResponse]] = set()
        self._opened = asyncio.Event()
        self._changed = asyncio.Condition()

    def open(self) -> None:
        self._opened.set()

    def close(self) -> None:
        self._opened.clear()

    async def held(self, fragment: str, timeout: float = 5.0) -> None:
        """Returns once a request whose ``"METHOD /path"`` contains ``fragment`` has arrived."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: any(fragment in seen for seen in self.arrived))

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        seen = f"{request.method} {request.path}"
        async with self._changed:
            self.arrived.append(seen)
            self._changed.notify_all()
        if self._only is not None and self._only not in seen:
            return await handler(request)
        # Read (and kept) first, and shielded: a client that gives up and closes its connection does not
        # stop the call, as a backend that works on after its gateway timed out.
        await request.read()
        carried_out = asyncio.ensure_future(self._when_open(request, handler))
        self._held.add(carried_out)
        carried_out.add_done_callback(self._held.discard)
        return await asyncio.shield(carried_out)

    async def _when_open(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        await self._opened.wait()
        return await handler(request)


def is_looking_up(message: Message) -> bool:
    """Whether ``message`` is still a command's "Looking up …" ack, before its answer replaced it."""
    return message.source == "ack" and message.text.startswith("Looking up ")


def earlier_versions(message: Message) -> list[Content]:
    """The versions ``message`` had before its current one, leaving out the "Looking up …" ack that a
    command's answer replaces: a card's history starts when the card arrived."""
    return [c for c in message.history if not c.text.startswith("Looking up ")]


@dataclass
class StandIns:
    """The Slack stand-in and the DCS emulator, each served on 127.0.0.1, with no bot yet."""

    slack: SlackStandIn
    dcs: DcsEmulator
    dcs_url: str
    prod: EmulatedInstance
    staging: EmulatedInstance
    single: EmulatedInstance
    gate: DcsGate | None = None


@dataclass(kw_only=True)
class Driver:
    """Talks to a bot (in this process or another) only as Slack would: signed HTTP requests."""

    stand_ins: StandIns
    bot_url: str
    acks: list[CommandResult] = field(default_factory=list)

    @property
    def slack(self) -> SlackStandIn:
        return self.stand_ins.slack

    @property
    def dcs(self) -> DcsEmulator:
        return self.stand_ins.dcs

    @property
    def prod(self) -> EmulatedInstance:
        return self.stand_ins.prod

    @property
    def staging(self) -> EmulatedInstance:
        return self.stand_ins.staging

    @property
    def single(self) -> EmulatedInstance:
        return self.stand_ins.single

    async def command(self, text: str, *, user: str = ALICE, channel: str = OPS) -> CommandResult:
        result = await self.slack.send_command(self.bot_url, user_id=user, text=text, channel_id=channel)
        self.acks.append(result)
        return result

    async def reply_to(self, user: str, count: int = 1, timeout: float = 5.0) -> Message:
        """The ``count``-th ephemeral message ``user`` sees (the ack counts when it had text), once it is
        more than the "Looking up …" ack that the answer replaces."""

        def arrived() -> bool:
            seen = self.slack.ephemeral_for(user)
            return len(seen) >= count and not is_looking_up(seen[count - 1])

        await self.slack.wait_until(arrived, timeout=timeout, what=f"{count} ephemeral(s)")
        return self.slack.ephemeral_for(user)[count - 1]

    async def card(self, text: str, *, user: str = ALICE, channel: str = OPS) -> Message:
        before = len(self.slack.ephemeral_for(user))
        result = await self.command(text, user=user, channel=channel)
        assert result.status == 200, result.body
        message = await self.reply_to(user, before + 1)
        assert self.slack.buttons(message), f"expected a confirmation card, got: {message.shown}"
        return message

    async def click(self, message: Message, action_id: str, *, user: str = ALICE) -> int:
        return await self.slack.click(self.bot_url, user_id=user, message=message, action_id=action_id)

    async def channel_message(self, channel: str = OPS, count: int = 1, timeout: float = 5.0) -> Message:
        await self.slack.wait_until(
            lambda: len(self.slack.channel_messages(channel)) >= count,
            timeout=timeout,
            what="channel message",
        )
        return self.slack.channel_messages(channel)[count - 1]

    async def thread_replies(
        self, ts: str, count: int = 1, *, channel: str = OPS, timeout: float = 5.0
    ) -> list[Message]:
        """The replies in the thread under ``ts``, once there are at least ``count``."""
        await self.slack.wait_until(
            lambda: len(self.slack.thread(channel, ts)) >= count,
            timeout=timeout,
            what=f"{count} thread repl(ies)",
        )
        return self.slack.thread(channel, ts)

    def backups_created(self) -> int:
        return len(self.dcs.calls_to("create_backup"))

    def polls(self, instance: EmulatedInstance) -> int:
        """How many ListBackupRecords calls for ``instance`` the emulator has answered."""
        return len(self.dcs.calls_to("list_backups", instance_id=instance.instance_id))

    async def more_polls(self, instance: EmulatedInstance, count: int = 3, timeout: float = 5.0) -> None:
        """Returns once the emulator has answered ``count`` more list calls for ``instance`` than now. The
        tracker lists each instance once per cycle and acts on a page before the next cycle begins, so by
        then it has acted on at least ``count - 1`` fresh pages."""
        wanted = self.polls(instance) + count
        await self.dcs.wait_for_calls(lambda: self.polls(instance) >= wanted, timeout=timeout)


@dataclass(kw_only=True)
class World(Driver):
    """A bot running in this process against the stand-ins."""

    app: web.Application
    log: io.StringIO
    server: TestServer

    @property
    def bot(self) -> Bot:
        return self.app[BOT]

    async def stop(self) -> None:
        """Shuts the bot down as a clean exit would; its stand-ins stay up for a bot started after it."""
        await self.server.close()

    async def requests(self) -> list[BackupRequest]:
        """Every backup request the bot's database holds, in any state."""
        return await self.bot.requests.in_states(*RequestState)

    def raw_command(self, text: str, *, user: str = ALICE, channel: str = OPS) -> str:
        """The form body Slack POSTs for ``/dcs-backup text``, with ``text`` exactly as given (not escaped),
        for sending with hand-made headers."""
        form = slash_command_form(
            AppContext(
                team_id="T0DEMO", team_domain="demo", api_app_id="A0DCSBACKUP", verification_token="x"
            ),
            user=Person(id=user, name=user.lower()),
            channel=Place(id=channel, name=channel.lower()),
            command="/dcs-backup",
            text=text,
            response_url=self.slack.issue_response_url(channel_id=channel, user_id=user),
            trigger_id="1.2.3",
        )
        return Inbound(PayloadKind.SLASH_COMMANDS, form).http_body()

    def sent_by_bot(self) -> str:
        """Everything the bot sent towards Slack, raw: Web API parameters, response_url bodies and the acks
        of commands sent through :meth:`command`."""
        parts = [json.dumps(call.params, ensure_ascii=False) for call in self.slack.calls()]
        parts += [post.raw for post in self.slack.response_posts()]
        parts += [ack.body for ack in self.acks]
        return "\n".join(parts)


def bot_environment(
    tmp_path: Path, stand_ins: StandIns, policy_text: str, port: int, **overrides: str
) -> dict[str, str]:
    """The settings of :func:`bot_settings` as the environment of a ``dcs-bot serve`` process."""
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(policy_text)
    values = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": stand_ins.slack.api_url,
        "DCS_ENDPOINT": stand_ins.dcs_url,
        "DCS_PROJECT_ID": PROJECT_ID,
        "DCS_ACCESS_KEY": ACCESS_KEY,
        "DCS_SECRET_KEY": SECRET_KEY,
        "DCS_TIMEOUT": "5",
        "BOT_POLICY": str(policy_file),
        "BOT_DATABASE": str(tmp_path / "bot.sqlite3"),
        "BOT_POLL_INTERVAL": "0.05",
        # A process killed in a test holds the lease this long: the next one takes over soon after.
        "BOT_LEASE_TTL": "1",
        "PORT": str(port),
    }
    return values | overrides


def bot_request(
    instance: EmulatedInstance,
    *,
    state: RequestState,
    remark: str,
    backup_id: str | None = None,
    channel: str = OPS,
    requester: str = ALICE,
    message_ts: str | None = None,
) -> BackupRequest:
    """A request as the bot stores it once ``requester`` has confirmed it (just now)."""
    return confirmed_request(
        request_id=new_request_id(),
        instance=instance,
        now=datetime.now(UTC),
        requester=requester,
        requester_name=requester.lower(),
        channel_id=channel,
        backup_format=BackupFormat.RDB,
        remark=remark,
        state=state,
        backup_id=backup_id,
        message_ts=message_ts,
    )


async def seed_requests(database: Path, *requests: BackupRequest) -> None:
    """Writes ``requests`` into the bot's database before a bot starts, as an earlier process left them."""
    connection = await open_database(database)
    try:
        store = SqlRequestStore(connection)
        for request in requests:
            await store.add(request)
    finally:
        await connection.close()


WorldFactory = Callable[..., Awaitable[World]]


def bot_settings(
    tmp_path: Path, slack: SlackStandIn, dcs_url: str, policy_text: str, **overrides: Any
) -> Settings:
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(policy_text)
    values: dict[str, Any] = {
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": slack.api_url,
        "dcs_endpoint": dcs_url,
        "dcs_project_id": PROJECT_ID,
        "dcs_access_key": ACCESS_KEY,
        "dcs_secret_key": SECRET_KEY,
        "dcs_timeout": 5,
        "bot_policy": policy_file,
        "bot_database": tmp_path / "bot.sqlite3",
        "bot_poll_interval": 0.05,
        "bot_watch_interval": 0.05,
    }
    return load_settings(None, **(values | overrides))


StandInsFactory = Callable[..., Awaitable[StandIns]]


def workspace(app_token: str | None = None) -> SlackStandIn:
    """The Slack stand-in with the test workspace: channels, people, user groups; with ``app_token`` it
    also speaks Socket Mode."""
    slack = SlackStandIn(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN, app_token=app_token)
    for channel, name in ((OPS, "ops"), (RANDOM, "random"), (ALERTS, "alerts")):
        slack.add_channel(channel, name)
    slack.add_channel(PRIVATE, "private-ops", bot_member=False)
    for user_id, name in ((ALICE, "alice"), (BOB, "bob"), (CAROL, "carol"), (LEAD, "lead")):
        slack.set_user(user_id, name)
    slack.set_usergroup("SSRE1", [CAROL])
    slack.set_usergroup("SLEADS1", [])
    return slack


@pytest.fixture
async def stand_ins_factory() -> AsyncIterator[StandInsFactory]:
    """Starts Slack and DCS stand-ins; a test may start a bot against them itself, or several in turn."""
    servers: list[TestServer] = []
    started: list[StandIns] = []

    async def serve(app: web.Application) -> TestServer:
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return server

    async def start(
        *, dcs_gate: DcsGate | None = None, dcs_clock: Callable[[], float] = time.time
    ) -> StandIns:
        """``dcs_clock`` (e.g. a :class:`ManualClock`) drives backup progress in the emulator."""
        slack = workspace()
        slack_server = await serve(slack.app())
        slack.bind(str(slack_server.make_url("")).rstrip("/"))

        dcs = DcsEmulator(
            project_id=PROJECT_ID,
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            waiting_seconds=0.05,
            backuping_seconds=0.1,
            clock=dcs_clock,
        )
        prod = dcs.add_instance("redis-prod", cache_mode="ha")
        staging = dcs.add_instance("redis-staging", cache_mode="cluster")
        single = dcs.add_instance("cache-single", cache_mode="single")
        dcs_app = dcs.app()
        if dcs_gate is not None:
            dcs_app.middlewares.insert(0, dcs_gate.middleware)
        dcs_server = await serve(dcs_app)
        stand_ins = StandIns(
            slack=slack,
            dcs=dcs,
            dcs_url=str(dcs_server.make_url("")).rstrip("/"),
            prod=prod,
            staging=staging,
            single=single,
            gate=dcs_gate,
        )
        started.append(stand_ins)
        return stand_ins

    yield start
    _open_gates(started)
    for server in reversed(servers):
        await server.close()


def _open_gates(stand_ins: Iterable[StandIns]) -> None:
    # A test that fails with its gate closed must not leave a bot's shutdown waiting on DCS.
    for each in stand_ins:
        if each.gate is not None:
            each.gate.open()


@pytest.fixture
async def stand_ins(stand_ins_factory: StandInsFactory) -> StandIns:
    return await stand_ins_factory()


@pytest.fixture
async def world_factory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stand_ins_factory: StandInsFactory
) -> AsyncIterator[WorldFactory]:
    for name in ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    worlds: list[World] = []
    used: list[StandIns] = []

    async def start(
        policy: str = DEFAULT_POLICY,
        *,
        dcs_gate: DcsGate | None = None,
        stand_ins: StandIns | None = None,
        follow_for: timedelta | None = None,
        notice_budget: timedelta | None = None,
        event_deliveries: EventDeliveries | None = None,
        home_refresh_interval: float | None = None,
        **overrides: Any,
    ) -> World:
        """A bot in this process, on new stand-ins or on given ones (from :func:`stand_ins_factory`, or
        those of a world stopped before: that is a restart on the same database). ``follow_for``,
        ``notice_budget``, ``event_deliveries`` and ``home_refresh_interval`` go to ``create_app``; other
        keywords are settings."""
        if stand_ins is None:
            stand_ins = await stand_ins_factory(dcs_gate=dcs_gate)
        elif dcs_gate is not None:
            raise ValueError("dcs_gate belongs to new stand-ins; give it to stand_ins_factory instead")
        used.append(stand_ins)
        log = io.StringIO()
        configure_logging("text", SECRETS, stream=log, level=logging.DEBUG)
        settings = bot_settings(
            Path(overrides.pop("tmp_path", tmp_path)),
            stand_ins.slack,
            stand_ins.dcs_url,
            policy,
            **overrides,
        )
        policy_holder = PolicyHolder(settings.bot_policy)
        app = create_app(
            settings,
            policy_holder,
            follow_for=follow_for or timedelta(hours=2),
            notice_budget=notice_budget or NOTICE_BUDGET,
            # The tests poll every 50 ms: a budget that never holds them up.
            background_calls_per_second=10_000,
            event_deliveries=event_deliveries,
            # Short, so that a test waits little for a Home tab published again.
            home_refresh_interval=home_refresh_interval or 0.05,
        )
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        world = World(
            stand_ins=stand_ins,
            bot_url=str(server.make_url("/slack/events")),
            app=app,
            log=log,
            server=server,
        )
        worlds.append(world)
        return world

    yield start
    _open_gates(used)
    for world in reversed(worlds):
        await world.stop()
    logging.getLogger().handlers.clear()


@pytest.fixture
async def world(world_factory: WorldFactory) -> World:
    return await world_factory()
