"""Cost that grows with the work: the watched estate is listed on its own interval, apart from following
the bot's own backups, and all background polling of a cloud shares that cloud's budget of DCS calls per
second, the bot's own backups first; one cloud's polling never waits for another's. On the fakes, with the
fake clock: no test here measures real time."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from bot.core.flow.call_budget import CallBudget, CloudBudgets, Priority
from bot.core.flow.tracker import Tracker, TrackerOptions
from bot.core.ports import CloudMap
from bot.core.rules.instances import BackupPage, Instance
from tests.factories import NOW, make_instance, submitted_request
from tests.fakes import DcsCall, FakeClock, FakeDcs, Fakes, make_fakes

POLL = 15.0
WATCH = 300.0
WATCH_ALL = """
[[watch]]
instances = ["redis-*"]
channel = "CALERTS1"
stale_after_hours = 26
"""


def estate(count: int) -> list[Instance]:
    return [make_instance(f"redis-{n:03d}", f"{n:08d}-2222-3333-4444-555555555555") for n in range(count)]


def budget_on(clock: FakeClock, rate: float, **kwargs: float) -> CallBudget:
    """A budget whose time is the fake clock's, and whose waits move that clock."""

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)
        await asyncio.sleep(0)

    return CallBudget(rate, monotonic=lambda: (clock.now() - NOW).total_seconds(), sleep=sleep, **kwargs)


def budgets_on(clock: FakeClock, rate: float, **kwargs: float) -> CloudBudgets:
    """One budget per cloud on the fake clock (see :func:`budget_on`)."""

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)
        await asyncio.sleep(0)

    return CloudBudgets(rate, monotonic=lambda: (clock.now() - NOW).total_seconds(), sleep=sleep, **kwargs)


def tracker(
    fakes: Fakes, *, budgets: CloudBudgets | None = None, watch_interval: float | None = WATCH
) -> Tracker:
    return Tracker(
        dcs=fakes.dcs,
        requests=fakes.requests,
        watch=fakes.watch,
        notifier=fakes.notifier,
        audit=fakes.audit,
        policy=lambda: fakes.policy,
        clock=fakes.clock,
        options=TrackerOptions(interval=POLL, watch_interval=watch_interval),
        budgets=budgets,
    )


def listings(fakes: Fakes) -> Counter[str | None]:
    return Counter(call.instance_id for call in fakes.dcs.calls_to("list_backups"))


async def run_cycles(fakes: Fakes, track: Tracker, cycles: int) -> None:
    for _ in range(cycles):
        await track.cycle()
        fakes.clock.advance(POLL)


async def follow(fakes: Fakes, instance: Instance, request_id: str) -> None:
    await fakes.requests.add(
        submitted_request(
            request_id=request_id,
            backup_id=f"b-{request_id}",
            instance_id=instance.instance_id,
            instance_name=instance.name,
        )
    )


# --- the watch on its own interval -------------------------------------------------------------------


async def test_a_watched_only_instance_is_listed_once_per_watch_interval() -> None:
    instances = estate(4)
    fakes = make_fakes(WATCH_ALL, *instances)
    # 60 cycles of 15 s: three watch intervals of 300 s.
    await run_cycles(fakes, tracker(fakes), 60)

    counts = listings(fakes)
    assert set(counts) == {i.instance_id for i in instances}
    # Once at the start, then once per interval; the first round spreads them over the first interval.
    assert all(3 <= counts[i.instance_id] <= 4 for i in instances), counts
    # Today's baseline would have listed each one on every cycle.
    assert sum(counts.values()) <= 16


async def test_after_the_first_round_the_watch_listings_spread_over_the_interval() -> None:
    fakes = make_fakes(WATCH_ALL, *estate(20))
    track = tracker(fakes)
    await track.cycle()  # the first round: every instance at once
    fakes.clock.advance(POLL)
    per_cycle = []
    for _ in range(40):
        before = len(fakes.dcs.calls_to("list_backups"))
        await track.cycle()
        per_cycle.append(len(fakes.dcs.calls_to("list_backups")) - before)
        fakes.clock.advance(POLL)

    # 20 instances over 20 cycles of one watch interval: one or two a cycle, never all 20 together.
    assert max(per_cycle) <= 2
    assert sum(per_cycle) == 40  # each listed twice in two intervals


