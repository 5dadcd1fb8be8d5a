"""Several ``dcs-bot serve`` processes on one database (INTERFACE §9), against one DCS emulator and one Slack
stand-in, spoken to over HTTP signed as Slack signs: exactly one leads the background work; any replica
takes any command or click, and a request is confirmed once across them; a leader killed mid-backup is
replaced and the outcome announced once; a submission a live replica is making is never settled by
another; a leader that shuts down cleanly hands the lease over.

Every test runs on both databases (the ``database`` fixture): a SQLite file (WAL lets processes share it)
and a fresh PostgreSQL database, whose URL carries the password — which then shows in none of the
replicas' log lines."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from bot.core.rules.backup_request import BackupRequest, RequestState
from bot.standins.dcs.control import ManualClock
from bot.standins.slack.timeline import Message
from bot.store.database import open_database
from bot.store.engine import DATABASE_ERRORS, Database
from bot.store.requests import SqlRequestStore
from tests.e2e.conftest import (
    ALICE,
    DEFAULT_POLICY,
    OPS,
    DcsGate,
    Driver,
    StandIns,
    StandInsFactory,
    bot_environment,
    bot_request,
)
from tests.postgres import PostgresCluster
from tests.service.process import WAIT, Child, free_port, running_bot, wait_until_serving

#: Small enough for quick take-overs, large enough that a busy machine renews in time.
LEASE_TTL = "2"
CHECKING = ":hourglass_flowing_sand: *Outcome unknown, checking.*"


@dataclass(frozen=True)
class SharedDatabase:
    """The database every replica of a test shares: ``url`` is their ``BOT_DATABASE``; ``operator`` is a
    connection of the test's own beside them, as an operator would look; ``password`` (PostgreSQL) must
    show in no log line."""

    url: str
    operator: Database
    password: str | None = None


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SharedDatabase]:
    """Its schema in place before the replicas start."""
    if request.param == "postgresql":
        cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
        url = str(request.getfixturevalue("postgres_url"))
        password: str | None = cluster.password
    else:
        url, password = str(tmp_path / "shared.sqlite3"), None
    operator = await open_database(url)
    try:
        yield SharedDatabase(url, operator, password)
    finally:
        await operator.close()


async def stored_states(database: SharedDatabase) -> dict[str, str]:
    """The state of every request, read beside the running replicas."""
    rows = await database.operator.fetch_all("SELECT remark, state FROM requests")
    return {str(row["remark"]): str(row["state"]) for row in rows}


async def seed_requests(database: SharedDatabase, *requests: BackupRequest) -> None:
    """Writes ``requests`` into the shared database, as an earlier release left them."""
    store = SqlRequestStore(database.operator)
    for request in requests:
        await store.add(request)


async def until(condition: Callable[[], Awaitable[bool]], what: str, timeout: float = WAIT) -> None:
    """Polls ``condition`` (the replicas are other processes: there is no event to wait on)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():
        assert loop.time() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(0.05)


@dataclass
class Replica:
    name: str
    child: Child
    url: str
    slack: Driver

    async def role(self) -> str | None:
        """What /healthz says this replica is; None once it no longer answers."""
        try:
            async with aiohttp.ClientSession() as session, session.get(f"{self.url}/healthz") as response:
                return str(json.loads(await response.text())["role"])
        except aiohttp.ClientError:
            return None

    async def metric(self, name: str) -> float:
        async with aiohttp.ClientSession() as session, session.get(f"{self.url}/metrics") as response:
            text = await response.text()
        [line] = [line for line in text.splitlines() if line.startswith(f"{name} ")]
        return float(line.split()[1])

    def kill(self) -> None:
        self.child.signal(signal.SIGKILL)


