"""The store's own cost on both databases: a confirmation (the conditional ``UPDATE … RETURNING`` of
``transition``) and an audit write (``record``, alone and as a group commit of 20), each timed one at a
time on an otherwise idle database, with the process's CPU per operation (the event loop, aiosqlite's
thread, asyncpg's client; not the PostgreSQL server's). PostgreSQL is a throwaway cluster started by
the same helper as the tests' fixture (tests/postgres.py); without PostgreSQL that half is skipped."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.stats import percentile
from bot.core.rules.audit import AuditEntry, AuditKind
from bot.core.rules.backup_request import RequestEvent
from bot.store.audit import SqlAuditLog
from bot.store.database import open_database
from bot.store.engine import Database
from bot.store.requests import SqlRequestStore
from tests import factories
from tests.postgres import PostgresUnavailableError, running_cluster

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
OPERATIONS = 1000
GROUP = 20


async def _timed(count: int, operation: Callable[[int], Awaitable[object]]) -> dict[str, float]:
    for n in range(min(50, count)):  # warm-up: statement caches, the pool, the WAL
        await operation(-1 - n)
    durations = []
    cpu = time.process_time()
    for n in range(count):
        started = time.perf_counter()
        await operation(n)
        durations.append(time.perf_counter() - started)
    cpu = time.process_time() - cpu
    return {
        "p50_ms": percentile(durations, 0.5) * 1000,
        "p99_ms": percentile(durations, 0.99) * 1000,
        "cpu_ms": cpu / count * 1000,
    }


async def measure(database: Database) -> dict[str, dict[str, float]]:
    store = SqlRequestStore(database)
    audit = SqlAuditLog(database, lambda: NOW)
    instance = factories.make_instance()
    ids = {n: f"bench-{n}" for n in range(-60, OPERATIONS)}
    for n, request_id in ids.items():
        # Each request its own instance, so that every confirmation is taken (none waits on another).
        target = factories.make_instance(instance.name, f"{n + 100:08d}-2222-3333-4444-555555555555")
        await store.add(factories.make_request(request_id=request_id, instance=target, now=NOW))

    async def confirm(n: int) -> None:
        taken = await store.transition(
            ids[n], RequestEvent.CONFIRM, now=NOW, unexpired=True, confirmed_by="U1"
        )
        assert taken is not None

    entry = AuditEntry(
        AuditKind.CONFIRMED, user_id="UALICE1", request_id="bench", detail={"text": "redis-prod"}
    )

    async def record(n: int) -> None:
        await audit.record(entry)

    async def record_group(n: int) -> None:
        await asyncio.gather(*(audit.record(entry) for _ in range(GROUP)))

    return {
        "confirm (transition)": await _timed(OPERATIONS, confirm),
        "audit record, alone": await _timed(OPERATIONS, record),
        f"audit record, {GROUP} at once (per group)": await _timed(OPERATIONS // 10, record_group),
    }


async def run() -> dict[str, dict[str, dict[str, float]] | str]:
    results: dict[str, dict[str, dict[str, float]] | str] = {}
    with tempfile.TemporaryDirectory() as folder:
        sqlite = await open_database(Path(folder) / "bench.sqlite3")
        try:
            results["sqlite"] = await measure(sqlite)
        finally:
            await sqlite.close()
    try:
        with running_cluster() as cluster:
            cluster.create_database("bench")
            postgres = await open_database(cluster.url("bench"))
            try:
                results["postgresql"] = await measure(postgres)
            finally:
                await postgres.close()
    except PostgresUnavailableError as error:
        results["postgresql"] = f"skipped: {error}"
    return results


def main() -> int:
    results = asyncio.run(run())
    print("| database | operation | p50 ms | p99 ms | CPU ms / op |\n|---|---|---:|---:|---:|")
    for dialect, measured in results.items():
        if isinstance(measured, str):
            print(f"| {dialect} | {measured} | | | |")
            continue
        for operation, figures in measured.items():
            print(
                f"| {dialect} | {operation} | {figures['p50_ms']:.3f} | {figures['p99_ms']:.3f}"
                f" | {figures['cpu_ms']:.3f} |"
            )
    print(json.dumps(results, indent=2))
    return 0
