"""The reference app of the command benchmark: a bare slack-bolt ``AsyncApp`` that only acks ``/dcs-backup``.

``python -m benchmarks.bare PORT SIGNING_SECRET BOT_TOKEN SLACK_API_URL`` serves it on 127.0.0.1:PORT with
``process_before_response=True`` (the fast path: the response goes out as soon as the listener returns,
without Bolt's 10 ms ack polling), behind a small aiohttp app as the bot's own ``/slack/events`` is. Bolt
checks the same signatures as in the bot; ``auth.test`` goes to the Slack stand-in at SLACK_API_URL.
GET /healthz answers 200 once it serves. SIGTERM stops it.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

COMMAND = "/dcs-backup"


def bare_app(*, signing_secret: str, bot_token: str, api_url: str) -> web.Application:
    bolt = AsyncApp(
        client=AsyncWebClient(token=bot_token, base_url=api_url),
        signing_secret=signing_secret,
        process_before_response=True,
    )

    async def only_ack(ack: AsyncAck) -> None:
        await ack()

    bolt.command(COMMAND)(only_ack)

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/slack/events", events)
    app.router.add_get("/healthz", health)
    return app


async def serve(port: int, app: web.Application) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    port, signing_secret, bot_token, api_url = argv
    app = bare_app(signing_secret=signing_secret, bot_token=bot_token, api_url=api_url)
    asyncio.run(serve(int(port), app))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
