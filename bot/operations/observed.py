"""What the operations endpoints look at, under a typed application key.

Nothing here asks anyone anything: the endpoints report what the bot already knows. In particular the
DCS state is what the bot's own calls found (:class:`DcsCalls`, fed by the DCS client's observer) and the
cached IAM token's state, so an outage of DCS or IAM never slows a probe down or turns it red.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web

from bot.core.ports import Clock, RequestStore
from bot.dcs.auth import DcsAuth
from bot.metrics import Metrics
from bot.policy_file import PolicyHolder
from bot.slack.socket_mode import SocketState
from bot.store.engine import Database
from bot.supervisor import Supervisor


@dataclass(frozen=True)
class DcsCall:
    """One DCS operation as the bot's client saw it: its name, the HTTP status (0 when no answer came,
    e.g. a timeout, a refused connection or no IAM token) and when it ended."""

    operation: str
    status: int
    at: datetime

    @property
    def answered(self) -> bool:
        """DCS answered, and not with an outage (5xx, 429) or an authentication failure (401, 403)."""
        return 200 <= self.status < 500 and self.status not in (401, 403, 429)


class DcsCalls:
    """The outcome of the last DCS call, and of the last one DCS answered; an :data:`Observer` of the
    DCS client (``observe`` has its signature and never raises)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.last: DcsCall | None = None
        self.last_answered: DcsCall | None = None

    def observe(self, operation: str, status: int, seconds: float) -> None:
        call = DcsCall(operation, status, self._clock.now())
        self.last = call
        if call.answered:
            self.last_answered = call


@dataclass(frozen=True)
class ObservedCloud:
    """What the bot knows of one cloud: how it authenticates there, and its last calls."""

    auth: DcsAuth
    calls: DcsCalls


@dataclass
class Lifecycle:
    """Set once the server has begun to shut down (before in-flight work is drained)."""

    stopping: bool = False


@dataclass(frozen=True)
class Observed:
    database: Database
    policy: PolicyHolder
    # Every configured cloud by name, in the order of the clouds file (or the one DCS_CLOUD_NAME).
    clouds: Mapping[str, ObservedCloud]
    requests: RequestStore
    supervisor: Supervisor
    metrics: Metrics
    clock: Clock
    lifecycle: Lifecycle
    # Only in Socket Mode.
    socket: SocketState | None
    # "leader" or "standby" (INTERFACE §9): whether this replica does the background work right now.
    role: Callable[[], str]


OBSERVED = web.AppKey("observed", Observed)
