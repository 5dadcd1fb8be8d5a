"""The Home tab's flow on the fakes: what a snapshot gathers (and how little it asks DCS), when tabs are
published again (coalesced per person, only for recent viewers, bounded), and the store hook that tells."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.core.errors import DcsTransportError
from bot.core.flow.home import HomeContent
from bot.core.flow.home_refresh import HomeRefresh
from bot.core.flow.observed_requests import ObservedRequests
from bot.core.ports import Clock, CloudMap, RequestStore
from bot.core.rules.backup_request import BackupRequest, RequestEvent, RequestState
from bot.core.rules.home import HomeSnapshot
from bot.core.rules.messages import ClickRefused
from bot.core.rules.policy import Action, Policy, Rule, Watch
from tests.factories import (
    ALICE,
    BOB,
    LEAD,
    NOW,
    OPS,
    awaiting_approval,
    make_instance,
    make_record,
    make_request,
    submitted_request,
)
from tests.fakes import FakeClock, FakeDcs, FakeGroupDirectory, FakeHomeViewers, FakeRequestStore

PROD = make_instance("redis-prod", "11111111-0000-0000-0000-000000000001")
STAGING = make_instance("redis-staging", "11111111-0000-0000-0000-000000000002")
CACHE = make_instance("cache-x", "11111111-0000-0000-0000-000000000003")
POLICY = Policy(
    rules=(
        Rule(name="sre", users=(ALICE,), channels=(OPS,), instances=("redis-*",), actions=(Action.BACKUP,)),
        Rule(name="leads", groups=("SLEADS1",), instances=("cache-*",), actions=(Action.BACKUP,)),
    ),
    watch=(Watch(instances=("redis-*",), channel=OPS, stale_after_hours=24),),
)


def content(
    dcs: FakeDcs,
    requests: FakeRequestStore,
    *,
    groups: FakeGroupDirectory | None = None,
    shown: int = 40,
    clock: Clock | None = None,
) -> HomeContent:
    return HomeContent(
        clouds=CloudMap.single(dcs),
        requests=requests,
        groups=groups or FakeGroupDirectory({"SLEADS1": [LEAD]}),
        policy=lambda: POLICY,
        clock=clock or FakeClock(),
        shown=shown,
    )


# --- what a snapshot holds ------------------------------------------------------------------------------


async def test_a_snapshot_holds_what_the_person_may_back_up_with_its_last_success() -> None:
    dcs = FakeDcs(PROD, STAGING, CACHE)
    dcs.add_record(PROD.instance_id, make_record("b1", ended=NOW - timedelta(hours=1)))
    dcs.add_record(STAGING.instance_id, make_record("b2", ended=NOW - timedelta(days=3)))
    dcs.add_record(STAGING.instance_id, make_record("b3", "failed", ended=NOW))

    home = await content(dcs, FakeRequestStore()).snapshot(ALICE)

    [cloud] = home.clouds
    assert [i.instance.name for i in cloud.shown] == ["redis-prod", "redis-staging"]
    prod, staging = cloud.shown
    assert prod.last_success == NOW - timedelta(hours=1) and not prod.stale
    assert staging.last_success == NOW - timedelta(days=3) and staging.stale
    assert prod.where.channels == (OPS,)
    assert CACHE.instance_id not in home.shown_instance_ids


async def test_groups_grant_instances_and_approvals() -> None:
    dcs = FakeDcs(PROD, CACHE)
    requests = FakeRequestStore(awaiting_approval(requester=BOB, approvers=("SLEADS1",)))

    home = await content(dcs, requests).snapshot(LEAD)

    assert [i.instance.name for c in home.clouds for i in c.shown] == ["cache-x"]
    assert [r.request_id for r in home.awaiting] == ["r1"]
    assert home.groups == frozenset({"SLEADS1"})


async def test_running_and_recent_requests_are_the_persons_and_their_instances() -> None:
    requests = FakeRequestStore(
        submitted_request(request_id="mine", instance=PROD, requester=ALICE, now=NOW),
        submitted_request(request_id="theirs", instance=PROD, requester=BOB, now=NOW + timedelta(seconds=1)),
        submitted_request(request_id="elsewhere", instance=CACHE, requester=BOB),
        make_request(
            request_id="old", instance=STAGING, state=RequestState.CANCELLED, now=NOW - timedelta(1)
        ),
    )

    home = await content(FakeDcs(PROD, STAGING, CACHE), requests).snapshot(ALICE)

    assert {r.request_id for r in home.running} == {"mine", "theirs"}
    assert [r.request_id for r in home.recent] == ["mine", "old"]


async def test_dcs_is_asked_little_however_often_the_tab_opens() -> None:
    dcs = FakeDcs(
        *(make_instance(f"redis-{n:03d}", f"{n:08d}-0000-0000-0000-000000000000") for n in range(90))
    )
    gather = content(dcs, FakeRequestStore(), shown=10)

    for _ in range(3):
        home = await gather.snapshot(ALICE)

    assert home.clouds[0].total == 90 and len(home.clouds[0].shown) == 10
    assert len(dcs.calls_to("list_instances")) == 1
    assert len(dcs.calls_to("list_backups")) == 10


async def test_a_cloud_dcs_cannot_list_is_shown_as_unavailable() -> None:
    dcs = FakeDcs(PROD)
    dcs.fail("list_instances", DcsTransportError("connection refused"))

    home = await content(dcs, FakeRequestStore()).snapshot(ALICE)

    assert home.clouds[0].unavailable is not None and home.clouds[0].shown == ()


async def test_records_dcs_cannot_read_leave_the_last_success_unknown() -> None:
    dcs = FakeDcs(PROD)
    dcs.fail("list_backups", DcsTransportError("timeout"))

    home = await content(dcs, FakeRequestStore()).snapshot(ALICE)

    [item] = home.clouds[0].shown
    assert not item.records_known and not item.stale


async def test_a_backup_followed_to_success_is_the_last_success_without_asking_dcs() -> None:
    dcs = FakeDcs(PROD)
    gather = content(dcs, FakeRequestStore())
    await gather.snapshot(ALICE)
    finished = submitted_request(instance=PROD).with_state(
        RequestState.FINISHED, backup_status="succeed", finished_at=NOW + timedelta(minutes=1)
    )

    gather.saw(finished)
    home = await gather.snapshot(ALICE)

    assert home.clouds[0].shown[0].last_success == NOW + timedelta(minutes=1)
    assert len(dcs.calls_to("list_backups")) == 1


# --- publishing again -------------------------------------------------------------------------------------


class Publisher:
    def __init__(self) -> None:
        self.published: list[HomeSnapshot] = []

    async def publish(self, user_id: str, home: HomeSnapshot) -> bool:
        self.published.append(home)
        return True

    def of(self, user_id: str) -> list[HomeSnapshot]:
        return [home for home in self.published if home.user_id == user_id]


class Paced:
    """A clock for the refresher's pacing that moves only when it sleeps, and the tasks it spawned."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []
        self.tasks: set[asyncio.Task[None]] = set()

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> bool:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return True

    async def settle(self) -> None:
        while self.tasks:
            await asyncio.gather(*self.tasks)


