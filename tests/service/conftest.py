"""Fixtures for running the bot as a service: in HTTP or Socket Mode, with AK/SK or IAM token auth, and
logging JSON lines. Builds on the end-to-end harness (tests.e2e.conftest): its stand-ins, world and
settings; only Socket Mode needs a Slack stand-in of its own, since that one must hold an app token."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.bootstrap import create_app
from bot.logs import configure_logging
from bot.policy_file import PolicyHolder
from bot.standins.dcs.control import DEFAULT_DOMAIN, DEFAULT_PASSWORD, DEFAULT_USERNAME
from bot.standins.slack.delivery import Delivery
from bot.standins.slack.standin import CommandResult, SlackStandIn
from bot.standins.slack.timeline import Message
from tests.e2e import conftest as e2e
from tests.e2e.conftest import (
    ALICE,
    BOT_TOKEN,
    DEFAULT_POLICY,
    OPS,
    SECRET_KEY,
    SIGNING_SECRET,
    DcsGate,
    Driver,
    StandInsFactory,
    World,
    bot_settings,
)

# The end-to-end fixtures, made visible to tests in this directory.
stand_ins_factory = e2e.stand_ins_factory
stand_ins = e2e.stand_ins

APP_TOKEN = "xapp-1-A0DCSBACKUP-1-service-app-token-0123456789"
IAM_PASSWORD = DEFAULT_PASSWORD
#: Every secret a bot in these tests knows; none may ever show up in what it logs or sends.
SECRETS = (SIGNING_SECRET, BOT_TOKEN, SECRET_KEY, APP_TOKEN, IAM_PASSWORD)


def socket_mode_slack(app_token: str = APP_TOKEN) -> SlackStandIn:
    """A Slack stand-in with Socket Mode and the workspace of the end-to-end stand-ins."""
    return e2e.workspace(app_token)


async def serve(app: web.Application, servers: list[TestServer]) -> str:
    """Serves ``app`` on 127.0.0.1 and returns its base URL; ``servers`` collects it for closing."""
    server = TestServer(app, host="127.0.0.1")
    servers.append(server)
    await server.start_server()
    return str(server.make_url("")).rstrip("/")


@dataclass(kw_only=True)
class Remote(Driver):
    """Talks to a bot as Slack would, in either mode: ``target`` is the events URL in HTTP mode, the
    stand-in's Socket Mode delivery otherwise."""

    target: str | Delivery

    async def command(self, text: str, *, user: str = ALICE, channel: str = OPS) -> CommandResult:
        result = await self.slack.send_command(self.target, user_id=user, text=text, channel_id=channel)
        self.acks.append(result)
        return result

    async def click(self, message: Message, action_id: str, *, user: str = ALICE) -> int:
        return await self.slack.click(self.target, user_id=user, message=message, action_id=action_id)


@dataclass(kw_only=True)
class Service(Remote, World):
    """A bot in this process, in either mode, served under ``base_url``; its operations endpoints are under
    ``ops_url`` (the same, unless ``bot_ops_port`` is set)."""

    base_url: str
    ops_url: str

    async def get(self, path: str, *, base: str | None = None) -> tuple[int, str]:
        """GET ``path`` from ``base`` (default: where the operations endpoints are)."""
        url = (self.ops_url if base is None else base) + path
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status, await response.text()

    async def health(self) -> tuple[int, dict[str, Any]]:
        """/healthz: the HTTP status and the checks (``dcs`` maps the cloud's name to its check)."""
        status, text = await self.get("/healthz")
        body = json.loads(text)
        assert body["ok"] is (status == 200), body
        assert body["role"] == "leader", body
        checks: dict[str, Any] = body["checks"]
        return status, checks

    async def dcs_check(self) -> str:
        """The DCS check of /healthz for the one cloud."""
        _, checks = await self.health()
        [check] = checks["dcs"].values()
        assert isinstance(check, str)
        return check

    def log_lines(self) -> list[str]:
        return self.log.getvalue().splitlines()


ServiceFactory = Callable[..., Awaitable[Service]]


@pytest.fixture
async def service_factory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stand_ins_factory: StandInsFactory
) -> AsyncIterator[ServiceFactory]:
    """``await service_factory(socket_mode=..., iam=..., dcs_gate=..., app_options={...}, **settings)``.

    The bot logs JSON lines, with every secret of :data:`SECRETS` registered for redaction, into
    ``service.log``; ``app_options`` go to ``create_app``.
    """
    for name in ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    servers: list[TestServer] = []
    gates: list[DcsGate] = []

    async def start(
        policy: str = DEFAULT_POLICY,
        *,
        socket_mode: bool = False,
        iam: bool = False,
        dcs_gate: DcsGate | None = None,
        app_options: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> Service:
        log = io.StringIO()
        configure_logging("json", SECRETS, stream=log, level=logging.DEBUG)
        stand_ins = await stand_ins_factory(dcs_gate=dcs_gate)
        gates.extend([] if dcs_gate is None else [dcs_gate])
        if socket_mode:
            stand_ins.slack = socket_mode_slack()
            stand_ins.slack.bind(await serve(stand_ins.slack.app(), servers))
            overrides = {"slack_signing_secret": None, "slack_app_token": APP_TOKEN} | overrides
        if iam:
            overrides = {
                "dcs_access_key": None,
                "dcs_secret_key": None,
                "dcs_iam_endpoint": stand_ins.dcs_url,
                "dcs_domain": DEFAULT_DOMAIN,
                "dcs_username": DEFAULT_USERNAME,
                "dcs_password": IAM_PASSWORD,
            } | overrides
        settings = bot_settings(tmp_path, stand_ins.slack, stand_ins.dcs_url, policy, **overrides)
        app = create_app(settings, PolicyHolder(settings.bot_policy), **(app_options or {}))
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        base_url = str(server.make_url("")).rstrip("/")
        ops_port = settings.bot_ops_port
        return Service(
            stand_ins=stand_ins,
            bot_url=f"{base_url}/slack/events",
            app=app,
            log=log,
            server=server,
            target=stand_ins.slack.socket_delivery() if socket_mode else f"{base_url}/slack/events",
            base_url=base_url,
            ops_url=base_url if ops_port is None else f"http://127.0.0.1:{ops_port}",
        )

    yield start
    # The bots stop before the stand-ins (stand_ins_factory closes those), so in-flight work can finish;
    # a gate a failed test left closed would hold that up.
    for gate in gates:
        gate.open()
    for server in reversed(servers):
        await server.close()
    logging.getLogger().handlers.clear()


@pytest.fixture
async def service(service_factory: ServiceFactory) -> Service:
    return await service_factory()
