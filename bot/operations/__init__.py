"""The operations endpoints (INTERFACE §10), registered through one function: ``GET /livez``,
``GET /readyz``, ``GET /healthz`` and ``GET /metrics``.

They read what they look at from ``app[OBSERVED]``, which the app factory fills once the resources are
open; they know nothing else of the bot.
"""

from __future__ import annotations

from aiohttp import web

from bot.operations import health, metrics_endpoint


def register_operations(app: web.Application) -> None:
    app.router.add_get("/livez", health.livez)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/metrics", metrics_endpoint.metrics)