class PacedClock:
    """The flow's and the database's clock, moving with a :class:`Paced` (or :class:`VirtualTime`)."""

    def __init__(self, paced: Paced | VirtualTime) -> None:
        self._paced = paced

    def now(self) -> datetime:
        return NOW + timedelta(seconds=self._paced.now)


def refresh(
    requests: FakeRequestStore,
    paced: Paced | VirtualTime,
    publisher: Publisher,
    viewers: FakeHomeViewers | None = None,
    **options: Any,
) -> HomeRefresh:
    clock = PacedClock(paced)
    return HomeRefresh(
        content(FakeDcs(PROD, STAGING, CACHE), requests, clock=clock),
        publisher,
        paced.spawn,
        clock,
        viewers or FakeHomeViewers(clock),
        monotonic=paced.monotonic,
        sleep=paced.sleep,
        **options,
    )


async def test_changes_in_quick_succession_make_one_publish_after_the_interval() -> None:
    paced, publisher, requests = Paced(), Publisher(), FakeRequestStore()
    tabs = refresh(requests, paced, publisher, min_interval=5.0)
    tabs.opened(ALICE)
    await paced.settle()

    for n in range(5):
        tabs.changed(submitted_request(request_id=f"r{n}", requester=ALICE))
    await paced.settle()

    assert len(publisher.of(ALICE)) == 2
    assert paced.slept == [5.0]


