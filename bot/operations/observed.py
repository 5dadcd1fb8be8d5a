"""What the operations endpoints look at, under a typed application key."""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite
from aiohttp import web

from bot.core.ports import RequestStore
from bot.dcs.auth import DcsAuth
from bot.metrics import Metrics
from bot.policy_file import PolicyHolder
from bot.slack.socket_mode import SocketState
from bot.supervisor import Supervisor


@dataclass(frozen=True)
class Observed:
    database: aiosqlite.Connection
    policy: PolicyHolder
    dcs_auth: DcsAuth
    requests: RequestStore
    supervisor: Supervisor
    metrics: Metrics
    # Only in Socket Mode.
    socket: SocketState | None


OBSERVED = web.AppKey("observed", Observed)
