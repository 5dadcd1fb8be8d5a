"""The Home tab's flow on the fakes: what a snapshot gathers (and how little it asks DCS), when tabs are
published again (coalesced per person, only for recent viewers, bounded), and the store hook that tells."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

from bot.core.errors import DcsTransportError
from bot.core.flow.home import HomeContent
from bot.core.flow.home_refresh import HomeRefresh
from bot.core.flow.observed_requests import ObservedRequests
from bot.core.ports import CloudMap, RequestStore
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
from tests.fakes import FakeClock, FakeDcs, FakeGroupDirectory, FakeRequestStore

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
    dcs: FakeDcs, requests: FakeRequestStore, *, groups: FakeGroupDirectory | None = None, shown: int = 40
) -> HomeContent:
    return HomeContent(
        clouds=CloudMap.single(dcs),
        requests=requests,
        groups=groups or FakeGroupDirectory({"SLEADS1": [LEAD]}),
        policy=lambda: POLICY,
        clock=FakeClock(),
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


def refresh(requests: FakeRequestStore, paced: Paced, publisher: Publisher, **options: Any) -> HomeRefresh:
    return HomeRefresh(
        content(FakeDcs(PROD, STAGING, CACHE), requests),
        publisher,
        paced.spawn,
        FakeClock(),
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
    tabs = refresh(requests, paced, publisher, viewers=2, viewer_ttl=timedelta(minutes=30))
    for person in (ALICE, BOB, LEAD):
        tabs.opened(person)
    await paced.settle()
    assert tabs.viewers == 2, "bounded: the one who opened longest ago is forgotten"

    paced.now += 31 * 60
    tabs.changed(submitted_request(requester=LEAD))
    await paced.settle()

    assert tabs.viewers == 0
    assert len(publisher.of(LEAD)) == 1


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