async def test_only_those_a_change_concerns_get_a_publish() -> None:
    paced, publisher, requests = Paced(), Publisher(), FakeRequestStore()
    tabs = refresh(requests, paced, publisher)
    for person in (ALICE, BOB, LEAD):
        tabs.opened(person)
    await paced.settle()

    tabs.changed(awaiting_approval(request_id="a1", requester=BOB, instance=CACHE, approvers=("SLEADS1",)))
    await paced.settle()

    assert [len(publisher.of(p)) for p in (ALICE, BOB, LEAD)] == [1, 2, 2]


async def test_people_who_opened_their_tab_long_ago_are_no_longer_followed() -> None:
    paced, publisher, requests = Paced(), Publisher(), FakeRequestStore()
    viewers = FakeHomeViewers(PacedClock(paced))
    tabs = refresh(requests, paced, publisher, viewers, viewer_ttl=timedelta(minutes=30))
    tabs.opened(LEAD)
    await paced.settle()

    paced.now += 31 * 60
    tabs.changed(submitted_request(requester=LEAD))
    await paced.settle()

    assert len(publisher.of(LEAD)) == 1
    assert viewers.asked == 1, "looked for"


async def test_only_the_latest_openers_are_followed() -> None:
    paced, publisher, requests = Paced(), Publisher(), FakeRequestStore()
    tabs = refresh(requests, paced, publisher, capacity=2)
    for person in (ALICE, BOB, LEAD):
        tabs.opened(person)
        await paced.settle()
        paced.now += 10

    tabs.changed(awaiting_approval(requester=ALICE, approvers=(BOB, LEAD)))
    await paced.settle()

    assert [len(publisher.of(p)) for p in (ALICE, BOB, LEAD)] == [1, 2, 2]


async def test_an_answer_to_a_home_tab_click_is_published_to_the_clicker() -> None:
    paced, publisher, requests = Paced(), Publisher(), FakeRequestStore()
    tabs = refresh(requests, paced, publisher)

    tabs.answer(BOB, ClickRefused("No."))
    await paced.settle()

    [home] = publisher.of(BOB)
    assert [note.reply for note in home.notes] == [ClickRefused("No.")]


async def test_a_snapshot_that_fails_leaves_the_tab_and_the_next_change_tries_again() -> None:
    paced, publisher = Paced(), Publisher()

    class Broken(FakeRequestStore):
        fail = True

        async def requested_by(self, user_id: str, *, limit: int = 10) -> list[BackupRequest]:
            if self.fail:
                raise RuntimeError("database is locked")
            return await super().requested_by(user_id, limit=limit)

    requests = Broken()
    tabs = refresh(requests, paced, publisher)
    tabs.opened(ALICE)
    await paced.settle()
    assert publisher.of(ALICE) == []

    requests.fail = False
    tabs.changed(submitted_request(requester=ALICE))
    await paced.settle()
    assert len(publisher.of(ALICE)) == 1


async def test_a_publish_waiting_for_its_interval_is_dropped_at_shutdown() -> None:
    paced, publisher, requests = Paced(), Publisher(), FakeRequestStore()
    never = asyncio.Event()

    async def long_sleep(seconds: float) -> None:
        await never.wait()

    paced.sleep = long_sleep  # type: ignore[method-assign]
    tabs = refresh(requests, paced, publisher)
    tabs.opened(ALICE)
    await paced.settle()
    tabs.changed(submitted_request(requester=ALICE))
    await asyncio.sleep(0)

    tabs.stop()
    await paced.settle()
    tabs.changed(submitted_request(request_id="r2", requester=ALICE))

    assert len(publisher.of(ALICE)) == 1 and not paced.tasks


# --- several replicas --------------------------------------------------------------------------------------


