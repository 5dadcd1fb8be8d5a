"""Poll cost of the tracker as the estate grows: followed backups (five per instance) and the watch, at 20,
200 and 2,000 instances.

Runs the real tracker against the DCS emulator over HTTP on 127.0.0.1, with a real SQLite database, and
reports for each estate size the DCS calls per poll cycle and the time per cycle:

- *followed*: five followed backups of the bot's own requests per instance (1,000 over 200 instances);
- *watched*: a ``[[watch]]`` over every instance and no followed backups.

The tracker's clock is a step clock that moves one poll interval (15 s) per cycle, so a run of cycles
covers simulated time without waiting for it; the DCS calls, the emulator and SQLite are real. Waits the
call budget imposes advance the step clock too, and are reported as simulated seconds per cycle.

Each cloud has a budget of its own. The *two clouds* table shows what that buys: one cloud whose every
instance has followed backups (its budget is spent on them) beside one whose estate is only watched, with
each cloud's DCS calls per cycle and how many of the busy cloud's backup listings the watched cloud's
last listing of a cycle came after: once with a budget per cloud, once with one token bucket both share
(as before budgets were per cloud; the old code also split one interval's calls over both clouds, which
this comparison does not replay).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bot.core.flow.call_budget import DEFAULT_CALLS_PER_SECOND, CallBudget, CloudBudgets
from bot.core.flow.tracker import Tracker, TrackerOptions
from bot.core.ports import CloudMap, Delivered, UpdateResult
from bot.core.rules.audit import AuditEntry
from bot.core.rules.backup_request import BackupRequest, RequestState
from bot.core.rules.instances import BackupFormat, BackupPage
from bot.core.rules.messages import Notice, Reply
from bot.core.rules.policy import Policy
from bot.dcs.auth import AkSkAuth
from bot.dcs.client import DcsClient
from bot.policy_file import parse_policy
from bot.standins.dcs.control import DcsEmulator, start_emulator
from bot.store.database import open_database
from bot.store.requests import SqlRequestStore
from bot.store.watch import SqlWatchStore

SIZES = (20, 200, 2000)
TWO_CLOUD_SIZES = (20, 200)
BACKUPS_PER_INSTANCE = 5
POLL_INTERVAL = 15.0
WATCH_INTERVAL = 300.0
# Cycles measured: one watch interval's worth at the default 300 s (20 × 15 s); fewer for the largest
# followed estate, whose every cycle lists all of it.
CYCLES = 20
CYCLES_FOLLOWED_2000 = 5
WATCH_EVERYTHING = """
[[watch]]
instances = ["redis-bench-*"]
channel = "CWATCH1"
stale_after_hours = 26
"""


class StepClock:
    """The tracker's clock: moves only when the benchmark (or a budget wait) moves it."""

    def __init__(self) -> None:
        self.current = datetime.now(UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


class CountingNotifier:
    def __init__(self) -> None:
        self.notices = 0

    async def reply(self, response_url: str, reply: Reply, *, replace_original: bool = False) -> bool:
        return True

    async def announce(
        self,
        channel_id: str,
        notice: Notice,
        *,
        thread_ts: str | None = None,
        fallback_response_url: str | None = None,
        broadcast: bool = False,
    ) -> Delivered | None:
        self.notices += 1
        return Delivered()

    async def update_message(self, channel_id: str, ts: str, content: Notice | Reply) -> UpdateResult:
        return UpdateResult("updated")


class NoAudit:
    async def record(self, entry: AuditEntry) -> None:
        return None


def _constant(policy: Policy) -> Callable[[], Policy]:
    return lambda: policy


@dataclass(frozen=True)
class Row:
    instances: int
    scenario: str
    work: int
    calls_per_cycle: float
    max_calls: int
    cycle_ms: float
    cycle_ms_max: float
    waited_s: float


async def _follow_backups(
    store: SqlRequestStore, emulator: DcsEmulator, clock: StepClock, cloud: str | None = None
) -> int:
    now = clock.now()
    count = 0
    for instance in emulator.instances:
        for _ in range(BACKUPS_PER_INSTANCE):
            backup = emulator.add_backup(
                instance.instance_id, backup_type="manual", waiting_seconds=36000, backuping_seconds=36000
            )
            await store.add(
                BackupRequest(
                    request_id=f"bench-{cloud}-{count}",
                    requester_id="UBENCH1",
                    requester_name="bench",
                    channel_id="CBENCH1",
                    instance_id=instance.instance_id,
                    instance_name=instance.name,
                    backup_format=BackupFormat.RDB,
                    remark="bench",
                    rule="bench",
                    created_at=now,
                    expires_at=now + timedelta(minutes=5),
                    state=RequestState.SUBMITTED,
                    submitted_at=now,
                    backup_id=backup.backup_id,
                    cloud=cloud,
                )
            )
            count += 1
    return count


class SharedBudget(CloudBudgets):
    """One budget for every cloud: how the tracker was paced before each cloud had a budget of its own."""

    def of(self, cloud: str) -> CallBudget:
        return super().of("shared")


def tracker_extras(clock: StepClock, *, shared: bool = False) -> dict[str, Any]:
    """What this version of the tracker takes beyond the baseline's options: the default watch interval
    and the default call budgets (one per cloud, or with ``shared`` one for all), whose waits move the
    step clock."""
    start = clock.now()

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)
        await asyncio.sleep(0)

    kind = SharedBudget if shared else CloudBudgets
    budgets = kind(
        DEFAULT_CALLS_PER_SECOND, monotonic=lambda: (clock.now() - start).total_seconds(), sleep=sleep
    )
    return {"options": {"watch_interval": WATCH_INTERVAL}, "budgets": budgets}


