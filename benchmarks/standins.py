"""The stand-ins of the command benchmark, in a process of their own, with a small control API.

``python -m benchmarks.standins SLACK_PORT DCS_PORT CONTROL_PORT`` serves on 127.0.0.1 the Slack stand-in
(Web API and response_urls), the DCS emulator, and a control API the benchmark drives them through. They
run apart from the load generator so that the time they spend answering the bot never delays the clock the
benchmark reads its acks with; arrival times are ``time.monotonic()``, which on Linux is one clock for
every process on the machine, so the benchmark compares them with its own send times.

Control API (JSON in, JSON out):

- ``POST /issue {"users": [...], "channel": C}``: one slash command response_url per user given;
- ``POST /cards {"tokens": [...], "timeout": s}``: waits until a post reached each of those response_urls;
  answers ``{"arrivals": {token: monotonic}, "cards": n with a confirm button, "missing": n}``;
- ``GET /counts``: DCS calls answered per endpoint, Slack Web API calls per method, response_url posts;
- ``POST /dcs/slow {"delay": s}``: from now on every DCS call is answered ``delay`` seconds late;
  ``POST /dcs/normal`` ends that;
- ``POST /confirm {"token", "user", "bot_url", "instance", "timeout"}``: presses Confirm on the card that
  reached ``token`` (a signed ``block_actions`` to ``bot_url``) and waits for the ``chat.postMessage``
  naming the ``backup_id``; answers the seconds in between and the emulator's own time for the
  ``create_backup`` it answered meanwhile;
- ``GET /info``: 200 once everything serves.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler

from bot.slack.blocks import CONFIRM_ACTION
from bot.standins.dcs.call_log import Endpoint
from bot.standins.dcs.control import DcsEmulator
from bot.standins.faults import Answer, Fault
from bot.standins.slack.delivery import Inbound, PayloadKind
from bot.standins.slack.payloads import signed_headers
from bot.standins.slack.standin import SlackStandIn

SIGNING_SECRET = "bench-signing-secret-0123456789"
BOT_TOKEN = "xoxb-bench-bot-token-0123456789"
ACCESS_KEY = "BENCHACCESSKEY"
SECRET_KEY = "bench-secret-key-0123456789"
PROJECT_ID = "0123456789abcdef0123456789abcdef"
CHANNEL = "CBENCH1"
USERS = tuple(f"UBENCH{number:02d}" for number in range(1, 21))
#: Instances the bursts name, in turn (so all but the first command per instance are repeats).
BURST_INSTANCES = tuple(f"redis-bench-{number:02d}" for number in range(20))
#: One instance per confirm sample: a running backup would refuse the next one (DCS.4096).
CONFIRM_INSTANCES = tuple(f"redis-confirm-{number:02d}" for number in range(50))
#: For the benchmark's own create_backup calls, which measure the emulator's latency as a client sees it.
DIRECT_INSTANCES = tuple(f"redis-direct-{number:02d}" for number in range(50))
#: "Every DCS call" for long enough: far more uses than a benchmark run makes.
_SLOW_TIMES = 1_000_000


@dataclass
class Recorder:
    """Arrival times of what the bot sends, and the emulator's time per create_backup."""

    response_arrivals: dict[str, float] = field(default_factory=dict)
    cards: set[str] = field(default_factory=set)
    #: (arrival, text) of every chat.postMessage.
    channel_posts: list[tuple[float, str]] = field(default_factory=list)
    api_calls: Counter[str] = field(default_factory=Counter)
    #: (instance_id, seconds from arrival to answer) of every create_backup.
    creates: list[tuple[str, float]] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    #: Tokens still awaited by a /cards request, and the event set once none is left.
    waiters: list[tuple[set[str], asyncio.Event]] = field(default_factory=list)

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    @web.middleware
    async def slack(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        arrived = time.monotonic()
        path = request.path
        raw = await request.text()  # aiohttp keeps the body, so the stand-in reads it again
        response = await handler(request)
        if path.startswith("/response/"):
            token = path.rsplit("/", 1)[-1]
            if token not in self.response_arrivals:
                self.response_arrivals[token] = arrived
                if CONFIRM_ACTION in raw:
                    self.cards.add(token)
                for pending, done in self.waiters:
                    pending.discard(token)
                    if not pending:
                        done.set()
        elif path.startswith("/api/"):
            method = path.removeprefix("/api/")
            self.api_calls[method] += 1
            if method == "chat.postMessage":
                self.channel_posts.append((arrived, raw))
                await self._notify()
        return response

    @web.middleware
    async def dcs(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        arrived = time.monotonic()
        response = await handler(request)
        if request.match_info.route.name == Endpoint.CREATE_BACKUP:
            self.creates.append((request.match_info.get("instance_id", ""), time.monotonic() - arrived))
        return response


class Control:
    def __init__(self, slack: SlackStandIn, dcs: DcsEmulator, recorder: Recorder) -> None:
        self.slack = slack
        self.dcs = dcs
        self.recorder = recorder
        self._session: aiohttp.ClientSession | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/info", self.info)
        app.router.add_post("/issue", self.issue)
        app.router.add_post("/cards", self.cards)
        app.router.add_get("/counts", self.counts)
        app.router.add_post("/dcs/slow", self.slow)
        app.router.add_post("/dcs/normal", self.normal)
        app.router.add_post("/confirm", self.confirm)
        app.cleanup_ctx.append(self._client_session)
        return app

    async def _client_session(self, _: web.Application) -> Any:
        async with aiohttp.ClientSession() as session:
            self._session = session
            yield

    async def info(self, _: web.Request) -> web.Response:
        return web.json_response({"slack": self.slack.base_url, "project_id": self.dcs.project_id})

    async def issue(self, request: web.Request) -> web.Response:
        body = await request.json()
        channel = str(body["channel"])
        urls = [self.slack.issue_response_url(channel_id=channel, user_id=str(u)) for u in body["users"]]
        return web.json_response({"urls": urls})

    async def cards(self, request: web.Request) -> web.Response:
        body = await request.json()
        tokens = [str(token) for token in body["tokens"]]
        arrivals = self.recorder.response_arrivals
        waiter = ({token for token in tokens if token not in arrivals}, asyncio.Event())
        if waiter[0]:
            self.recorder.waiters.append(waiter)
            try:
                async with asyncio.timeout(float(body["timeout"])):
                    await waiter[1].wait()
            except TimeoutError:
                pass
            finally:
                self.recorder.waiters.remove(waiter)
        arrived = {token: arrivals[token] for token in tokens if token in arrivals}
        return web.json_response(
            {
                "arrivals": arrived,
                "cards": sum(1 for token in arrived if token in self.recorder.cards),
                "missing": len(tokens) - len(arrived),
            }
        )

    async def counts(self, _: web.Request) -> web.Response:
        dcs = Counter(str(call.endpoint) for call in self.dcs.log.calls if call.endpoint is not None)
        return web.json_response(
            {
                "dcs": dict(dcs),
                "slack_api": dict(self.recorder.api_calls),
                "response_posts": len(self.recorder.response_arrivals),
            }
        )

    async def slow(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.dcs.inject(Fault(Answer.NORMAL, delay=float(body["delay"]), times=_SLOW_TIMES))
        return web.json_response({"ok": True})

    async def normal(self, _: web.Request) -> web.Response:
        self.dcs.clear_faults()
        return web.json_response({"ok": True})

    async def confirm(self, request: web.Request) -> web.Response:
        body = await request.json()
        token, user, instance = str(body["token"]), str(body["user"]), str(body["instance"])
        card = next((p.message for p in reversed(self.slack.response_posts()) if p.token == token), None)
        if card is None:
            return web.json_response({"error": f"no card reached {token}"}, status=404)
        payload, _ = self.slack.build_click(user_id=user, message=card, action_id=CONFIRM_ACTION)
        raw = Inbound(PayloadKind.INTERACTIVE, payload).http_body()
        headers = signed_headers(raw, secret=SIGNING_SECRET)
        instance_id = next(i.instance_id for i in self.dcs.instances if i.name == instance)
        posts_before = len(self.recorder.channel_posts)
        creates_before = len(self.recorder.creates)
        assert self._session is not None
        sent = time.monotonic()
        async with self._session.post(str(body["bot_url"]), data=raw.encode(), headers=headers) as answer:
            status = answer.status
            await answer.read()

        def announced() -> float | None:
            for arrived, text in self.recorder.channel_posts[posts_before:]:
                if "backup_id" in text and instance in text:
                    return arrived
            return None

        try:
            async with asyncio.timeout(float(body["timeout"])), self.recorder.changed:
                await self.recorder.changed.wait_for(lambda: announced() is not None)
        except TimeoutError:
            return web.json_response({"click_status": status, "error": "no backup_id in the channel"})
        arrived = announced()
        assert arrived is not None
        creates = [s for i, s in self.recorder.creates[creates_before:] if i == instance_id]
        return web.json_response(
            {
                "click_status": status,
                "seconds": arrived - sent,
                "create_seconds": creates[0] if creates else None,
            }
        )


def emulator() -> DcsEmulator:
    dcs = DcsEmulator(
        project_id=PROJECT_ID,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        waiting_seconds=0.05,
        backuping_seconds=0.1,
    )
    for name in BURST_INSTANCES + CONFIRM_INSTANCES + DIRECT_INSTANCES:
        dcs.add_instance(name, cache_mode="ha")
    return dcs


def slack_standin() -> SlackStandIn:
    slack = SlackStandIn(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN)
    slack.add_channel(CHANNEL, "bench")
    for user in USERS:
        slack.set_user(user, user.lower())
    return slack


async def serve(slack_port: int, dcs_port: int, control_port: int) -> None:
    recorder = Recorder()
    slack = slack_standin()
    slack.app().middlewares.append(recorder.slack)
    dcs = emulator()
    dcs_app = dcs.app()
    dcs_app.middlewares.insert(0, recorder.dcs)
    runners = []
    for app, port in ((slack.app(), slack_port), (dcs_app, dcs_port)):
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
    slack.bind(f"http://127.0.0.1:{slack_port}")
    control = web.AppRunner(Control(slack, dcs, recorder).app(), access_log=None)
    await control.setup()
    await web.TCPSite(control, "127.0.0.1", control_port).start()
    runners.append(control)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await stop.wait()
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    slack_port, dcs_port, control_port = (int(value) for value in argv)
    asyncio.run(serve(slack_port, dcs_port, control_port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