class Replicas:
    """Starts ``dcs-bot serve`` processes that share ``database`` and the stand-ins."""

    def __init__(
        self, stack: contextlib.AsyncExitStack, tmp_path: Path, stand_ins: StandIns, database: SharedDatabase
    ) -> None:
        self._stack = stack
        self._tmp_path = tmp_path
        self.stand_ins = stand_ins
        self.database = database
        self.started: list[Replica] = []

    async def start(self, name: str, **settings: str) -> Replica:
        """A replica that serves; its role is settled before it does (its first try for the lease)."""
        folder = self._tmp_path / name
        folder.mkdir()
        port = free_port()
        environment = bot_environment(
            folder,
            self.stand_ins,
            DEFAULT_POLICY,
            port,
            BOT_DATABASE=self.database.url,
            BOT_LEASE_TTL=LEASE_TTL,
            BOT_LOG_FORMAT="json",
            **settings,
        )
        child = await self._stack.enter_async_context(running_bot(["serve"], environment, folder))
        url = f"http://127.0.0.1:{port}"
        await wait_until_serving(f"{url}/healthz", child)
        replica = Replica(name, child, url, Driver(stand_ins=self.stand_ins, bot_url=f"{url}/slack/events"))
        self.started.append(replica)
        return replica

    async def roles(self) -> dict[str, str | None]:
        roles = await asyncio.gather(*(replica.role() for replica in self.started))
        return {replica.name: role for replica, role in zip(self.started, roles, strict=True)}

    async def leader(self, among: list[Replica] | None = None) -> Replica:
        """The one replica of ``among`` (default: all started) that leads, once exactly one does."""
        candidates = among or self.started
        found: list[Replica] = []

        async def one_leads() -> bool:
            roles = await asyncio.gather(*(replica.role() for replica in candidates))
            found[:] = [replica for replica, role in zip(candidates, roles, strict=True) if role == "leader"]
            return len(found) == 1

        await until(one_leads, "exactly one leader")
        return found[0]


ReplicasFactory = Callable[..., Awaitable[Replicas]]


@pytest.fixture
async def replicas_factory(
    tmp_path: Path, stand_ins_factory: StandInsFactory, database: SharedDatabase
) -> AsyncIterator[ReplicasFactory]:
    """``await replicas_factory(dcs_gate=…, dcs_clock=…)``: stand-ins, and a way to start replicas on them.
    Once they have stopped: the database's password is in none of their log lines."""
    made: list[Replicas] = []
    async with contextlib.AsyncExitStack() as stack:

        async def make(**stand_in_options: object) -> Replicas:
            stand_ins = await stand_ins_factory(**stand_in_options)
            made.append(Replicas(stack, tmp_path, stand_ins, database))
            return made[-1]

        yield make
    if database.password is not None:
        children = [replica.child for replicas in made for replica in replicas.started]
        lines = [line for child in children for line in child.stdout + child.stderr]
        assert lines, "the replicas logged"
        assert [line for line in lines if database.password in line] == []


@pytest.fixture
async def replicas(replicas_factory: ReplicasFactory) -> Replicas:
    return await replicas_factory()


@pytest.mark.parametrize("count", [2, 3])
async def test_exactly_one_replica_leads(replicas: Replicas, count: int) -> None:
    started = [await replicas.start(f"r{n}") for n in range(count)]

    leader = await replicas.leader()

    roles = await replicas.roles()
    assert sorted(roles.values(), key=str) == ["leader"] + ["standby"] * (count - 1), roles
    assert leader is started[0], "the first to start took the free lease"
    assert [await replica.metric("dcs_bot_leader") for replica in started] == [1.0] + [0.0] * (count - 1)


async def test_a_command_on_one_replica_and_its_click_on_another_make_one_backup(replicas: Replicas) -> None:
    a = await replicas.start("a")
    b = await replicas.start("b")

    card = await a.slack.card('redis-prod aof "across replicas"')
    assert await b.slack.click(card, "backup_confirm") == 200
    started = await b.slack.channel_message(OPS)
    [backup] = replicas.stand_ins.dcs.backups_of(replicas.stand_ins.prod.instance_id)
    assert backup.backup_id in started.shown
    # Followed by the leader (a), whichever replica submitted it.
    [finished] = await a.slack.thread_replies(started.ts)

    assert is_success(finished, backup.backup_id)
    await until(
        lambda: _state_is(replicas.database, "across replicas", RequestState.FINISHED), "the request finished"
    )
    assert a.slack.backups_created() == 1
    assert replicas.stand_ins.slack.thread(OPS, started.ts) == [finished]
    await assert_the_audit_trail_is_append_only(replicas.database)


async def assert_the_audit_trail_is_append_only(database: SharedDatabase) -> None:
    """The trail the replicas wrote can be added to, never changed or emptied, by anyone."""
    assert await database.operator.fetch_value("SELECT count(*) FROM audit") > 0
    changes = ["UPDATE audit SET outcome = 'forged'", "DELETE FROM audit"]
    if database.operator.dialect == "postgresql":
        changes.append("TRUNCATE audit")  # SQLite has none; its DELETE without WHERE is refused above
    for change in changes:
        with pytest.raises(DATABASE_ERRORS, match="append-only"):
            await database.operator.execute(change)


