"""Cost that grows with the work: the watched estate is listed on its own interval, apart from following
the bot's own backups, and all background polling shares one budget of DCS calls per second, the bot's
own backups first. On the fakes, with the fake clock: no test here measures real time."""

from __future__ import annotations

import asyncio
from collections import Counter

from bot.core.flow.call_budget import CallBudget, Priority
from bot.core.flow.tracker import Tracker, TrackerOptions
from bot.core.rules.instances import Instance
from tests.factories import NOW, make_instance, submitted_request
from tests.fakes import FakeClock, Fakes, make_fakes

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


def tracker(
    fakes: Fakes, *, budget: CallBudget | None = None, watch_interval: float | None = WATCH
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
        budget=budget,
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
    track = tracker(fakes, budget=budget_on(fakes.clock, 0.5, burst=1))
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
    budget = budget_on(clock, 1, burst=1)
    fakes = make_fakes(WATCH_ALL, *estate(1), clock=clock)
    await tracker(fakes, budget=budget).cycle()
    granted = budget.granted
    await fakes.dcs.show_instance(estate(1)[0].instance_id)  # what a command does: straight to DCS
    assert budget.granted == granted == len(fakes.dcs.calls_to("list_backups")) + 1