async def test_a_followed_instance_is_listed_every_cycle_and_its_page_serves_its_watch() -> None:
    followed, watched_only = estate(2)
    fakes = make_fakes(WATCH_ALL, followed, watched_only)
    await follow(fakes, followed, "r1")
    await follow(fakes, followed, "r2")
    await run_cycles(fakes, tracker(fakes), 40)

    counts = listings(fakes)
    # One listing per cycle for both followed backups and the watch of that instance …
    assert counts[followed.instance_id] == 40
    # … and the watched-only one once per interval (two intervals; the first round spreads it).
    assert counts[watched_only.instance_id] <= 3
    # The shared page served the watch: the instance has no backup that succeeded, so it is told stale.
    stale = [n for n in fakes.notifier.announcements if "redis-000" in str(n.notice)]
    assert stale


async def test_without_a_watch_interval_the_estate_is_listed_every_cycle() -> None:
    fakes = make_fakes(WATCH_ALL, *estate(3))
    await run_cycles(fakes, tracker(fakes, watch_interval=None), 10)
    assert set(listings(fakes).values()) == {10}


# --- the call budget ---------------------------------------------------------------------------------


async def test_the_budget_bounds_calls_per_second_on_the_fake_clock() -> None:
    clock = FakeClock()
    budget = budget_on(clock, 10, burst=5)
    times = []
    for _ in range(105):
        await budget.acquire()
        times.append((clock.now() - NOW).total_seconds())

    # The burst at once, then one call every tenth of a second.
    assert times[4] == 0
    assert abs(times[-1] - 10.0) < 1e-6
    for start in range(len(times)):
        within_a_second = [t for t in times[start:] if t < times[start] + 1 - 1e-9]
        assert len(within_a_second) <= 10 + 5


async def test_when_calls_wait_for_tokens_the_bot_s_own_backups_go_first() -> None:
    clock = FakeClock()
    budget = budget_on(clock, 1, burst=1)
    await budget.acquire()  # the bucket is empty now
    order: list[str] = []

    async def call(name: str, priority: Priority) -> None:
        await budget.acquire(priority)
        order.append(name)

    await asyncio.gather(
        call("watch 1", Priority.WATCH),
        call("watch 2", Priority.WATCH),
        call("follow 1", Priority.FOLLOW),
        call("follow 2", Priority.FOLLOW),
    )
    assert order == ["follow 1", "follow 2", "watch 1", "watch 2"]


async def test_a_big_estate_is_polled_more_slowly_with_the_followed_ones_first() -> None:
    instances = estate(30)
    fakes = make_fakes(WATCH_ALL, *instances)
    followed = instances[:5]
    for n, instance in enumerate(followed):
        await follow(fakes, instance, f"r{n}")
    # Half a call per second: 7 calls in a 15-s interval, five of them for the followed backups.
    track = tracker(fakes, budgets=budgets_on(fakes.clock, 0.5, burst=1))
    before = fakes.clock.now()
    await track.cycle()

    calls = [
        call.instance_id for call in fakes.dcs.calls if call.method in ("list_backups", "list_instances")
    ]
    # The watch's instance list, then the followed instances, then what the budget has left for the watch.
    assert calls[0] is None
    assert set(calls[1:6]) == {i.instance_id for i in followed}
    assert len(calls[6:]) == 2
    # The budget paced them: 8 calls at half a call per second, the first one from the burst.
    assert (fakes.clock.now() - before).total_seconds() == 14

    # Cycle after cycle the watch still gets through the whole estate, only more slowly.
    fakes.clock.advance(POLL)
    await run_cycles(fakes, track, 15)
    assert {i.instance_id for i in instances} <= set(listings(fakes))
    assert all(listings(fakes)[i.instance_id] == 16 for i in followed)


async def test_user_commands_do_not_take_from_the_budget() -> None:
    clock = FakeClock()
    budgets = budgets_on(clock, 1, burst=1)
    fakes = make_fakes(WATCH_ALL, *estate(1), clock=clock)
    await tracker(fakes, budgets=budgets).cycle()
    granted = budgets.granted
    await fakes.dcs.show_instance(estate(1)[0].instance_id)  # what a command does: straight to DCS
    assert budgets.granted == granted == {"default": len(fakes.dcs.calls_to("list_backups")) + 1}


# --- one budget per cloud ----------------------------------------------------------------------------


