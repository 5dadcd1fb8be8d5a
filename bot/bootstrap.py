"""The app factory: the one place that knows every part and wires them together.

Resources open in order inside one ``cleanup_ctx`` and close in reverse. On shutdown the bot first stops
taking work (Socket Mode disconnects; HTTP stops listening before cleanup runs), then lets the supervisor
finish in-flight work — a DCS call and the post of its result — and only then closes what that work uses.

The operations endpoints (§10) are served by the app itself, or, with ``BOT_OPS_PORT``, by a second
aiohttp server on that port that opens before the background work and closes after it: so ``/readyz``
says 503 while in-flight work drains, and ``/livez`` still answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Coroutine, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import SystemClock
from bot.clouds_file import AkSk, CloudSettings, clouds_of
from bot.config import Settings
from bot.core.flow.call_budget import DEFAULT_CALLS_PER_SECOND, CloudBudgets
from bot.core.flow.claims import keep_claims
from bot.core.flow.context import ServiceOptions
from bot.core.flow.home import HomeContent
from bot.core.flow.home_refresh import MIN_INTERVAL as HOME_MIN_INTERVAL
from bot.core.flow.home_refresh import HomeRefresh
from bot.core.flow.housekeeping import Housekeeping, HousekeepingOptions
from bot.core.flow.instance_cache import Estates
from bot.core.flow.leadership import FencedNotifier, Leadership
from bot.core.flow.notices import NOTICE_BUDGET
from bot.core.flow.observed_requests import ObservedRequests
from bot.core.flow.service import BackupService
from bot.core.flow.tracker import Tracker, TrackerOptions
from bot.core.ports import Claimant, Clock, CloudMap, EventDeliveries
from bot.core.rules.reconciliation import checking_window
from bot.dcs.auth import AkSkAuth, DcsAuth, TokenAuth
from bot.dcs.client import DcsClient
from bot.metrics import MeteredAuditLog, Metrics, RateLimitCounter
from bot.operations import register_operations
from bot.operations.observed import OBSERVED, DcsCalls, Lifecycle, Observed, ObservedCloud
from bot.operations.own_port import serve_on_own_port
from bot.policy_file import PolicyHolder
from bot.slack.app import bolt_app, handle_events, retry_handlers
from bot.slack.authorization import BotAuthorization
from bot.slack.groups import SlackGroupDirectory
from bot.slack.home_publisher import SlackHomePublisher
from bot.slack.listeners.runner import Runner
from bot.slack.notifier import SlackNotifier
from bot.slack.socket_mode import SOCKET_DOWN_GRACE, SOCKET_PING_INTERVAL, SocketState, socket_mode
from bot.slack.startup import check_bot_token
from bot.store.audit import SqlAuditLog
from bot.store.claims import SqlSubmissionClaims
from bot.store.database import open_database
from bot.store.engine import DATABASE_ERRORS, Database
from bot.store.event_deliveries import SqlEventDeliveries
from bot.store.home_viewers import SqlHomeViewers
from bot.store.lease import SqlLease
from bot.store.requests import SqlRequestStore
from bot.store.watch import SqlWatchStore
from bot.supervisor import Supervisor

# Time granted to in-flight work beyond one DCS call, to post its result before shutdown.
_SHUTDOWN_GRACE = 5.0

log = logging.getLogger(__name__)


@dataclass
class Bot:
    """Everything a running bot is made of; tests reach in here."""

    settings: Settings
    policy: PolicyHolder
    database: Database
    requests: SqlRequestStore
    audit: SqlAuditLog
    # Events API deliveries seen (by event id), for dropping Slack's redeliveries across replicas.
    event_deliveries: SqlEventDeliveries
    # Every configured cloud by name, in the clouds file's order: its client, and what /healthz shows of it.
    dcs_clients: dict[str, DcsClient]
    dcs_clouds: dict[str, ObservedCloud]
    # The longest timeout of one DCS call among the clouds.
    dcs_timeout: float
    slack: AsyncWebClient
    authorization: BotAuthorization
    service: BackupService
    tracker: Tracker
    housekeeping: Housekeeping
    home: HomeRefresh
    supervisor: Supervisor
    bolt: AsyncApp
    metrics: Metrics
    socket: SocketState
    lifecycle: Lifecycle
    clock: Clock
    # Several replicas (INTERFACE §9): this process's id, its claims on its submissions in flight, and
    # whether it leads the background work.
    replica: str
    claims: SqlSubmissionClaims
    leadership: Leadership


BOT = web.AppKey("bot", Bot)


def replica_id() -> str:
    """This process among the replicas: unique per process, and telling an operator where it runs."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


