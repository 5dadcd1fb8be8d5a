"""The operations endpoints on a port of their own (``BOT_OPS_PORT``), apart from ``/slack/events``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from bot.config import ConfigError
from bot.operations import register_operations
from bot.operations.observed import OBSERVED, Observed


@contextlib.asynccontextmanager
async def serve_on_own_port(observed: Observed, port: int) -> AsyncIterator[None]:
    """Serves the operations endpoints on ``port`` while the context lasts; a port that cannot be had
    stops start-up with one line naming ``BOT_OPS_PORT``."""
    ops = web.Application()
    ops[OBSERVED] = observed
    register_operations(ops)
    runner = web.AppRunner(ops)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, port=port).start()
        except OSError as error:
            raise ConfigError(f"BOT_OPS_PORT: cannot listen on {port} ({error.strerror or error})") from None
        yield
    finally:
        await runner.cleanup()