class VirtualTime:
    """Time for several refreshers at once: it moves on, to the next wake-up, only once every task waits."""

    def __init__(self) -> None:
        self.now = 0.0
        self._wakes: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self.tasks: set[asyncio.Task[None]] = set()

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._wakes, (self.now + seconds, next(self._order), woken))
        await woken

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> bool:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return True

    async def run(self, until: float | None = None) -> None:
        """Runs the tasks, moving time on whenever all of them wait, up to ``until`` (or until none is left
        waiting)."""
        while True:
            for _ in range(50):
                await asyncio.sleep(0)
            self._wakes = [wake for wake in self._wakes if not wake[2].done()]
            heapq.heapify(self._wakes)
            if not self._wakes:
                assert not self.tasks, "tasks that neither sleep nor end"
                return
            if until is not None and self._wakes[0][0] > until:
                self.now = until
                return
            when, _, woken = heapq.heappop(self._wakes)
            self.now = max(self.now, when)
            woken.set_result(None)


@dataclass
class Replicas:
    """Two replicas' refreshers on one store and one record of viewers; ``b`` changes requests."""

    time: VirtualTime
    requests: FakeRequestStore
    viewers: FakeHomeViewers
    a: HomeRefresh
    b: HomeRefresh
    published_by_a: Publisher
    published_by_b: Publisher
    b_requests: RequestStore


def two_replicas(**options: Any) -> Replicas:
    time, requests = VirtualTime(), FakeRequestStore()
    viewers = FakeHomeViewers(PacedClock(time))
    by_a, by_b = Publisher(), Publisher()
    a = refresh(requests, time, by_a, viewers, **options)
    b = refresh(requests, time, by_b, viewers, **options)
    return Replicas(time, requests, viewers, a, b, by_a, by_b, ObservedRequests(requests, b))


async def test_a_tab_opened_through_one_replica_is_published_by_the_replica_that_changes_what_it_shows() -> (
    None
):
    replicas = two_replicas()
    replicas.a.opened(ALICE)
    await replicas.time.run()
    [opened] = replicas.published_by_a.of(ALICE)
    assert opened.recent == ()

    await replicas.time.run(until=60)
    await replicas.b_requests.add(make_request(request_id="r1", requester=ALICE, instance=PROD))
    await replicas.time.run()

    [published] = replicas.published_by_b.of(ALICE)
    assert [r.request_id for r in published.recent] == ["r1"]
    assert PROD.instance_id in published.shown_instance_ids, "built by a replica that never saw her"
    assert replicas.published_by_a.of(ALICE) == [opened]


async def test_replica_b_matches_changes_by_what_the_tab_showed_through_replica_a() -> None:
    replicas = two_replicas()
    replicas.a.opened(ALICE)  # PROD is on her tab
    replicas.a.opened(LEAD)  # an approver through the group SLEADS1
    await replicas.time.run()

    await replicas.time.run(until=60)
    await replicas.b_requests.add(submitted_request(request_id="r1", requester=BOB, instance=PROD))
    await replicas.b_requests.add(
        awaiting_approval(request_id="r2", requester=BOB, instance=CACHE, approvers=("SLEADS1",))
    )
    await replicas.time.run()

    assert [r.request_id for r in replicas.published_by_b.of(ALICE)[-1].running] == ["r1"]
    assert [r.request_id for r in replicas.published_by_b.of(LEAD)[-1].awaiting] == ["r2"]


async def test_a_burst_of_changes_reads_who_is_looking_at_most_once_a_second() -> None:
    replicas = two_replicas(lookup_every=1.0)
    replicas.a.opened(ALICE)
    await replicas.time.run()

    # The first change is matched at once; the 19 made while that read runs, together a second later.
    for n in range(20):
        await replicas.b_requests.add(make_request(request_id=f"r{n}", requester=ALICE))
    await replicas.time.run()

    assert replicas.viewers.asked == 2
    assert len(replicas.published_by_b.of(ALICE)) == 1


