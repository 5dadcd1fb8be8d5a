"""Poll cost of the tracker: 200 followed backups over 20 instances, plus a watch over all of them.

Reports DCS calls per cycle (which must stay one list call per instance) and cycle times. Runs the real
tracker against the DCS emulator over HTTP on 127.0.0.1, with a real SQLite database.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

from bot.clock import SystemClock
from bot.core.flow.tracker import Tracker, TrackerOptions
from bot.core.ports import Delivered
from bot.core.rules.audit import AuditEntry
from bot.core.rules.backup_request import BackupRequest, RequestEvent
from bot.core.rules.instances import BackupFormat
from bot.core.rules.messages import Notice, Reply
from bot.core.rules.policy import Policy
from bot.dcs.auth import AkSkAuth
from bot.dcs.client import DcsClient
from bot.policy_file import parse_policy
from bot.standins.dcs.control import DcsEmulator, start_emulator
from bot.store.database import open_database
from bot.store.requests import SqliteRequestStore
from bot.store.watch import SqliteWatchStore

INSTANCES = 20
BACKUPS_PER_INSTANCE = 10
CYCLES = 20
WATCH_EVERYTHING = """
[[watch]]
instances = ["redis-bench-*"]
channel = "CWATCH1"
stale_after_hours = 26
"""


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
    ) -> Delivered | None:
        self.notices += 1
        return Delivered()


class NoAudit:
    async def record(self, entry: AuditEntry) -> None:
        return None


def _constant(policy: Policy) -> Callable[[], Policy]:
    return lambda: policy


async def _follow_backups(store: SqliteRequestStore, emulator: DcsEmulator) -> int:
    now = datetime.now(UTC)
    count = 0
    for instance in emulator.instances:
        for _ in range(BACKUPS_PER_INSTANCE):
            backup = emulator.add_backup(
                instance.instance_id, backup_type="manual", waiting_seconds=3600, backuping_seconds=3600
            )
            request = BackupRequest(
                request_id=f"bench-{count}",
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
            )
            await store.add(request)
            await store.transition(request.request_id, RequestEvent.CONFIRM, now=now, submitted_at=now)
            await store.transition(
                request.request_id, RequestEvent.ACCEPTED, now=now, backup_id=backup.backup_id
            )
            count += 1
    return count


async def _measure(tracker: Tracker, emulator: DcsEmulator, label: str) -> list[str]:
    durations = []
    calls_per_cycle = []
    for _ in range(CYCLES):
        before = len(emulator.calls_to("list_backups"))
        started = time.perf_counter()
        await tracker.cycle()
        durations.append(time.perf_counter() - started)
        calls_per_cycle.append(len(emulator.calls_to("list_backups")) - before)
    problems = []
    if set(calls_per_cycle) != {INSTANCES}:
        problems.append(
            f"{label}: list calls per cycle were {sorted(set(calls_per_cycle))}, expected {INSTANCES}"
        )
    print(
        f"{label:<32} list calls/cycle {statistics.mean(calls_per_cycle):5.1f}   "
        f"cycle ms: min {min(durations) * 1000:6.1f}  median {statistics.median(durations) * 1000:6.1f}  "
        f"max {max(durations) * 1000:6.1f}"
    )
    return problems


async def run() -> list[str]:
    emulator = DcsEmulator()
    for index in range(INSTANCES):
        emulator.add_instance(f"redis-bench-{index:02d}", cache_mode="ha")
    with tempfile.TemporaryDirectory() as folder:
        database = await open_database(Path(folder) / "bench.sqlite3")
        try:
            async with await start_emulator(emulator) as running, aiohttp.ClientSession() as session:
                store = SqliteRequestStore(database)
                followed = await _follow_backups(store, emulator)
                client = DcsClient(
                    session,
                    endpoint=running.url,
                    project_id=emulator.project_id,
                    auth=AkSkAuth(emulator.access_key, emulator.secret_key, emulator.project_id),
                    timeout=10,
                )
                print(f"{followed} followed backups over {INSTANCES} instances, {CYCLES} cycles each")
                problems = []
                for label, policy_text in (
                    ("followed backups only", ""),
                    ("followed + watch on every instance", WATCH_EVERYTHING),
                ):
                    policy = parse_policy(policy_text)
                    tracker = Tracker(
                        dcs=client,
                        requests=store,
                        watch=SqliteWatchStore(database),
                        notifier=CountingNotifier(),
                        audit=NoAudit(),
                        policy=_constant(policy),
                        clock=SystemClock(),
                        options=TrackerOptions(interval=15),
                    )
                    problems += await _measure(tracker, emulator, label)
                return problems
        finally:
            await database.close()


def main() -> int:
    problems = asyncio.run(run())
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    return 1 if problems else 0
