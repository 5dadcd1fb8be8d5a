"""The app factory: the one place that knows every part and wires them together.

Resources open in order inside one ``cleanup_ctx`` and close in reverse. On shutdown the bot first stops
taking work (Socket Mode disconnects; HTTP stops listening before cleanup runs), then lets the supervisor
finish in-flight work — a DCS call and the post of its result — and only then closes what that work uses.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import aiohttp
import aiosqlite
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import SystemClock
from bot.config import Settings
from bot.core.flow.context import ServiceOptions
from bot.core.flow.service import BackupService
from bot.core.flow.tracker import Tracker, TrackerOptions
from bot.core.ports import Clock
from bot.core.rules.backup_request import RequestState
from bot.dcs.auth import AkSkAuth, DcsAuth, TokenAuth
from bot.dcs.client import DcsClient
from bot.metrics import MeteredAuditLog, Metrics, RateLimitCounter
from bot.operations import register_operations
from bot.operations.observed import OBSERVED, Observed
from bot.policy_file import PolicyHolder
from bot.slack.app import bolt_app, handle_events, retry_handlers
from bot.slack.groups import SlackGroupDirectory
from bot.slack.listeners.runner import Runner
from bot.slack.notifier import SlackNotifier
from bot.slack.socket_mode import SOCKET_DOWN_GRACE, SOCKET_PING_INTERVAL, SocketState, socket_mode
from bot.store.audit import SqliteAuditLog
from bot.store.database import open_database
from bot.store.requests import SqliteRequestStore
from bot.store.watch import SqliteWatchStore
from bot.supervisor import Supervisor

# Time granted to in-flight work beyond one DCS call, to post its result before shutdown.
_SHUTDOWN_GRACE = 5.0


@dataclass
class Bot:
    """Everything a running bot is made of; tests reach in here."""

    settings: Settings
    policy: PolicyHolder
    database: aiosqlite.Connection
    requests: SqliteRequestStore
    audit: SqliteAuditLog
    dcs_auth: DcsAuth
    slack: AsyncWebClient
    service: BackupService
    tracker: Tracker
    supervisor: Supervisor
    bolt: AsyncApp
    metrics: Metrics
    socket: SocketState


BOT = web.AppKey("bot", Bot)


def dcs_auth(settings: Settings, session: aiohttp.ClientSession) -> DcsAuth:
    if settings.dcs_access_key is not None and settings.dcs_secret_key is not None:
        return AkSkAuth(settings.dcs_access_key, settings.dcs_secret_key, settings.dcs_project_id)
    assert settings.dcs_iam_endpoint is not None
    assert settings.dcs_username is not None
    assert settings.dcs_password is not None
    assert settings.dcs_domain is not None
    return TokenAuth(
        session,
        iam_endpoint=settings.dcs_iam_endpoint,
        username=settings.dcs_username,
        password=settings.dcs_password,
        domain=settings.dcs_domain,
        project_id=settings.dcs_project_id,
        timeout=settings.dcs_timeout,
    )


def create_app(
    settings: Settings,
    policy: PolicyHolder,
    *,
    clock: Clock | None = None,
    follow_for: timedelta = timedelta(hours=2),
    socket_down_grace: timedelta = SOCKET_DOWN_GRACE,
    socket_ping_interval: float = SOCKET_PING_INTERVAL,
) -> web.Application:
    """``follow_for`` bounds how long a backup is followed before the bot says it stopped following.
    ``socket_down_grace`` is how long Socket Mode may be reconnecting before /healthz reports it;
    ``socket_ping_interval`` paces slack_sdk's pings and reconnection attempts."""
    app = web.Application()

    async def resources(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            database = await open_database(settings.bot_database)
            try:
                bot = _assemble(
                    settings,
                    policy,
                    session,
                    database,
                    clock or SystemClock(),
                    follow_for,
                    socket_down_grace=socket_down_grace,
                    socket_ping_interval=socket_ping_interval,
                )
                app[BOT] = bot
                app[OBSERVED] = _observed(bot)
                try:
                    async with _background_work(bot), _socket_mode(bot):
                        yield
                finally:
                    # Audit rows are group-committed: the last ones are written before the database closes.
                    await bot.audit.flush()
            finally:
                await database.close()

    app.cleanup_ctx.append(resources)
    if not settings.socket_mode:
        app.router.add_post("/slack/events", _events)
    register_operations(app)
    return app


@contextlib.asynccontextmanager
async def _background_work(bot: Bot) -> AsyncIterator[None]:
    stop = asyncio.Event()
    # Taken before the bot serves anything, so only requests of a previous process are settled.
    interrupted = await bot.requests.in_states(RequestState.SUBMITTING)
    if interrupted:
        work = bot.service.settle_interrupted(interrupted, bot.settings.bot_poll_interval, stop)
        bot.supervisor.spawn(work, name="settle interrupted requests")
    bot.supervisor.spawn(bot.tracker.run(stop), name="tracker")
    try:
        yield
    finally:
        stop.set()
        await bot.supervisor.drain(bot.settings.dcs_timeout + _SHUTDOWN_GRACE)


def _socket_mode(bot: Bot) -> contextlib.AbstractAsyncContextManager[None]:
    token = bot.settings.slack_app_token
    return socket_mode(bot.bolt, bot.slack, token.get_secret_value() if token else None, bot.socket)


def _assemble(
    settings: Settings,
    policy: PolicyHolder,
    session: aiohttp.ClientSession,
    database: aiosqlite.Connection,
    clock: Clock,
    follow_for: timedelta,
    *,
    socket_down_grace: timedelta,
    socket_ping_interval: float,
) -> Bot:
    metrics = Metrics()
    requests = SqliteRequestStore(database)
    stored_audit = SqliteAuditLog(database, clock.now)
    audit = MeteredAuditLog(stored_audit, metrics)
    auth = dcs_auth(settings, session)
    dcs = DcsClient(
        session,
        endpoint=settings.dcs_endpoint,
        project_id=settings.dcs_project_id,
        auth=auth,
        timeout=settings.dcs_timeout,
        observer=metrics.observe_dcs_call,
    )
    slack_retries = [RateLimitCounter(metrics), *retry_handlers()]
    slack = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        session=session,
        retry_handlers=slack_retries,
    )
    notifier = SlackNotifier(slack, session, slack_retries, on_error=metrics.observe_slack_error)
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
    tracker = Tracker(
        dcs=dcs,
        requests=requests,
        watch=SqliteWatchStore(database),
        notifier=notifier,
        audit=audit,
        policy=policy,
        clock=clock,
        options=TrackerOptions(interval=settings.bot_poll_interval, give_up_after=follow_for),
    )
    runner = Runner(service=service, notifier=notifier, audit=audit, supervisor=supervisor)
    signing_secret = settings.slack_signing_secret
    bolt = bolt_app(slack, signing_secret.get_secret_value() if signing_secret else None, runner)
    return Bot(
        settings=settings,
        policy=policy,
        database=database,
        requests=requests,
        audit=stored_audit,
        dcs_auth=auth,
        slack=slack,
        service=service,
        tracker=tracker,
        supervisor=supervisor,
        bolt=bolt,
        metrics=metrics,
        socket=SocketState(
            clock, metrics.observe_socket, down_grace=socket_down_grace, ping_interval=socket_ping_interval
        ),
    )


async def _events(request: web.Request) -> web.Response:
    return await handle_events(request.app[BOT].bolt, request)


def _observed(bot: Bot) -> Observed:
    return Observed(
        database=bot.database,
        policy=bot.policy,
        dcs_auth=bot.dcs_auth,
        requests=bot.requests,
        supervisor=bot.supervisor,
        metrics=bot.metrics,
        socket=bot.socket if bot.settings.socket_mode else None,
    )