def _client(session: aiohttp.ClientSession, running_url: str, emulator: DcsEmulator) -> DcsClient:
    return DcsClient(
        session,
        endpoint=running_url,
        project_id=emulator.project_id,
        auth=AkSkAuth(emulator.access_key, emulator.secret_key, emulator.project_id),
        timeout=30,
    )


class OrderedClient(DcsClient):
    """A DCS client that notes its cloud in a log shared by the clouds whenever it lists backups, so the
    order of the clouds' listings can be read across them."""

    cloud = ""
    order: list[str]

    async def list_backups(self, instance_id: str, **arguments: Any) -> BackupPage:
        self.order.append(self.cloud)
        return await super().list_backups(instance_id, **arguments)


def _ordered(
    session: aiohttp.ClientSession, url: str, emulator: DcsEmulator, cloud: str, order: list[str]
) -> DcsClient:
    client = OrderedClient(
        session,
        endpoint=url,
        project_id=emulator.project_id,
        auth=AkSkAuth(emulator.access_key, emulator.secret_key, emulator.project_id),
        timeout=30,
    )
    client.cloud, client.order = cloud, order
    return client


def _listings(emulator: DcsEmulator) -> int:
    return len(emulator.calls_to("list_backups")) + len(emulator.calls_to("list_instances"))


async def _scenario(size: int, scenario: str) -> Row:
    emulator = DcsEmulator()
    for index in range(size):
        emulator.add_instance(f"redis-bench-{index:04d}", cache_mode="ha")
    clock = StepClock()
    with tempfile.TemporaryDirectory() as folder:
        database = await open_database(Path(folder) / "bench.sqlite3")
        try:
            async with await start_emulator(emulator) as running, aiohttp.ClientSession() as session:
                store = SqlRequestStore(database)
                work = size
                if scenario == "followed":
                    work = await _follow_backups(store, emulator, clock)
                policy = parse_policy(WATCH_EVERYTHING if scenario == "watched" else "")
                client = _client(session, running.url, emulator)
                extras = tracker_extras(clock)
                options = TrackerOptions(interval=POLL_INTERVAL, **extras.pop("options", {}))
                tracker = Tracker(
                    dcs=client,
                    requests=store,
                    watch=SqlWatchStore(database),
                    notifier=CountingNotifier(),
                    audit=NoAudit(),
                    policy=_constant(policy),
                    clock=clock,
                    options=options,
                    **extras,
                )
                # The first cycle of a watch finds every instance stale and tells so once; not measured.
                await tracker.cycle()
                clock.advance(POLL_INTERVAL)
                durations, calls, waits = [], [], []
                for _ in range(CYCLES_FOLLOWED_2000 if (size, scenario) == (2000, "followed") else CYCLES):
                    before = _listings(emulator)
                    started_at, started = clock.now(), time.perf_counter()
                    await tracker.cycle()
                    durations.append(time.perf_counter() - started)
                    waits.append((clock.now() - started_at).total_seconds())
                    calls.append(_listings(emulator) - before)
                    clock.advance(POLL_INTERVAL)
                return Row(
                    size,
                    scenario,
                    work,
                    statistics.mean(calls),
                    max(calls),
                    statistics.median(durations) * 1000,
                    max(durations) * 1000,
                    statistics.mean(waits),
                )
        finally:
            await database.close()


@dataclass(frozen=True)
class TwoCloudRow:
    instances: int
    budget: str
    busy_calls: float
    busy_max: int
    quiet_calls: float
    quiet_max: int
    quiet_behind: float
    cycle_ms: float


async def _two_clouds(size: int, *, shared: bool) -> TwoCloudRow:
    """eu-de: ``size`` instances, each with followed backups; eu-nl: ``size`` instances, only watched."""
    busy, quiet = DcsEmulator(), DcsEmulator()
    for index in range(size):
        busy.add_instance(f"redis-bench-de-{index:04d}", cache_mode="ha")
        quiet.add_instance(f"redis-bench-nl-{index:04d}", cache_mode="ha")
    clock = StepClock()
    with tempfile.TemporaryDirectory() as folder:
        database = await open_database(Path(folder) / "bench.sqlite3")
        try:
            async with (
                await start_emulator(busy) as busy_running,
                await start_emulator(quiet) as quiet_running,
                aiohttp.ClientSession() as session,
            ):
                store = SqlRequestStore(database)
                await _follow_backups(store, busy, clock, cloud="eu-de")
                policy = parse_policy(WATCH_EVERYTHING.replace('"redis-bench-*"', '"redis-bench-nl-*"'))
                order: list[str] = []
                clouds = CloudMap(
                    {
                        "eu-de": _ordered(session, busy_running.url, busy, "eu-de", order),
                        "eu-nl": _ordered(session, quiet_running.url, quiet, "eu-nl", order),
                    }
                )
                extras = tracker_extras(clock, shared=shared)
                tracker = Tracker(
                    clouds=clouds,
                    requests=store,
                    watch=SqlWatchStore(database),
                    notifier=CountingNotifier(),
                    audit=NoAudit(),
                    policy=_constant(policy),
                    clock=clock,
                    options=TrackerOptions(interval=POLL_INTERVAL, **extras.pop("options")),
                    **extras,
                )
                await tracker.cycle()
                clock.advance(POLL_INTERVAL)
                durations, busy_calls, quiet_calls, behind = [], [], [], []
                for _ in range(CYCLES):
                    before_busy, before_quiet = _listings(busy), _listings(quiet)
                    order.clear()
                    started = time.perf_counter()
                    await tracker.cycle()
                    durations.append(time.perf_counter() - started)
                    busy_calls.append(_listings(busy) - before_busy)
                    quiet_calls.append(_listings(quiet) - before_quiet)
                    if "eu-nl" in order:
                        last = len(order) - 1 - order[::-1].index("eu-nl")
                        behind.append(order[:last].count("eu-de"))
                    clock.advance(POLL_INTERVAL)
                return TwoCloudRow(
                    size,
                    "one shared" if shared else "one per cloud",
                    statistics.mean(busy_calls),
                    max(busy_calls),
                    statistics.mean(quiet_calls),
                    max(quiet_calls),
                    statistics.mean(behind) if behind else 0.0,
                    statistics.median(durations) * 1000,
                )
        finally:
            await database.close()


def _print_two_clouds(rows: list[TwoCloudRow]) -> None:
    print(
        "\ntwo clouds: eu-de's instances all have followed backups (5 each), eu-nl's are only watched; "
        f"{CYCLES} cycles measured after a first one"
    )
    print(
        "| instances per cloud | budget | eu-de calls per cycle (mean / max) "
        "| eu-nl calls per cycle (mean / max) | eu-de listings before eu-nl's last (mean) "
        "| cycle ms (median) |"
    )
    print("|---:|---|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row.instances:,} | {row.budget} | {row.busy_calls:,.1f} / {row.busy_max:,} "
            f"| {row.quiet_calls:,.1f} / {row.quiet_max:,} | {row.quiet_behind:,.1f} | {row.cycle_ms:,.1f} |"
        )


def _print(rows: list[Row]) -> None:
    print(
        f"poll interval {POLL_INTERVAL:g} s, watch interval {WATCH_INTERVAL:g} s, budget "
        f"{DEFAULT_CALLS_PER_SECOND:g} calls/s; {CYCLES} cycles measured after a first one "
        "(calls = list_backups + list_instances)"
    )
    print(
        "| instances | scenario | followed backups / watched instances | DCS calls per cycle (mean / max) "
        "| cycle ms (median / max) | budget wait per cycle (simulated s) |"
    )
    print("|---:|---|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row.instances:,} | {row.scenario} | {row.work:,} | {row.calls_per_cycle:,.1f} / "
            f"{row.max_calls:,} | {row.cycle_ms:,.1f} / {row.cycle_ms_max:,.1f} | {row.waited_s:.1f} |"
        )


async def run() -> list[str]:
    rows = []
    for size in SIZES:
        for scenario in ("followed", "watched"):
            rows.append(await _scenario(size, scenario))
    _print(rows)
    two = [await _two_clouds(size, shared=shared) for size in TWO_CLOUD_SIZES for shared in (False, True)]
    _print_two_clouds(two)
    problems = []
    for row in rows:
        if row.scenario == "followed" and row.max_calls > row.instances:
            problems.append(f"{row.instances} instances, followed: {row.max_calls} calls in one cycle")
    return problems


def main() -> int:
    started = time.perf_counter()
    problems = asyncio.run(run())
    print(f"(polling section took {time.perf_counter() - started:.0f} s)")
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    return 1 if problems else 0
