"""Several ``dcs-bot serve`` processes on one database, each with its own Socket Mode link to the Slack
stand-in (INTERFACE §9): any envelope may reach any replica, and a request is still confirmed and backed up
once; when a replica dies, Slack's envelopes go to the link still open and keep working. And HTTP mode
behind a load balancer: a proxy that alternates between two replicas, forwarding Slack's signed bytes.

The database is the ``database`` fixture's: a SQLite file (WAL lets processes share it) and a fresh
PostgreSQL database. One replica at a time (the lease's holder) follows the backups, so each outcome is
announced once."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from itertools import cycle
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.standins.slack.socket_mode import SocketConnection
from bot.standins.slack.timeline import Message
from tests.e2e.conftest import (
    ALICE,
    DEFAULT_POLICY,
    OPS,
    DcsGate,
    Driver,
    StandIns,
    StandInsFactory,
    bot_environment,
)
from tests.service.conftest import APP_TOKEN, Remote, serve, socket_mode_slack
from tests.service.process import Child, free_port, running_bot, wait_until_serving
from tests.service.test_process import CreateBackupGate

CLICKERS = 6


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The ``BOT_DATABASE`` every replica of a test shares: a new, empty database."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "shared.sqlite3")


@dataclass
class Replica:
    """One ``dcs-bot serve`` process: its operations endpoints under ``url``, and in Socket Mode its link."""

    name: str
    child: Child
    url: str
    link: SocketConnection | None = None


class Replicas:
    """Starts ``dcs-bot serve`` processes that share one database and the stand-ins, one at a time, so
    that each Socket Mode link is known to belong to the replica started just before it opened."""

    def __init__(
        self, stack: contextlib.AsyncExitStack, tmp_path: Path, stand_ins: StandIns, database: str
    ) -> None:
        self._stack = stack
        self._tmp_path = tmp_path
        self.stand_ins = stand_ins
        self.database = database

    async def start(self, name: str, *, socket_mode: bool) -> Replica:
        folder = self._tmp_path / name
        folder.mkdir()
        port = free_port()
        environment = bot_environment(
            folder,
            self.stand_ins,
            DEFAULT_POLICY,
            port,
            BOT_DATABASE=self.database,
            BOT_LOG_FORMAT="json",
        )
        if socket_mode:
            del environment["SLACK_SIGNING_SECRET"]
            environment["SLACK_APP_TOKEN"] = APP_TOKEN
        slack = self.stand_ins.slack
        newest = slack.socket.connections[-1] if slack.socket.connections else None
        child = await self._stack.enter_async_context(running_bot(["serve"], environment, folder))
        replica = Replica(name, child, f"http://127.0.0.1:{port}")
        # In Socket Mode /healthz answers 200 only once the link is up.
        await wait_until_serving(f"{replica.url}/healthz", child)
        if socket_mode:
            replica.link = await slack.wait_for_socket(newer_than=newest)
        return replica


ReplicasFactory = Callable[..., Awaitable[Replicas]]


@pytest.fixture
async def replicas(
    tmp_path: Path, stand_ins_factory: StandInsFactory, database: str
) -> AsyncIterator[ReplicasFactory]:
    """``await replicas(socket_mode=..., dcs_gate=...)``: fresh stand-ins (in Socket Mode a Slack
    stand-in that holds the app token) and a :class:`Replicas` on ``database`` to start replicas with."""
    servers: list[TestServer] = []
    stack = contextlib.AsyncExitStack()

    async def start(*, socket_mode: bool, dcs_gate: DcsGate | None = None) -> Replicas:
        stand_ins = await stand_ins_factory(dcs_gate=dcs_gate)
        if socket_mode:
            stand_ins.slack = socket_mode_slack()
            stand_ins.slack.bind(await serve(stand_ins.slack.app(), servers))
        return Replicas(stack, tmp_path, stand_ins, database)

    try:
        yield start
    finally:
        # The replicas go before the stand-ins they talk to.
        await stack.aclose()
        for server in servers:
            await server.close()


async def two_replicas(
    factory: ReplicasFactory, *, socket_mode: bool = True
) -> tuple[StandIns, Replica, Replica]:
    group = await factory(socket_mode=socket_mode)
    first = await group.start("first", socket_mode=socket_mode)
    second = await group.start("second", socket_mode=socket_mode)
    return group.stand_ins, first, second


def spread_over_links(stand_ins: StandIns) -> Remote:
    """Talks to whichever replica Slack picks: each envelope goes over the next live link in turn."""
    return Remote(stand_ins=stand_ins, bot_url="(Socket Mode)", target=stand_ins.slack.socket_delivery())


def driver_of(replica: Replica, stand_ins: StandIns) -> Remote:
    """Talks to ``replica`` only, over its own link."""
    return Remote(
        stand_ins=stand_ins,
        bot_url=f"{replica.url}/slack/events",
        target=stand_ins.slack.socket_delivery(replica.link),
    )


async def started_backup(driver: Driver, count: int = 1) -> Message:
    """The ``count``-th message in the channel, once there: that the ``count``-th backup started."""
    started = await driver.channel_message(OPS, count, timeout=10)
    backups = driver.dcs.backups_of(driver.prod.instance_id)
    assert len(backups) == count and any(backup.backup_id in started.shown for backup in backups)
    return started


async def outcome_of(driver: Driver, started: Message) -> Message:
    """The first reply in the thread of ``started`` (the outcome)."""
    [outcome, *_] = await driver.thread_replies(started.ts, timeout=10)
    return outcome


# ---- Socket Mode --------------------------------------------------------------------------------------


async def test_each_replica_holds_its_own_link(replicas: ReplicasFactory) -> None:
    stand_ins, first, second = await two_replicas(replicas)

    assert first.link is not None and second.link is not None
    assert [link.number for link in stand_ins.slack.socket.live] == [first.link.number, second.link.number]
    for replica in (first, second):
        async with aiohttp.ClientSession() as session, session.get(f"{replica.url}/healthz") as response:
            health = await response.json()
        assert (response.status, health["checks"]["socket"]) == (200, "ok (connected)"), replica.name


async def test_a_command_on_one_replica_and_its_click_on_the_other_back_up_once(
    replicas: ReplicasFactory,
) -> None:
    stand_ins, first, second = await two_replicas(replicas)
    on_first, on_second = driver_of(first, stand_ins), driver_of(second, stand_ins)

    card = await on_first.card('redis-prod aof "across replicas"')
    assert await on_second.click(card, "backup_confirm") == 200
    started = await started_backup(on_second)
    outcome = await outcome_of(on_second, started)

    command, click = stand_ins.slack.socket.envelopes
    assert first.link is not None and second.link is not None
    assert (command.connection, command.ack_connection) == (first.link.number, first.link.number)
    assert (click.connection, click.ack_connection) == (second.link.number, second.link.number)
    assert "succeeded" in outcome.shown
    assert on_second.backups_created() == 1
    assert stand_ins.slack.channel_messages(OPS) == [started], "the start is announced once"
    # One leader follows the backup (the lease): its outcome is announced once.
    assert len(stand_ins.slack.thread(OPS, started.ts)) == 1


async def test_simultaneous_clicks_spread_over_both_links_back_up_once(replicas: ReplicasFactory) -> None:
    stand_ins, first, second = await two_replicas(replicas)
    slack = stand_ins.slack
    spread = spread_over_links(stand_ins)
    card = await spread.card('redis-prod rdb "six clicks"')

    clicks = [
        slack.build_click(user_id=ALICE, message=card, action_id="backup_confirm") for _ in range(CLICKERS)
    ]
    replies = await asyncio.gather(*(slack.send_interactive(spread.target, payload) for payload, _ in clicks))
    urls = {str(payload["response_url"]) for payload, _ in clicks}
    await slack.wait_until(
        lambda: urls <= {post.response_url.url for post in slack.response_posts() if post.response_url},
        timeout=10,
        what="an answer to every click",
    )
    started = await started_backup(spread)
    await outcome_of(spread, started)

    assert [reply.status for reply in replies] == [200] * CLICKERS
    click_links = {envelope.connection for envelope in slack.socket.envelopes[1:]}
    assert first.link is not None and second.link is not None
    assert click_links == {first.link.number, second.link.number}, "both replicas got clicks"
    assert spread.backups_created() == 1
    assert len(spread.dcs.backups_of(spread.prod.instance_id)) == 1
    assert slack.channel_messages(OPS) == [started]


@pytest.mark.parametrize("going", ["kill -9", "SIGTERM"])
async def test_when_a_replica_goes_the_other_takes_the_envelopes_and_a_replacement_joins(
    replicas: ReplicasFactory, going: str
) -> None:
    group = await replicas(socket_mode=True)
    first = await group.start("first", socket_mode=True)
    second = await group.start("second", socket_mode=True)
    slack = group.stand_ins.slack
    assert first.link is not None and second.link is not None

    if going == "kill -9":
        second.child.process.kill()
    else:
        second.child.signal(signal.SIGTERM)
    await slack.wait_until(lambda: slack.socket.live == [first.link], what="only the first link live")
    spread = spread_over_links(group.stand_ins)
    card = await spread.card('redis-prod aof "after a replica went"')
    assert await spread.click(card, "backup_confirm") == 200
    started = await started_backup(spread, 1)
    await outcome_of(spread, started)
    after_going = list(slack.socket.envelopes)

    third = await group.start("third", socket_mode=True)
    card = await driver_of(third, group.stand_ins).card('redis-prod rdb "on the replacement"')
    assert await driver_of(first, group.stand_ins).click(card, "backup_confirm") == 200
    again = await started_backup(spread, 2)
    await outcome_of(spread, again)

    assert third.link is not None
    assert {e.connection for e in after_going} == {first.link.number}
    assert [e.connection for e in slack.socket.envelopes[len(after_going) :]] == [
        third.link.number,
        first.link.number,
    ]
    assert spread.backups_created() == 2
    assert slack.channel_messages(OPS) == [started, again]
    if going == "SIGTERM":
        assert await second.child.exit_code() == 0, second.child.stderr
        assert second.link.closed_by == "client", "the replica closed its own link on the way out"


async def test_a_replica_draining_for_a_rolling_update_posts_its_backup_while_the_other_takes_new_work(
    replicas: ReplicasFactory,
) -> None:
    gate = CreateBackupGate()
    group = await replicas(socket_mode=True, dcs_gate=gate)
    first = await group.start("first", socket_mode=True)
    second = await group.start("second", socket_mode=True)
    slack = group.stand_ins.slack
    on_second = driver_of(second, group.stand_ins)
    card = await on_second.card('redis-prod aof "in flight"')
    assert await on_second.click(card, "backup_confirm") == 200
    await gate.held("POST /v2/")

    second.child.signal(signal.SIGTERM)
    await slack.wait_until(lambda: slack.socket.live == [first.link], what="only the first link live")
    spread = spread_over_links(group.stand_ins)
    card = await spread.card('redis-staging rdb "while the other drains"')
    assert await spread.click(card, "backup_confirm") == 200
    gate.open()
    await spread.channel_message(OPS, 2, timeout=10)

    assert await second.child.exit_code() == 0, second.child.stderr
    assert first.link is not None and second.link is not None
    assert [e.connection for e in slack.socket.envelopes[2:]] == [first.link.number] * 2
    assert spread.backups_created() == 2
    [in_flight] = spread.dcs.backups_of(spread.prod.instance_id)
    [taken_over] = spread.dcs.backups_of(spread.staging.instance_id)
    announced = "\n".join(m.shown for m in slack.channel_messages(OPS))
    assert in_flight.backup_id in announced and taken_over.backup_id in announced
    assert len(slack.channel_messages(OPS)) == 2


# ---- HTTP behind a load balancer ----------------------------------------------------------------------


@dataclass
class LoadBalancer:
    """Forwards each POST to the next replica in turn: the raw body and Slack's headers unchanged."""

    upstreams: list[str]
    sent_to: list[str]

    def app(self) -> web.Application:
        turn = cycle(self.upstreams)

        async def forward(request: web.Request) -> web.Response:
            upstream = next(turn)
            self.sent_to.append(upstream)
            headers = {
                name: value
                for name, value in request.headers.items()
                if name.lower().startswith("x-slack-") or name.lower() == "content-type"
            }
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    f"{upstream}/slack/events", data=await request.read(), headers=headers
                ) as answer,
            ):
                body = await answer.read()
                return web.Response(body=body, status=answer.status, content_type=answer.content_type)

        app = web.Application()
        app.router.add_post("/slack/events", forward)
        return app


async def test_http_behind_a_load_balancer_backs_up_once(replicas: ReplicasFactory) -> None:
    stand_ins, first, second = await two_replicas(replicas, socket_mode=False)
    balancer = LoadBalancer([first.url, second.url], [])
    servers: list[TestServer] = []
    try:
        driver = Driver(stand_ins=stand_ins, bot_url=f"{await serve(balancer.app(), servers)}/slack/events")
        card = await driver.card('redis-prod aof "through a proxy"')
        assert await driver.click(card, "backup_confirm") == 200
        started = await started_backup(driver)
        await outcome_of(driver, started)
    finally:
        for server in servers:
            await server.close()

    assert balancer.sent_to == [first.url, second.url], "the command and the click took different replicas"
    assert driver.backups_created() == 1
    assert stand_ins.slack.channel_messages(OPS) == [started]
