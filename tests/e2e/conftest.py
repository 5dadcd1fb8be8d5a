"""End-to-end harness: the real bot, the DCS emulator and the Slack stand-in, each a real HTTP server on
127.0.0.1 with an ephemeral port. Tests talk to the bot only as Slack would: signed HTTP requests."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.typedefs import Handler

from bot.config import Settings, load_settings
from bot.core.requests import BackupRequest, RequestState
from bot.emulator.dcs import DcsEmulator, EmulatedInstance
from bot.emulator.slack import CommandResult, SlackStandIn
from bot.emulator.slack_delivery import Inbound, PayloadKind
from bot.emulator.slack_payloads import AppContext, Person, Place, slash_command_form
from bot.emulator.slack_timeline import Message
from bot.logs import configure_logging
from bot.policy_file import PolicyHolder
from bot.server import BOT, Bot, create_app

SIGNING_SECRET = "e2e-signing-secret-0123456789"
BOT_TOKEN = "xoxb-e2e-bot-token-0123456789"
ACCESS_KEY = "E2EACCESSKEY"
SECRET_KEY = "e2e-secret-key-0123456789"
PROJECT_ID = "0123456789abcdef0123456789abcdef"
SECRETS = (SIGNING_SECRET, BOT_TOKEN, SECRET_KEY)

ALICE, BOB, CAROL, VIEWER, ADMIN, LEAD = "UALICE1", "UBOB1", "UCAROL1", "UVIEW1", "UADMIN1", "ULEAD1"
OPS, RANDOM, PRIVATE = "COPS1", "CRANDOM1", "GPRIVATE1"

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
    one that arrives as ``"METHOD /path"``.

    The emulator logs a call only once it has answered, so while the gate holds a call it is missing from
    ``dcs.calls`` and present in ``arrived``.
    """

    def __init__(self) -> None:
        self.arrived: list[str] = []
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
        async with self._changed:
            self.arrived.append(f"{request.method} {request.path}")
            self._changed.notify_all()
        await self._opened.wait()
        return await handler(request)


@dataclass
class World:
    slack: SlackStandIn
    dcs: DcsEmulator
    bot_url: str
    app: web.Application
    log: io.StringIO
    prod: EmulatedInstance
    staging: EmulatedInstance
    single: EmulatedInstance
    acks: list[CommandResult] = field(default_factory=list)

    @property
    def bot(self) -> Bot:
        return self.app[BOT]

    async def command(self, text: str, *, user: str = ALICE, channel: str = OPS) -> CommandResult:
        result = await self.slack.send_command(self.bot_url, user_id=user, text=text, channel_id=channel)
        self.acks.append(result)
        return result

    async def reply_to(self, user: str, count: int = 1, timeout: float = 5.0) -> Message:
        """The ``count``-th ephemeral message ``user`` sees (the ack counts when it had text)."""
        await self.slack.wait_until(
            lambda: len(self.slack.ephemeral_for(user)) >= count,
            timeout=timeout,
            what=f"{count} ephemeral(s)",
        )
        return self.slack.ephemeral_for(user)[count - 1]

    async def card(self, text: str, *, user: str = ALICE, channel: str = OPS) -> Message:
        before = len(self.slack.ephemeral_for(user))
        result = await self.command(text, user=user, channel=channel)
        assert result.status == 200, result.body
        message = await self.reply_to(user, before + 1)
        assert self.slack.buttons(message), f"expected a confirmation card, got: {message.text}"
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

    def backups_created(self) -> int:
        return len(self.dcs.calls_to("create_backup"))

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
    }
    return load_settings(None, **(values | overrides))


@pytest.fixture
async def world_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[WorldFactory]:
    for name in ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    servers: list[TestServer] = []

    async def serve(app: web.Application) -> TestServer:
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return server

    gates: list[DcsGate] = []

    async def start(
        policy: str = DEFAULT_POLICY, *, dcs_gate: DcsGate | None = None, **overrides: Any
    ) -> World:
        log = io.StringIO()
        configure_logging("text", SECRETS, stream=log, level=logging.DEBUG)
        slack = SlackStandIn(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN)
        for channel, name in ((OPS, "ops"), (RANDOM, "random")):
            slack.add_channel(channel, name)
        slack.add_channel(PRIVATE, "private-ops", bot_member=False)
        for user_id, name in ((ALICE, "alice"), (BOB, "bob"), (CAROL, "carol"), (LEAD, "lead")):
            slack.set_user(user_id, name)
        slack.set_usergroup("SSRE1", [CAROL])
        slack.set_usergroup("SLEADS1", [])
        slack_server = await serve(slack.app())
        slack.bind(str(slack_server.make_url("")).rstrip("/"))

        dcs = DcsEmulator(
            project_id=PROJECT_ID,
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            waiting_seconds=0.05,
            backuping_seconds=0.1,
        )
        prod = dcs.add_instance("redis-prod", cache_mode="ha")
        staging = dcs.add_instance("redis-staging", cache_mode="cluster")
        single = dcs.add_instance("cache-single", cache_mode="single")
        dcs_app = dcs.app()
        if dcs_gate is not None:
            gates.append(dcs_gate)
            dcs_app.middlewares.insert(0, dcs_gate.middleware)
        dcs_server = await serve(dcs_app)

        settings = bot_settings(
            Path(overrides.pop("tmp_path", tmp_path)),
            slack,
            str(dcs_server.make_url("")).rstrip("/"),
            policy,
            **overrides,
        )
        app = create_app(settings, PolicyHolder(settings.bot_policy))
        bot_server = await serve(app)
        return World(
            slack=slack,
            dcs=dcs,
            bot_url=str(bot_server.make_url("/slack/events")),
            app=app,
            log=log,
            prod=prod,
            staging=staging,
            single=single,
        )

    yield start
    # A test that fails with its gate closed must not leave the bot's shutdown waiting on DCS.
    for gate in gates:
        gate.open()
    for server in reversed(servers):
        await server.close()
    logging.getLogger().handlers.clear()


@pytest.fixture
async def world(world_factory: WorldFactory) -> World:
    return await world_factory()
