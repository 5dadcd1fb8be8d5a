"""``GET /metrics``: Prometheus text, brought up to date with what is cheap to ask at scrape time."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.core.rules.backup_request import RequestState
from bot.operations.observed import OBSERVED


async def metrics(request: web.Request) -> web.Response:
    observed = request.app[OBSERVED]
    if observed.socket is not None:
        await observed.socket.observe()
    observed.metrics.followed.set(len(await observed.requests.in_states(RequestState.SUBMITTED)))
    return web.Response(
        body=generate_latest(observed.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )
