"""Events API deliveries by event id, on the fake, SQLite and PostgreSQL: the first delivery is True,
every redelivery False, also when replicas get the same event at the same moment; old ones are pruned."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.core.ports import EventDeliveries
from bot.store.database import open_database
from bot.store.event_deliveries import SqlEventDeliveries
from tests.fakes import FakeEventDeliveries
from tests.store.conftest import DIALECTS, open_test_database

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["fake", *DIALECTS])
async def deliveries(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EventDeliveries]:
    if request.param == "fake":
        yield FakeEventDeliveries()
        return
    database = await open_test_database(request, request.param, tmp_path)
    try:
        yield SqlEventDeliveries(database)
    finally:
        await database.close()


async def test_the_first_delivery_is_taken_and_a_redelivery_is_not(deliveries: EventDeliveries) -> None:
    assert await deliveries.first_delivery("Ev01", NOW) is True
    assert await deliveries.first_delivery("Ev01", NOW + timedelta(seconds=3)) is False
    assert await deliveries.first_delivery("Ev02", NOW) is True


async def test_pruning_forgets_deliveries_received_before_the_cutoff(deliveries: EventDeliveries) -> None:
    for n in range(3):
        await deliveries.first_delivery(f"Old{n}", NOW - timedelta(hours=2))
    await deliveries.first_delivery("Recent", NOW)

    assert await deliveries.prune(NOW - timedelta(hours=1)) == 3
    assert await deliveries.prune(NOW - timedelta(hours=1)) == 0
    assert await deliveries.first_delivery("Old0", NOW) is True  # forgotten
    assert await deliveries.first_delivery("Recent", NOW) is False


async def test_replicas_given_the_same_event_at_once_take_it_once(postgres_url: str) -> None:
    opened = await asyncio.gather(*(open_database(postgres_url) for _ in range(4)))
    try:
        stores = [SqlEventDeliveries(database) for database in opened]
        for n in range(20):
            taken = await asyncio.gather(*(store.first_delivery(f"Ev{n}", NOW) for store in stores * 2))
            assert taken.count(True) == 1
    finally:
        await asyncio.gather(*(database.close() for database in opened))
