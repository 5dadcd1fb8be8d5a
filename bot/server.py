"""The app factory: the one place that knows every part and wires them together.

Resources open in order inside one ``cleanup_ctx`` and close in reverse; background work belongs to the
supervisor, which is drained before anything it might use is closed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import aiosqlite
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import SystemClock
from bot.config import Settings
from bot.core.ports import Clock, DcsApi
from bot.core.service import BackupService, ServiceOptions
from bot.dcs.auth import AkSkAuth, DcsAuth, TokenAuth
from bot.dcs.client import DcsClient
from bot.policy_file import PolicyHolder
from bot.slack.app import bolt_app, handle_events, retry_handlers, web_client
from bot.slack.groups import SlackGroupDirectory
from bot.slack.listeners.runner import Runner
from bot.slack.notifier import SlackNotifier
from bot.store.audit import SqliteAuditLog
from bot.store.database import open_database
from bot.store.requests import SqliteRequestStore
from bot.supervisor import Supervisor

log = logging.getLogger(__name__)

# Time granted to in-flight work beyond one DCS call, to post its result before shutdown.
_SHUTDOWN_GRACE = 5.0


@dataclass
class Bot:
    """Everything a running bot is made of; tests and operations endpoints reach in here."""

    settings: Settings
    policy: PolicyHolder
    database: aiosqlite.Connection
    requests: SqliteRequestStore
    audit: SqliteAuditLog
    dcs: DcsApi
    slack: AsyncWebClient
    service: BackupService
    supervisor: Supervisor
    bolt: AsyncApp


BOT = web.AppKey("bot", Bot)


def dcs_auth(settings: Settings, session: aiohttp.ClientSession) -> DcsAuth:
    if settings.dcs_access_key is not None and settings.dcs_secret_key is not None:
        return AkSkAuth(settings.dcs_access_key, settings.dcs_secret_key, settings.dcs_project_id)
    assert settings.dcs_iam_endpoint
    assert settings.dcs_username
    assert settings.dcs_password
    assert settings.dcs_domain
    return TokenAuth(
        session,
        iam_endpoint=settings.dcs_iam_endpoint,
        username=settings.dcs_username,
        password=settings.dcs_password,
        domain=settings.dcs_domain,
        project_id=settings.dcs_project_id,
        timeout=settings.dcs_timeout,
    )


def create_app(settings: Settings, policy: PolicyHolder, *, clock: Clock | None = None) -> web.Application:
    app = web.Application()

    async def resources(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            database = await open_database(settings.bot_database)
            try:
                app[BOT] = _assemble(settings, policy, session, database, clock or SystemClock())
                yield
                await app[BOT].supervisor.drain(settings.dcs_timeout + _SHUTDOWN_GRACE)
            finally:
                await database.close()

    app.cleanup_ctx.append(resources)
    if not settings.socket_mode:
        app.router.add_post("/slack/events", _events)
    app.router.add_get("/healthz", _healthz)
    return app


def _assemble(
    settings: Settings,
    policy: PolicyHolder,
    session: aiohttp.ClientSession,
    database: aiosqlite.Connection,
    clock: Clock,
) -> Bot:
    requests = SqliteRequestStore(database)
    audit = SqliteAuditLog(database, clock.now)
    dcs = DcsClient(
        session,
        endpoint=settings.dcs_endpoint,
        project_id=settings.dcs_project_id,
        auth=dcs_auth(settings, session),
        timeout=settings.dcs_timeout,
    )
    slack = web_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url, session)
    notifier = SlackNotifier(slack, session, retry_handlers())
    supervisor = Supervisor()
    service = BackupService(
        dcs=dcs,
        requests=requests,
        audit=audit,
        groups=SlackGroupDirectory(slack),
        notifier=notifier,
        policy=policy,
        clock=clock,
        options=ServiceOptions(
            confirm_ttl=settings.bot_confirm_ttl,
            approval_ttl=settings.bot_approval_ttl,
            default_format=settings.bot_default_format,
        ),
    )
    runner = Runner(service=service, notifier=notifier, audit=audit, supervisor=supervisor)
    signing_secret = settings.slack_signing_secret
    bolt = bolt_app(slack, signing_secret.get_secret_value() if signing_secret else None, runner)
    return Bot(
        settings=settings,
        policy=policy,
        database=database,
        requests=requests,
        audit=audit,
        dcs=dcs,
        slack=slack,
        service=service,
        supervisor=supervisor,
        bolt=bolt,
    )


async def _events(request: web.Request) -> web.Response:
    return await handle_events(request.app[BOT].bolt, request)


async def _healthz(request: web.Request) -> web.Response:
    bot = request.app[BOT]
    checks: dict[str, str] = {}
    try:
        async with bot.database.execute("SELECT 1") as cursor:
            await cursor.fetchone()
        checks["database"] = "ok"
    except Exception as error:  # any failure means unhealthy; the reason goes to the prober
        checks["database"] = f"error: {type(error).__name__}"
    checks["policy"] = f"ok ({len(bot.policy().rules)} rules)"
    healthy = all(value.startswith("ok") for value in checks.values())
    return web.json_response({"ok": healthy, "checks": checks}, status=200 if healthy else 503)
