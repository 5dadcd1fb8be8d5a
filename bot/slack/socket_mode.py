"""Socket Mode: the link to Slack when ``SLACK_APP_TOKEN`` is set, and what the bot knows of its state.

Before connecting, the app-level token is checked once, because slack_sdk would retry a refused token
forever. While the link runs, a watcher keeps :class:`SocketState` current for the operations endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import ConfigError
from bot.core.ports import Clock
from bot.slack.errors import SlackCallError, call_slack

log = logging.getLogger(__name__)

# How long the Socket Mode connection may be down (reconnecting) before /healthz says so.
SOCKET_DOWN_GRACE = timedelta(seconds=30)
# slack_sdk pings this often, declares a link dead after four missed pongs, and waits this long between
# attempts to reconnect; its default (10 s) is kept.
SOCKET_PING_INTERVAL = 10.0
_CHECK_EVERY = 1.0


@dataclass
class SocketState:
    """Whether the link is up, and since when it is down; ``on_observed`` hears every observation."""

    clock: Clock
    on_observed: Callable[[bool], None]
    down_grace: timedelta
    ping_interval: float
    down_since: datetime | None = None
    # Asks slack_sdk whether the link is up; set while Socket Mode runs.
    probe: Callable[[], Awaitable[bool]] | None = None

    async def observe(self) -> None:
        """Brings the link state up to date; the watcher calls it, and so do the operations endpoints, so
        that they never report a state up to a watcher interval old."""
        probe = self.probe
        if probe is None:
            return
        connected = await probe()
        if connected:
            self.down_since = None
        elif self.down_since is None:
            self.down_since = self.clock.now()
        self.on_observed(connected)


@contextlib.asynccontextmanager
async def socket_mode(
    bolt: AsyncApp, slack: AsyncWebClient, app_token: str | None, state: SocketState
) -> AsyncIterator[None]:
    """Serves ``bolt`` over Socket Mode while open (nothing without an app token). On close it takes no
    new envelopes; work already taken goes on under whoever runs it."""
    if app_token is None:
        yield
        return
    await _check_app_token(slack, app_token)
    handler = AsyncSocketModeHandler(
        bolt, app_token, logger=logging.getLogger("slack_sdk"), ping_interval=state.ping_interval
    )
    stop = asyncio.Event()
    state.down_since = state.clock.now()
    state.probe = handler.client.is_connected
    # slack_sdk keeps retrying until it gets through, so connecting must not hold up start-up.
    connect = handler.connect_async()  # type: ignore[no-untyped-call]
    connecting = asyncio.create_task(connect, name="socket mode connect")
    watcher = asyncio.create_task(_watch(state, stop), name="socket watcher")
    try:
        yield
    finally:
        stop.set()
        await watcher
        state.probe = None
        await handler.close_async()  # type: ignore[no-untyped-call]
        if not connecting.done():
            connecting.cancel()
        await asyncio.gather(connecting, return_exceptions=True)


async def _check_app_token(slack: AsyncWebClient, app_token: str) -> None:
    """Refuses to start with an app-level token Slack rejects (slack_sdk would retry it forever); when
    Slack cannot tell right now, connecting goes ahead (slack_sdk keeps trying)."""
    try:
        await call_slack(
            "apps.connections.open", slack.apps_connections_open(app_token=app_token), timeout=slack.timeout
        )
    except SlackCallError as error:
        failure = error.failure
        if failure.refuses_token:
            raise ConfigError(
                f"SLACK_APP_TOKEN: Slack refused the app-level token ({failure.reason})"
            ) from None
        log.warning("could not check the app-level token (%s); connecting anyway", failure)


async def _watch(state: SocketState, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await state.observe()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=_CHECK_EVERY)