async def test_six_simultaneous_clicks_spread_over_two_replicas_make_one_backup(replicas: Replicas) -> None:
    a = await replicas.start("a")
    b = await replicas.start("b")
    slack = replicas.stand_ins.slack
    card = await a.slack.card('redis-prod aof "six clicks"')
    clicks = [slack.build_click(user_id=ALICE, message=card, action_id="backup_confirm")[0] for _ in range(6)]

    answers = await asyncio.gather(
        *(slack.send_interactive((a, b)[n % 2].slack.bot_url, click) for n, click in enumerate(clicks))
    )

    assert [answer.status for answer in answers] == [200] * 6
    started = await a.slack.channel_message(OPS)
    # The card, replaced by the winner, and one refusal for each of the five other clicks.
    await a.slack.reply_to(ALICE, 6)
    assert a.slack.backups_created() == 1
    assert slack.channel_messages(OPS) == [started]
    assert all("already confirmed" in message.shown for message in slack.ephemeral_for(ALICE)[1:])


async def test_the_leader_killed_mid_backup_is_replaced_and_the_outcome_announced_once(
    replicas_factory: ReplicasFactory,
) -> None:
    clock = ManualClock()
    replicas = await replicas_factory(dcs_clock=clock)
    dcs = replicas.stand_ins.dcs
    dcs.waiting_seconds, dcs.backuping_seconds = 5.0, 60.0
    a = await replicas.start("a")
    b = await replicas.start("b")
    assert await replicas.leader() is a

    card = await a.slack.card('redis-prod aof "outlives its leader"')
    assert await a.slack.click(card, "backup_confirm") == 200
    started = await a.slack.channel_message(OPS)
    await a.slack.more_polls(replicas.stand_ins.prod, 1)
    a.kill()
    assert await a.child.exit_code() == -signal.SIGKILL

    assert await replicas.leader([b]) is b
    clock.advance(65)
    [finished] = await b.slack.thread_replies(started.ts)

    [backup] = dcs.backups_of(replicas.stand_ins.prod.instance_id)
    assert is_success(finished, backup.backup_id)
    await until(
        lambda: _state_is(replicas.database, "outlives its leader", RequestState.FINISHED),
        "the request finished",
    )
    assert replicas.stand_ins.slack.thread(OPS, started.ts) == [finished]
    assert replicas.stand_ins.slack.channel_messages(OPS) == [started]
    assert b.slack.backups_created() == 1


async def test_a_paused_leader_that_lost_its_lease_does_not_announce_the_outcome_again(
    replicas_factory: ReplicasFactory,
) -> None:
    clock = ManualClock()
    gate = DcsGate(only="/backups")
    gate.open()
    replicas = await replicas_factory(dcs_clock=clock, dcs_gate=gate)
    dcs, prod = replicas.stand_ins.dcs, replicas.stand_ins.prod
    dcs.waiting_seconds, dcs.backuping_seconds = 5.0, 60.0
    # Longer than the pause: the paused leader's call in flight is answered, not timed out, when it wakes.
    a = await replicas.start("a", DCS_TIMEOUT="30")
    b = await replicas.start("b", DCS_TIMEOUT="30")
    card = await a.slack.card('redis-prod aof "paused leader"')
    assert await a.slack.click(card, "backup_confirm") == 200
    started = await a.slack.channel_message(OPS)
    await a.slack.more_polls(prod, 1)

    # The leader is paused in the middle of a poll cycle, its listing of the backup held at the door.
    gate.close()
    listings = len(gate.arrived)
    await until(lambda: _arrived_since(gate, listings, "GET "), "the leader's next listing")
    a.child.signal(signal.SIGSTOP)
    clock.advance(65)  # the backup ends meanwhile
    assert await replicas.leader([b]) is b
    gate.open()
    [finished] = await b.slack.thread_replies(started.ts)
    await until(lambda: _state_is(replicas.database, "paused leader", RequestState.FINISHED), "finished")

    # The old leader wakes up with the listing that shows the backup ended, and still posts nothing:
    # whichever comes first stops it — its renewal finding another holder, or the fence before the post
    # (tests/flow/test_leadership.py shows each on its own).
    a.child.signal(signal.SIGCONT)
    await until(lambda: _role_is(a, "standby"), "the old leader standing by")

    assert replicas.stand_ins.slack.thread(OPS, started.ts) == [finished]
    assert is_success(finished, dcs.backups_of(prod.instance_id)[0].backup_id)


async def test_a_replica_starting_during_another_ones_slow_post_leaves_that_submission_alone(
    replicas_factory: ReplicasFactory,
) -> None:
    gate = DcsGate(only="POST ")
    replicas = await replicas_factory(dcs_gate=gate)
    first = await replicas.start("first")
    maker = await replicas.start("maker")
    card = await maker.slack.card('redis-prod aof "slow post"')
    assert await maker.slack.click(card, "backup_confirm") == 200
    await gate.held("POST /v2/")

    late = await replicas.start("late")
    # The leader dies while the POST is held: a replica that started during it may lead now.
    first.kill()
    await replicas.leader([maker, late])
    # An earlier release's interrupted submission, seeded now: once the leader has settled it, it has
    # looked at every submission in flight — the held one too — at least once since taking over.
    stand_ins = replicas.stand_ins
    orphan = bot_request(stand_ins.single, state=RequestState.SUBMITTING, remark="left by an old release")
    await seed_requests(replicas.database, orphan)
    await until(
        lambda: _state_is(replicas.database, "left by an old release", RequestState.CHECKING),
        "the seeded orphan checked",
    )

    assert (await stored_states(replicas.database))["slow post"] == RequestState.SUBMITTING
    gate.open()
    started = await maker.slack.channel_message(OPS, count=2)

    [backup] = stand_ins.dcs.backups_of(stand_ins.prod.instance_id)
    assert backup.backup_id in started.shown and "redis-prod" in started.shown
    about_prod = [m for m in stand_ins.slack.channel_messages(OPS) if "redis-prod" in m.shown]
    assert about_prod == [started], "never told the channel it was checking the live replica's submission"
    assert late.slack.backups_created() == 1


async def test_a_replica_killed_mid_post_has_its_submission_settled_by_the_leader_without_a_restart(
    replicas_factory: ReplicasFactory,
) -> None:
    gate = DcsGate(only="POST ")
    replicas = await replicas_factory(dcs_gate=gate)
    leader = await replicas.start("leader")
    maker = await replicas.start("maker")
    card = await maker.slack.card('redis-prod aof "owner dies"')
    assert await maker.slack.click(card, "backup_confirm") == 200
    await gate.held("POST /v2/")

    maker.kill()
    assert await maker.child.exit_code() == -signal.SIGKILL
    checking = await leader.slack.channel_message(OPS)
    assert checking.shown.startswith(CHECKING) and "redis-prod" in checking.shown
    # The POST the dead replica sent is carried out after all: the leader finds the backup and adopts it.
    gate.open()
    adopted = await leader.slack.channel_message(OPS, count=2)

    [backup] = replicas.stand_ins.dcs.backups_of(replicas.stand_ins.prod.instance_id)
    assert backup.backup_id in adopted.shown
    assert leader.slack.backups_created() == 1


async def test_the_leader_shutting_down_cleanly_hands_the_lease_over(replicas: Replicas) -> None:
    a = await replicas.start("a")
    b = await replicas.start("b")
    assert await replicas.leader() is a

    a.child.signal(signal.SIGTERM)
    assert await a.child.exit_code() == 0

    assert any("released the lease of the background work" in line for line in a.child.stderr)
    assert await replicas.leader([b]) is b
    card = await b.slack.card('redis-prod aof "after the hand-over"')
    assert await b.slack.click(card, "backup_confirm") == 200
    started = await b.slack.channel_message(OPS)
    await b.slack.thread_replies(started.ts)


def is_success(message: Message, backup_id: str) -> bool:
    """Whether ``message`` tells that the backup ``backup_id`` of redis-prod succeeded."""
    shown = message.shown
    return shown.startswith(":white_check_mark: The backup of *redis-prod* succeeded") and backup_id in shown


async def _arrived_since(gate: DcsGate, count: int, method: str) -> bool:
    return any(seen.startswith(method) for seen in gate.arrived[count:])


async def _role_is(replica: Replica, role: str) -> bool:
    return await replica.role() == role


async def _state_is(database: SharedDatabase, remark: str, state: RequestState) -> bool:
    return (await stored_states(database)).get(remark) == state