class Stamped(FakeDcs):
    """A cloud that notes when (on the fake clock) each of its backup listings was asked for."""

    def __init__(self, *instances: Instance, clock: FakeClock) -> None:
        super().__init__(*instances, clock=clock)
        self.listed_at: list[float] = []

    async def list_backups(self, instance_id: str, **arguments: Any) -> BackupPage:
        self.listed_at.append((self.clock.now() - NOW).total_seconds())
        return await super().list_backups(instance_id, **arguments)


class Hanging(FakeDcs):
    """A cloud whose backup listings never answer."""

    async def list_backups(self, instance_id: str, **arguments: Any) -> BackupPage:
        self.calls.append(DcsCall("list_backups", instance_id, arguments))
        await asyncio.Event().wait()
        raise AssertionError("never answered")


def cloud_estate(prefix: str, count: int) -> list[Instance]:
    return [
        make_instance(f"redis-{prefix}-{n:03d}", f"{prefix}{n:06d}-2222-3333-4444-555555555555")
        for n in range(count)
    ]


async def follow_in(fakes: Fakes, cloud: str, instances: list[Instance]) -> None:
    for instance in instances:
        await fakes.requests.add(
            submitted_request(
                request_id=f"r-{instance.instance_id}",
                backup_id=f"b-{instance.instance_id}",
                instance=instance,
                cloud=cloud,
            )
        )


def two_cloud_tracker(fakes: Fakes, nl: FakeDcs, rate: float) -> Tracker:
    return Tracker(
        clouds=CloudMap({"eu-de": fakes.dcs, "eu-nl": nl}),
        requests=fakes.requests,
        watch=fakes.watch,
        notifier=fakes.notifier,
        audit=fakes.audit,
        policy=lambda: fakes.policy,
        clock=fakes.clock,
        options=TrackerOptions(interval=POLL, watch_interval=WATCH),
        budgets=budgets_on(fakes.clock, rate, burst=1),
    )


async def test_a_busy_cloud_s_polling_does_not_wait_for_another_cloud_s_tokens() -> None:
    busy = cloud_estate("10", 10)
    fakes = make_fakes("", *busy)
    quiet = cloud_estate("30", 1)
    nl = Stamped(*quiet, clock=fakes.clock)
    await follow_in(fakes, "eu-de", busy)
    await follow_in(fakes, "eu-nl", quiet)

    await two_cloud_tracker(fakes, nl, rate=1).cycle()

    assert len(fakes.dcs.calls_to("list_backups")) == 10
    # eu-nl's one call takes eu-nl's token at once; it does not wait behind eu-de's ten at one a second.
    assert nl.listed_at == [pytest.approx(0, abs=1)]


async def test_a_cloud_s_followed_backups_leave_another_cloud_s_watch_its_whole_budget() -> None:
    followed = cloud_estate("10", 7)
    fakes = make_fakes(WATCH_ALL, *followed)
    nl = FakeDcs(*cloud_estate("30", 10), clock=fakes.clock)
    await follow_in(fakes, "eu-de", followed)
    # Half a call per second: 7 calls in a 15-s interval in each cloud.
    await two_cloud_tracker(fakes, nl, rate=0.5).cycle()

    # eu-de spends its 7 on its followed backups; eu-nl's watch still gets its own 7.
    assert len(nl.calls_to("list_backups")) == 7


async def test_a_hanging_cloud_does_not_hold_up_another_cloud_s_polling() -> None:
    stuck = cloud_estate("10", 10)
    fakes = make_fakes("", *stuck)
    de = Hanging(*stuck, clock=fakes.clock)
    fakes.dcs = de
    nl = FakeDcs(*cloud_estate("30", 1), clock=fakes.clock)
    await follow_in(fakes, "eu-de", stuck)
    await follow_in(fakes, "eu-nl", list(nl.instances.values()))

    cycle = asyncio.ensure_future(two_cloud_tracker(fakes, nl, rate=100).cycle())
    for _ in range(50):
        await asyncio.sleep(0)
    try:
        # More of eu-de's calls hang than the tracker runs at once, and eu-nl is still listed.
        assert len(de.calls_to("list_backups")) >= TrackerOptions(interval=POLL).concurrency
        assert len(nl.calls_to("list_backups")) == 1
    finally:
        cycle.cancel()