async def test_a_change_made_during_a_read_of_who_is_looking_waits_for_the_next_read() -> None:
    replicas = two_replicas(lookup_every=1.0)
    replicas.a.opened(ALICE)
    await replicas.time.run()
    replicas.b.changed(make_request(request_id="r1", requester=BOB))
    await asyncio.sleep(0)  # the read has begun

    replicas.b.changed(make_request(request_id="r2", requester=ALICE))
    await replicas.time.run()

    assert replicas.viewers.asked == 2
    assert replicas.time.now >= 1.0
    assert len(replicas.published_by_b.of(ALICE)) == 1


async def test_two_replicas_publish_one_persons_tab_at_most_once_per_interval() -> None:
    replicas = two_replicas(min_interval=5.0)
    replicas.a.opened(ALICE)
    await replicas.time.run(until=0.5)

    await replicas.b_requests.add(make_request(request_id="r1", requester=ALICE))
    await replicas.time.run()

    [from_a] = replicas.published_by_a.of(ALICE)
    [from_b] = replicas.published_by_b.of(ALICE)
    assert from_b.at - from_a.at >= timedelta(seconds=5)
    assert [r.request_id for r in from_b.recent] == ["r1"]


async def test_a_publish_another_replica_made_meanwhile_stands_for_this_ones() -> None:
    replicas = two_replicas(min_interval=5.0)
    a_requests = ObservedRequests(replicas.requests, replicas.a)
    replicas.a.opened(ALICE)
    await replicas.time.run(until=1)
    await replicas.b_requests.add(make_request(request_id="r1", requester=ALICE))  # b waits: a just did
    await replicas.time.run(until=3)
    await a_requests.add(make_request(request_id="r2", requester=ALICE, now=NOW + timedelta(1)))
    await replicas.time.run()

    # a published again at 5 s, showing both; b, trying again after that, found nothing left to show.
    assert replicas.published_by_b.of(ALICE) == []
    _, second = replicas.published_by_a.of(ALICE)
    assert {r.request_id for r in second.recent} == {"r1", "r2"}


async def test_a_record_of_viewers_that_fails_still_keeps_this_replicas_own_tabs_current() -> None:
    replicas = two_replicas()
    replicas.viewers.fails = RuntimeError("database is locked")
    a_requests = ObservedRequests(replicas.requests, replicas.a)
    replicas.a.opened(ALICE)
    await replicas.time.run(until=60)

    await a_requests.add(make_request(request_id="r1", requester=ALICE))
    await replicas.time.run()

    assert [len(replicas.published_by_a.of(ALICE)), len(replicas.published_by_b.of(ALICE))] == [2, 0]


# --- the store hook ---------------------------------------------------------------------------------------


class Heard:
    def __init__(self) -> None:
        self.requests: list[BackupRequest] = []

    def changed(self, request: BackupRequest) -> None:
        self.requests.append(request)


async def test_the_observed_store_tells_of_additions_and_won_transitions_only() -> None:
    heard = Heard()
    store: RequestStore = ObservedRequests(FakeRequestStore(), heard)

    await store.add(make_request())
    won = await store.transition("r1", RequestEvent.CANCEL, now=NOW)
    lost = await store.transition("r1", RequestEvent.CANCEL, now=NOW)
    await store.update("r1", message_ts="1.2")

    assert won is not None and lost is None
    assert [r.state for r in heard.requests] == [RequestState.PENDING, RequestState.CANCELLED]


async def test_an_observer_that_fails_does_not_undo_the_change() -> None:
    class Failing:
        def changed(self, request: BackupRequest) -> None:
            raise RuntimeError("bug")

    inner = FakeRequestStore()
    store = ObservedRequests(inner, Failing())

    await store.add(make_request())

    assert await inner.get("r1") is not None


async def test_requested_by_lists_the_persons_requests_newest_first(requests: RequestStore) -> None:
    for n in range(4):
        await requests.add(make_request(request_id=f"a{n}", now=NOW + timedelta(minutes=n)))
    await requests.add(make_request(request_id="b0", requester=BOB))

    mine = await requests.requested_by(ALICE, limit=3)

    assert [r.request_id for r in mine] == ["a3", "a2", "a1"]
    assert [r.request_id for r in await requests.requested_by(BOB)] == ["b0"]
