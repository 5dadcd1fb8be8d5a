"""``GET /healthz``: one named check per part the bot needs; 503 when any of them fails."""

from __future__ import annotations

import asyncio

from aiohttp import web

from bot.core.errors import DcsError
from bot.dcs.auth import TokenAuth
from bot.operations.observed import OBSERVED, Observed
from bot.slack.socket_mode import SocketState

_TIMEOUT = 5.0


async def healthz(request: web.Request) -> web.Response:
    observed = request.app[OBSERVED]
    policy = observed.policy()
    checks = {
        "database": await _database_check(observed),
        "policy": f"ok ({len(policy.rules)} rules, {len(policy.watch)} watches)",
        "dcs_auth": await _dcs_auth_check(observed),
    }
    if observed.socket is not None:
        await observed.socket.observe()
        checks["socket_mode"] = _socket_check(observed.socket)
    if not observed.supervisor.accepting:
        checks["shutdown"] = "stopping: taking no new work"
    healthy = all(value.startswith("ok") for value in checks.values())
    return web.json_response({"ok": healthy, "checks": checks}, status=200 if healthy else 503)


async def _database_check(observed: Observed) -> str:
    try:
        async with observed.database.execute("SELECT 1") as cursor:
            await cursor.fetchone()
    except Exception as error:  # any failure means unhealthy; its type is enough for a prober
        return f"error: {type(error).__name__}"
    return "ok"


async def _dcs_auth_check(observed: Observed) -> str:
    auth = observed.dcs_auth
    if not isinstance(auth, TokenAuth):
        return "ok (AK/SK signing)"
    try:
        # Cached for hours; only an expired token makes this a call to IAM.
        await asyncio.wait_for(auth.token(), timeout=_TIMEOUT)
    except (DcsError, TimeoutError) as error:
        return f"error: no IAM token ({error or 'timeout'})"
    return "ok (IAM token)"


def _socket_check(socket: SocketState) -> str:
    down_since = socket.down_since
    if down_since is None:
        return "ok (connected)"
    down_for = socket.clock.now() - down_since
    if down_for <= socket.down_grace:
        return f"ok (reconnecting for {down_for.total_seconds():.0f} s)"
    return f"error: disconnected for {down_for.total_seconds():.0f} s"
