"""Several replicas on one PostgreSQL: each click arrives through its own connection (a pool of several),
at the same moment; the conditional update stays the arbiter."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

from bot.core.rules.backup_request import UNSETTLED_STATES, RequestEvent
from bot.store.database import open_database
from bot.store.engine import Database
from bot.store.requests import SqlRequestStore
from tests import factories

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
REPLICAS = 4


async def replicas(url: str) -> list[Database]:
    """Databases opened as separate replicas would open them (each its own pool)."""
    return list(await asyncio.gather(*(open_database(url) for _ in range(REPLICAS))))


async def test_many_confirmations_of_one_request_have_one_winner(postgres_url: str) -> None:
    opened = await replicas(postgres_url)
    try:
        stores = [SqlRequestStore(database) for database in opened]
        await stores[0].add(factories.make_request(request_id="r1", now=NOW))
        results = await asyncio.gather(
            *(
                stores[n % REPLICAS].transition(
                    "r1", RequestEvent.CONFIRM, now=NOW, unexpired=True, confirmed_by=f"U{n}X"
                )
                for n in range(24)
            )
        )
        winners = [result for result in results if result is not None]
        assert len(winners) == 1
        stored = await stores[1].get("r1")
        assert stored is not None and stored.confirmed_by == winners[0].confirmed_by
    finally:
        await asyncio.gather(*(database.close() for database in opened))


async def test_confirmations_of_different_requests_for_one_instance_leave_at_most_one_unsettled(
    postgres_url: str,
) -> None:
    opened = await replicas(postgres_url)
    try:
        stores = [SqlRequestStore(database) for database in opened]
        for round_ in range(10):
            instance = f"{round_:08d}-2222-3333-4444-555555555555"
            names = [f"r{round_}-{n}" for n in range(REPLICAS * 2)]
            for name in names:
                request = factories.make_request(request_id=name, now=NOW)
                await stores[0].add(replace(request, instance_id=instance))
            results = await asyncio.gather(
                *(
                    stores[n % REPLICAS].transition(name, RequestEvent.CONFIRM, now=NOW)
                    for n, name in enumerate(names)
                )
            )
            assert len([result for result in results if result is not None]) == 1, round_
            unsettled = await opened[0].fetch_value(
                "SELECT count(*) FROM requests WHERE instance_id = :instance AND state IN (:a, :b)",
                {"instance": instance} | dict(zip("ab", sorted(UNSETTLED_STATES), strict=True)),
            )
            assert unsettled == 1
    finally:
        await asyncio.gather(*(database.close() for database in opened))
