"""The app factory: the one place that knows every part and wires them together.

Resources open in order inside one ``cleanup_ctx`` and close in reverse. On shutdown the bot first stops
taking work (Socket Mode disconnects; HTTP stops listening before cleanup runs), then lets the supervisor
finish in-flight work — a DCS call and the post of its result — and only then closes what that work uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import aiohttp
import aiosqlite
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import SystemClock
from bot.config import ConfigError, Settings
from bot.core.errors import DcsError
from bot.core.ports import Clock
from bot.core.requests import BackupRequest, RequestState
from bot.core.service import BackupService
from bot.core.tracker import Tracker, TrackerOptions
from bot.core.workflow import ServiceOptions
from bot.dcs.auth import AkSkAuth, DcsAuth, TokenAuth
from bot.dcs.client import DcsClient
from bot.metrics import MeteredAuditLog, Metrics, RateLimitCounter
from bot.policy_file import PolicyHolder
from bot.slack.app import bolt_app, handle_events, retry_handlers
from bot.slack.groups import SlackGroupDirectory
from bot.slack.listeners.runner import Runner
from bot.slack.notifier import SlackNotifier
from bot.store.audit import SqliteAuditLog
from bot.store.database import open_database
from bot.store.requests import SqliteRequestStore
from bot.store.watch import SqliteWatchStore
from bot.supervisor import Supervisor

log = logging.getLogger(__name__)

# Time granted to in-flight work beyond one DCS call, to post its result before shutdown.
_SHUTDOWN_GRACE = 5.0
# How long the Socket Mode connection may be down (reconnecting) before /healthz says so.
SOCKET_DOWN_GRACE = timedelta(seconds=30)
# slack_sdk pings this often, declares a link dead after four missed pongs, and waits this long between
# attempts to reconnect; its default (10 s) is kept.
SOCKET_PING_INTERVAL = 10.0
_SOCKET_CHECK_EVERY = 1.0
_HEALTH_TIMEOUT = 5.0


@dataclass
class SocketState:
    down_grace: timedelta = SOCKET_DOWN_GRACE
    ping_interval: float = SOCKET_PING_INTERVAL
    connected: bool = False
    down_since: datetime | None = None
    # Asks slack_sdk whether the link is up; set while Socket Mode runs.
    probe: Callable[[], Awaitable[bool]] | None = None


@dataclass
class Bot:
    """Everything a running bot is made of; tests and operations endpoints reach in here."""

    settings: Settings
    policy: PolicyHolder
    database: aiosqlite.Connection
    requests: SqliteRequestStore
    audit: SqliteAuditLog
    dcs_auth: DcsAuth
    dcs: DcsClient
    slack: AsyncWebClient
    service: BackupService
    tracker: Tracker
    supervisor: Supervisor
    bolt: AsyncApp
    metrics: Metrics
    clock: Clock
    socket: SocketState = field(default_factory=SocketState)


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
                socket = SocketState(down_grace=socket_down_grace, ping_interval=socket_ping_interval)
                bot = _assemble(
                    settings, policy, session, database, clock or SystemClock(), follow_for, socket
                )
                app[BOT] = bot
                async with _background_work(bot), _socket_mode(bot):
                    yield
            finally:
                await database.close()

    app.cleanup_ctx.append(resources)
    if not settings.socket_mode:
        app.router.add_post("/slack/events", _events)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/metrics", _metrics)
    return app


@contextlib.asynccontextmanager
async def _background_work(bot: Bot) -> AsyncIterator[None]:
    stop = asyncio.Event()
    # Taken before the bot serves anything, so only requests of a previous process are settled.
    interrupted = await bot.requests.in_states(RequestState.SUBMITTING)
    if interrupted:
        work = _settle_interrupted(bot.service, interrupted, bot.settings.bot_poll_interval, stop)
        bot.supervisor.spawn(work, name="settle interrupted requests")
    bot.supervisor.spawn(bot.tracker.run(stop), name="tracker")
    try:
        yield
    finally:
        stop.set()
        await bot.supervisor.drain(bot.settings.dcs_timeout + _SHUTDOWN_GRACE)


@contextlib.asynccontextmanager
async def _socket_mode(bot: Bot) -> AsyncIterator[None]:
    token = bot.settings.slack_app_token
    if token is None:
        yield
        return
    app_token = token.get_secret_value()
    await _check_app_token(bot.slack, app_token)
    handler = AsyncSocketModeHandler(
        bot.bolt,
        app_token,
        logger=logging.getLogger("slack_sdk"),
        ping_interval=bot.socket.ping_interval,
    )
    stop = asyncio.Event()
    bot.socket.down_since = bot.clock.now()
    bot.socket.probe = handler.client.is_connected
    # slack_sdk keeps retrying until it gets through, so connecting must not hold up start-up.
    connect = handler.connect_async()  # type: ignore[no-untyped-call]
    connecting = asyncio.create_task(connect, name="socket mode connect")
    watcher = asyncio.create_task(_watch_socket(bot, stop), name="socket watcher")
    try:
        yield
    finally:
        stop.set()
        await watcher
        bot.socket.probe = None
        # No new envelopes from here on; work already taken goes on under the supervisor.
        await handler.close_async()  # type: ignore[no-untyped-call]
        if not connecting.done():
            connecting.cancel()
        await asyncio.gather(connecting, return_exceptions=True)


_REFUSED_TOKEN = frozenset(
    {"invalid_auth", "not_authed", "not_allowed_token_type", "token_revoked", "account_inactive"}
)


async def _check_app_token(slack: AsyncWebClient, app_token: str) -> None:
    """Refuses to start with an app-level token Slack rejects (slack_sdk would retry it forever)."""
    try:
        await slack.apps_connections_open(app_token=app_token)
    except SlackApiError as error:
        reason = str(error.response.get("error", "unknown_error"))
        if reason in _REFUSED_TOKEN:
            raise ConfigError(f"SLACK_APP_TOKEN: Slack refused the app-level token ({reason})") from None
        log.warning("could not check the app-level token (%s); connecting anyway", reason)
    except (aiohttp.ClientError, TimeoutError) as error:
        log.warning("could not reach Slack to check the app-level token (%s); connecting anyway", error)


async def _watch_socket(bot: Bot, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await _observe_socket(bot)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=_SOCKET_CHECK_EVERY)


async def _observe_socket(bot: Bot) -> None:
    """Brings the link state up to date; the watcher calls it, and so do the operations endpoints, so that
    they never report a state up to a watcher interval old."""
    probe = bot.socket.probe
    if probe is None:
        return
    connected = await probe()
    if connected:
        bot.socket.down_since = None
    elif bot.socket.down_since is None:
        bot.socket.down_since = bot.clock.now()
    bot.socket.connected = connected
    bot.metrics.socket_connected.set(1 if connected else 0)


async def _settle_interrupted(
    service: BackupService, requests: list[BackupRequest], retry_every: float, stop: asyncio.Event
) -> None:
    pending = requests
    while pending and not stop.is_set():
        pending = [request for request in pending if not await service.recover(request)]
        if pending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=retry_every)


def _assemble(
    settings: Settings,
    policy: PolicyHolder,
    session: aiohttp.ClientSession,
    database: aiosqlite.Connection,
    clock: Clock,
    follow_for: timedelta,
    socket: SocketState,
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
            project_id=settings.dcs_project_id,
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
        dcs=dcs,
        slack=slack,
        service=service,
        tracker=tracker,
        supervisor=supervisor,
        bolt=bolt,
        metrics=metrics,
        clock=clock,
        socket=socket,
    )


async def _events(request: web.Request) -> web.Response:
    return await handle_events(request.app[BOT].bolt, request)


async def _healthz(request: web.Request) -> web.Response:
    bot = request.app[BOT]
    checks = {
        "database": await _database_check(bot),
        "policy": f"ok ({len(bot.policy().rules)} rules, {len(bot.policy().watch)} watches)",
        "dcs_auth": await _dcs_auth_check(bot),
    }
    if bot.settings.socket_mode:
        await _observe_socket(bot)
        checks["socket_mode"] = _socket_check(bot)
    if not bot.supervisor.accepting:
        checks["shutdown"] = "stopping: taking no new work"
    healthy = all(value.startswith("ok") for value in checks.values())
    return web.json_response({"ok": healthy, "checks": checks}, status=200 if healthy else 503)


async def _database_check(bot: Bot) -> str:
    try:
        async with bot.database.execute("SELECT 1") as cursor:
            await cursor.fetchone()
    except Exception as error:  # any failure means unhealthy; its type is enough for a prober
        return f"error: {type(error).__name__}"
    return "ok"


async def _dcs_auth_check(bot: Bot) -> str:
    if not isinstance(bot.dcs_auth, TokenAuth):
        return "ok (AK/SK signing)"
    try:
        # Cached for hours; only an expired token makes this a call to IAM.
        await asyncio.wait_for(bot.dcs_auth.token(), timeout=_HEALTH_TIMEOUT)
    except (DcsError, TimeoutError) as error:
        return f"error: no IAM token ({error or 'timeout'})"
    return "ok (IAM token)"


def _socket_check(bot: Bot) -> str:
    down_since = bot.socket.down_since
    if down_since is None:
        return "ok (connected)"
    down_for = bot.clock.now() - down_since
    if down_for <= bot.socket.down_grace:
        return f"ok (reconnecting for {down_for.total_seconds():.0f} s)"
    return f"error: disconnected for {down_for.total_seconds():.0f} s"


async def _metrics(request: web.Request) -> web.Response:
    bot = request.app[BOT]
    await _observe_socket(bot)
    bot.metrics.followed.set(len(await bot.requests.in_states(RequestState.SUBMITTED)))
    return web.Response(
        body=generate_latest(bot.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )
