"""The flow on in-memory fakes: a policy, a small DCS project, and helpers to type commands and click."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.core.flow.inputs import Click, Invocation
from bot.core.flow.service import BackupService
from bot.core.ports import Claimant, Lease, RequestStore, SubmissionClaims, WatchStore
from bot.core.rules.backup_request import BackupRequest
from bot.core.rules.grammar import FormCommand, UsageError, parse_command
from bot.core.rules.messages import Confirmation, Reply
from bot.store.claims import SqlSubmissionClaims
from bot.store.database import open_database
from bot.store.engine import Database
from bot.store.lease import SqlLease
from bot.store.requests import SqlRequestStore
from bot.store.watch import SqlWatchStore
from tests.factories import ALICE, BOB, LEAD, OPS, make_instance
from tests.fakes import (
    FakeLeaseTable,
    FakeRequestStore,
    Fakes,
    FakeSubmissionClaims,
    FakeWatchStore,
    make_fakes,
    service_on,
)
from tests.store.conftest import open_test_database

CAROL = "UCAROL1"  # in no rule
LEAD2 = "ULEAD2"
DANA = "UDANA1"  # approves through the user group SLEADS1
LEADS_GROUP = "SLEADS1"

PROD = make_instance("redis-prod", "11111111-2222-3333-4444-555555555555")
STAGING = make_instance("redis-staging", "22222222-2222-3333-4444-555555555555")
CRITICAL = make_instance("critical-payments", "33333333-2222-3333-4444-555555555555")
SINGLE = make_instance("redis-single", "44444444-2222-3333-4444-555555555555", cache_mode="single")

POLICY = f"""
[[rules]]
name = "critical"
users = ["{ALICE}", "{BOB}"]
instances = ["critical-*"]
actions = ["backup"]
approval = "peer"
approvers = ["{LEAD}", "{LEAD2}", "{ALICE}", "{LEADS_GROUP}"]

[[rules]]
name = "sre-prod"
users = ["{ALICE}", "{BOB}"]
instances = ["redis-*"]
actions = ["backup", "list", "status"]
"""

WITHOUT_ALICE = f"""
[[rules]]
name = "sre-prod"
users = ["{BOB}"]
instances = ["redis-*"]
actions = ["backup", "list", "status"]
"""


@dataclass
class Flow:
    """The service on the fakes, and what a person does in Slack, as calls."""

    fakes: Fakes
    service: BackupService

    async def command(self, text: str, *, user: str = ALICE, channel: str = OPS) -> Reply:
        parsed = parse_command(text)
        assert not isinstance(parsed, UsageError | FormCommand), parsed
        invocation = Invocation(user, user.lower(), channel, response_url(user, "command"), text)
        return await self.service.handle(parsed, invocation)

    async def card(self, text: str, *, user: str = ALICE) -> BackupRequest:
        """The request behind the confirmation card that ``text`` brings up."""
        reply = await self.command(text, user=user)
        assert isinstance(reply, Confirmation), reply
        return reply.request

    async def request(self, request_id: str) -> BackupRequest:
        request = await self.fakes.requests.get(request_id)
        assert request is not None
        return request


def response_url(user: str, what: str) -> str:
    return f"http://127.0.0.1:9/response/{what}/{user}"


def click(user: str, request: BackupRequest) -> Click:
    return Click(
        user_id=user, request_id=request.request_id, response_url=response_url(user, "click"), channel_id=OPS
    )


@pytest.fixture
def fakes() -> Fakes:
    return make_fakes(POLICY, PROD, STAGING, CRITICAL, SINGLE, groups={LEADS_GROUP: {DANA}})


@pytest.fixture
def flow(fakes: Fakes) -> Flow:
    return Flow(fakes, service_on(fakes))


# --- the stores, on the fakes, SQLite and PostgreSQL (the fakes' contract tests) ---------------------


@pytest.fixture(params=["fake", "sqlite", "postgresql"])
async def stores(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[RequestStore, WatchStore]]:
    if request.param == "fake":
        yield FakeRequestStore(), FakeWatchStore()
        return
    database = await open_test_database(request, request.param, tmp_path)
    try:
        yield SqlRequestStore(database), SqlWatchStore(database)
    finally:
        await database.close()


@pytest.fixture
def requests(stores: tuple[RequestStore, WatchStore]) -> RequestStore:
    return stores[0]


@pytest.fixture
def watch(stores: tuple[RequestStore, WatchStore]) -> WatchStore:
    return stores[1]


# --- replicas sharing one database, on the fakes, SQLite and PostgreSQL ------------------------------------


@dataclass(frozen=True)
class Replica:
    """What one replica has of the shared database: its lease, its request store (which records its
    claims) and its view of the claims."""

    lease: Lease
    requests: RequestStore
    claims: SubmissionClaims


#: ``await replicas("a", ttl)``: replica ``a``, whose lease and claims last ``ttl`` seconds.
ReplicaFactory = Callable[[str, float], Awaitable[Replica]]


@pytest.fixture(params=["fake", "sqlite", "postgresql"])
async def replicas(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ReplicaFactory]:
    """Replicas of one database: the fakes (on the wall clock, as the database's is), or one SQLite file
    or PostgreSQL database with a connection (a pool) per replica, as processes have."""
    if request.param == "fake":
        table = FakeLeaseTable()
        store = FakeRequestStore()

        async def fake(name: str, ttl: float) -> Replica:
            claimant = Claimant(name, ttl)
            return Replica(
                table.lease(name, ttl), store.replica(claimant), FakeSubmissionClaims(store, claimant)
            )

        yield fake
        return
    target = (
        str(request.getfixturevalue("postgres_url"))
        if request.param == "postgresql"
        else str(tmp_path / "bot.sqlite3")
    )
    opened: list[Database] = []

    async def real(name: str, ttl: float) -> Replica:
        database = await open_database(target)
        opened.append(database)
        claimant = Claimant(name, ttl)
        return Replica(
            SqlLease(database, holder=name, ttl=ttl),
            SqlRequestStore(database, claimant),
            SqlSubmissionClaims(database, claimant),
        )

    try:
        yield real
    finally:
        for database in opened:
            await database.close()