async def _adopt_cloudless(database: Database, cloud: str) -> None:
    """Requests from before requests recorded their cloud are the first cloud's (DCS_CLOUD_NAME's). Should
    the store refuse, they stay without one and are served by the first cloud all the same."""
    try:
        await SqlRequestStore(database).adopt_cloudless(cloud)
    except DATABASE_ERRORS as error:
        log.warning("could not record cloud %s on the requests of an earlier release: %s", cloud, error)


def resolution_bound(timeout: float) -> float:
    """How long resolving an instance in one cloud may take (two calls, each within the cloud's timeout);
    a backstop: the client's own timeout normally answers first, with its own reason."""
    return 2 * timeout + 1.0


def dcs_auth(cloud: CloudSettings, session: aiohttp.ClientSession) -> DcsAuth:
    if isinstance(cloud.auth, AkSk):
        return AkSkAuth(cloud.auth.access_key, cloud.auth.secret_key, cloud.project_id)
    return TokenAuth(
        session,
        iam_endpoint=cloud.auth.iam_endpoint,
        username=cloud.auth.username,
        password=cloud.auth.password,
        domain=cloud.auth.domain,
        project_id=cloud.project_id,
        timeout=cloud.timeout,
    )


def _dcs_client(
    cloud: CloudSettings, session: aiohttp.ClientSession, metrics: Metrics, clock: Clock
) -> tuple[DcsClient, ObservedCloud]:
    """The client of one cloud (its own endpoint, project, credentials, timeout and retries), and what
    /healthz and /metrics learn from its calls, labelled with the cloud's name."""
    calls = DcsCalls(clock)

    def observe_call(operation: str, status: int, seconds: float) -> None:
        metrics.observe_dcs_call(cloud.name, operation, status, seconds)
        calls.observe(operation, status, seconds)

    def observe_retry(operation: str, reason: str) -> None:
        metrics.observe_dcs_retry(cloud.name, operation, reason)

    auth = dcs_auth(cloud, session)
    client = DcsClient(
        session,
        endpoint=cloud.endpoint,
        project_id=cloud.project_id,
        auth=auth,
        timeout=cloud.timeout,
        observer=observe_call,
        on_retry=observe_retry,
    )
    return client, ObservedCloud(auth, calls)


def create_app(
    settings: Settings,
    policy: PolicyHolder,
    *,
    clock: Clock | None = None,
    follow_for: timedelta = timedelta(hours=2),
    notice_budget: timedelta = NOTICE_BUDGET,
    socket_down_grace: timedelta = SOCKET_DOWN_GRACE,
    socket_ping_interval: float = SOCKET_PING_INTERVAL,
    clouds: Sequence[CloudSettings] | None = None,
    background_calls_per_second: float = DEFAULT_CALLS_PER_SECOND,
    event_deliveries: EventDeliveries | None = None,
    home_refresh_interval: float = HOME_MIN_INTERVAL,
) -> web.Application:
    """``clouds`` are the clouds served (by default those of the settings: :func:`clouds_of`); this
    serves them all (each its own DCS client).
    ``follow_for`` bounds how long a backup is followed before the bot says it stopped following;
    ``notice_budget`` how long a notice Slack refuses is tried again.
    ``background_calls_per_second`` is each cloud's budget of DCS calls that all background polling of
    that cloud shares (the tracker; the user's commands never wait for it).
    ``socket_down_grace`` is how long Socket Mode may be reconnecting before /healthz reports it;
    ``socket_ping_interval`` paces slack_sdk's pings and reconnection attempts.
    ``event_deliveries`` tells a redelivered Events API event from a new one (by default the database's
    record of deliveries, shared by every replica).
    ``home_refresh_interval``: seconds between two publishes of one person's Home tab at least."""
    served = list(clouds_of(settings) if clouds is None else clouds)
    app = web.Application()

    async def resources(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            database = await open_database(settings.bot_database)
            try:
                await _adopt_cloudless(database, served[0].name)
                bot = _assemble(
                    settings,
                    served,
                    policy,
                    session,
                    database,
                    clock or SystemClock(),
                    follow_for,
                    notice_budget,
                    socket_down_grace=socket_down_grace,
                    socket_ping_interval=socket_ping_interval,
                    background_calls_per_second=background_calls_per_second,
                    event_deliveries=event_deliveries,
                    home_refresh_interval=home_refresh_interval,
                )
                app[BOT] = bot
                app[OBSERVED] = _observed(bot)
                # Before any work starts: a refused token stops start-up here (ConfigError).
                bot.authorization.learn(await check_bot_token(bot.slack))
                try:
                    async with _ops_server(bot), _background_work(bot), _socket_mode(bot):
                        yield
                finally:
                    # Audit rows are group-committed: the last ones are written before the database closes.
                    await bot.audit.flush()
            finally:
                await database.close()

    async def stopping(app: web.Application) -> None:
        if BOT in app:
            app[BOT].lifecycle.stopping = True

    app.cleanup_ctx.append(resources)
    app.on_shutdown.append(stopping)
    if not settings.socket_mode:
        app.router.add_post("/slack/events", _events)
    if settings.bot_ops_port is None:
        register_operations(app)
    return app


def _ops_server(bot: Bot) -> contextlib.AbstractAsyncContextManager[None]:
    """With ``BOT_OPS_PORT``, the operations endpoints on that port (and only there)."""
    port = bot.settings.bot_ops_port
    return contextlib.nullcontext() if port is None else serve_on_own_port(_observed(bot), port)


@contextlib.asynccontextmanager
async def _background_work(bot: Bot) -> AsyncIterator[None]:
    """Every replica keeps its claims alive and tries for the lease; the leader does the background work
    (:func:`_leader_work`). At shutdown the leader's work finishes its step and the lease is released,
    while the claims are kept alive until the last submission in flight has its answer."""
    stop = asyncio.Event()
    claims_stop = asyncio.Event()
    claims = asyncio.create_task(
        keep_claims(bot.claims, bot.settings.bot_lease_ttl / 2, claims_stop), name="claims"
    )
    try:
        # Before the bot serves anything, so that its role is known from the start.
        await bot.leadership.start()
        bot.supervisor.spawn(bot.leadership.run(stop), name="leadership")
        try:
            yield
        finally:
            stop.set()
            bot.home.stop()
            await bot.supervisor.drain(bot.dcs_timeout + _SHUTDOWN_GRACE)
    finally:
        claims_stop.set()
        await claims


def _leader_work(bot: Bot, stop: asyncio.Event) -> list[tuple[str, Coroutine[Any, Any, None]]]:
    """The background work, done by the leader only, until ``stop`` is set or the lease is lost."""
    interval = bot.settings.bot_poll_interval
    return [
        ("tracker", bot.tracker.run(stop)),
        ("housekeeping", bot.housekeeping.run(stop)),
        ("reconciliation", bot.service.settle_orphans(bot.claims, interval, stop)),
    ]


def _socket_mode(bot: Bot) -> contextlib.AbstractAsyncContextManager[None]:
    token = bot.settings.slack_app_token
    return socket_mode(bot.bolt, bot.slack, token.get_secret_value() if token else None, bot.socket)


def _assemble(
    settings: Settings,
    clouds: Sequence[CloudSettings],
    policy: PolicyHolder,
    session: aiohttp.ClientSession,
    database: Database,
    clock: Clock,
    follow_for: timedelta,
    notice_budget: timedelta,
    *,
    socket_down_grace: timedelta,
    socket_ping_interval: float,
    background_calls_per_second: float,
    event_deliveries: EventDeliveries | None,
    home_refresh_interval: float,
) -> Bot:
    metrics = Metrics(clouds=[cloud.name for cloud in clouds])
    replica = replica_id()
    claimant = Claimant(replica, settings.bot_lease_ttl)
    requests = SqlRequestStore(database, claimant)
    stored_audit = SqlAuditLog(database, clock.now)
    audit = MeteredAuditLog(stored_audit, metrics)
    built = {cloud.name: _dcs_client(cloud, session, metrics, clock) for cloud in clouds}
    dcs_clients = {name: client for name, (client, _) in built.items()}
    cloud_map = CloudMap(dcs_clients, {cloud.name: resolution_bound(cloud.timeout) for cloud in clouds})
    dcs_timeout = max(cloud.timeout for cloud in clouds)
    slack_retries = [RateLimitCounter(metrics, api_url=settings.slack_api_url), *retry_handlers()]
    slack = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        session=session,
        retry_handlers=slack_retries,
    )
    notifier = SlackNotifier(
        slack, session, slack_retries, on_error=metrics.observe_slack_error, show_clouds=len(clouds) > 1
    )
    supervisor = Supervisor()
    groups = SlackGroupDirectory(slack)
    # One instance list per cloud serves both the backup form's picker and the Home tabs.
    estates = Estates(cloud_map, clock)
    home = HomeRefresh(
        HomeContent(
            clouds=cloud_map, requests=requests, groups=groups, policy=policy, clock=clock, estates=estates
        ),
        SlackHomePublisher(slack, on_error=metrics.observe_slack_error),
        lambda work, name: supervisor.spawn(work, name=name),
        clock,
        # Shared by the replicas: a tab opened through one is kept current by whichever makes a change.
        SqlHomeViewers(database),
        min_interval=home_refresh_interval,
    )
    # Every change of a request goes through this store, so the Home tabs it concerns are published again.
    observed = ObservedRequests(requests, home)
    lease = SqlLease(database, holder=replica, ttl=settings.bot_lease_ttl)
    # The work is bound once the parts it runs exist (below); it starts only with a term.
    leadership = Leadership(
        lease,
        ttl=settings.bot_lease_ttl,
        work=lambda stop: _leader_work(bot, stop),
        on_role=metrics.observe_role,
        # INTERFACE §9: a standby takes over within BOT_LEASE_TTL plus one poll interval.
        at_least_every=settings.bot_poll_interval,
    )
    # What the background work posts is fenced by the lease: a leader that lost it posts nothing.
    fenced = FencedNotifier(notifier, leadership)
    service = BackupService(
        clouds=cloud_map,
        requests=observed,
        audit=audit,
        groups=groups,
        notifier=notifier,
        policy=policy,
        clock=clock,
        options=ServiceOptions(
            confirm_ttl=settings.bot_confirm_ttl,
            approval_ttl=settings.bot_approval_ttl,
            default_format=settings.bot_default_format,
        ),
        checking_window=checking_window(settings.bot_poll_interval, dcs_timeout),
        notice_budget=notice_budget,
        home=home,
        background_notifier=fenced,
        estates=estates,
    )
    watch = SqlWatchStore(database)
    tracker = Tracker(
        clouds=cloud_map,
        requests=observed,
        watch=watch,
        notifier=fenced,
        audit=audit,
        policy=policy,
        clock=clock,
        options=TrackerOptions(
            interval=settings.bot_poll_interval,
            watch_interval=settings.bot_watch_interval,
            give_up_after=follow_for,
            notice_budget=notice_budget,
        ),
        reconciler=service.reconciler,
        budgets=CloudBudgets(background_calls_per_second),
    )
    stored_deliveries = SqlEventDeliveries(database)
    housekeeping = Housekeeping(
        requests=observed,
        watch=watch,
        deliveries=stored_deliveries,
        notifier=fenced,
        # Not metered: an expiry by the clock is no click, and the click counter would count it.
        audit=stored_audit,
        clock=clock,
        options=HousekeepingOptions(
            sweep_every=settings.bot_poll_interval,
            retention=timedelta(days=settings.bot_retention_days),
        ),
    )
    runner = Runner(
        service=service,
        notifier=notifier,
        audit=audit,
        supervisor=supervisor,
        whisper=notifier.whisper,
        home=home,
    )
    signing_secret = settings.slack_signing_secret
    authorization = BotAuthorization(slack)
    secret = signing_secret.get_secret_value() if signing_secret else None
    bolt = bolt_app(
        slack,
        secret,
        runner,
        authorize=authorization.bolt_authorize(),
        deliveries=event_deliveries or stored_deliveries,
        clock=clock,
        on_redelivery=metrics.observe_event_redelivery,
    )
    bot = Bot(
        settings=settings,
        policy=policy,
        database=database,
        requests=requests,
        audit=stored_audit,
        event_deliveries=stored_deliveries,
        dcs_clients=dcs_clients,
        dcs_clouds={name: observed for name, (_, observed) in built.items()},
        dcs_timeout=dcs_timeout,
        slack=slack,
        authorization=authorization,
        service=service,
        tracker=tracker,
        housekeeping=housekeeping,
        home=home,
        supervisor=supervisor,
        bolt=bolt,
        metrics=metrics,
        socket=SocketState(
            clock, metrics.observe_socket, down_grace=socket_down_grace, ping_interval=socket_ping_interval
        ),
        lifecycle=Lifecycle(),
        clock=clock,
        replica=replica,
        claims=SqlSubmissionClaims(database, claimant),
        leadership=leadership,
    )
    return bot


async def _events(request: web.Request) -> web.Response:
    bot = request.app[BOT]
    secret = bot.settings.slack_signing_secret
    assert secret is not None, "HTTP mode always has a signing secret (checked with the settings)"
    return await handle_events(bot.bolt, request, signing_secret=secret.get_secret_value())


def _observed(bot: Bot) -> Observed:
    return Observed(
        database=bot.database,
        policy=bot.policy,
        clouds=bot.dcs_clouds,
        requests=bot.requests,
        supervisor=bot.supervisor,
        metrics=bot.metrics,
        clock=bot.clock,
        lifecycle=bot.lifecycle,
        socket=bot.socket if bot.settings.socket_mode else None,
        role=lambda: bot.leadership.role,
    )
