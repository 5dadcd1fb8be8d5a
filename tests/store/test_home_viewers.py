"""Who is looking at their Home tab, on the fake, SQLite and PostgreSQL: the recent openers, latest first,
with what their tab last showed; one publish per person per interval however many replicas try at once;
old openers pruned."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.core.ports import HomeViewer, HomeViewers
from bot.store.database import open_database
from bot.store.engine import Database
from bot.store.home_viewers import SqlHomeViewers
from tests.fakes import FakeHomeViewers
from tests.store.conftest import DIALECTS

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

#: ``await handles()``: another replica's view of the same viewers (its own connection or pool).
Handles = Callable[[], Awaitable[HomeViewers]]


@pytest.fixture(params=["fake", *DIALECTS])
async def handles(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Handles]:
    if request.param == "fake":
        shared = FakeHomeViewers()

        async def fake() -> HomeViewers:
            return shared

        yield fake
        return
    target = (
        str(request.getfixturevalue("postgres_url"))
        if request.param == "postgresql"
        else str(tmp_path / "bot.sqlite3")
    )
    opened: list[Database] = []

    async def real() -> HomeViewers:
        opened.append(await open_database(target))
        return SqlHomeViewers(opened[-1])

    try:
        yield real
    finally:
        for database in opened:
            await database.close()


@pytest.fixture
async def viewers(handles: Handles) -> HomeViewers:
    return await handles()


async def test_recent_openers_are_listed_latest_first_with_what_they_were_shown(viewers: HomeViewers) -> None:
    await viewers.opened("UOLD", NOW - timedelta(minutes=40))
    await viewers.opened("UA", NOW - timedelta(minutes=5))
    await viewers.opened("UB", NOW - timedelta(minutes=1))
    await viewers.opened("UA", NOW)  # opened again
    await viewers.showed("UB", frozenset({"SLEADS1"}), frozenset({"i-1", "i-2"}))

    listed = await viewers.viewing(NOW - timedelta(minutes=30), limit=10)

    assert listed == [
        HomeViewer("UA"),
        HomeViewer("UB", frozenset({"SLEADS1"}), frozenset({"i-1", "i-2"})),
    ]
    assert await viewers.viewing(NOW - timedelta(minutes=30), limit=1) == [HomeViewer("UA")]


async def test_a_publish_is_taken_once_per_interval_and_records_an_unknown_clicker(
    viewers: HomeViewers,
) -> None:
    assert await viewers.claim_publish("UA", 60.0, NOW) is True
    assert await viewers.claim_publish("UA", 60.0, NOW) is False
    assert await viewers.claim_publish("UB", 60.0, NOW) is True, "per person"
    # The database's clock judges the interval: a moment ago is more than 0.01 s ago soon enough.
    await asyncio.sleep(0.02)
    assert await viewers.claim_publish("UA", 0.01, NOW) is True

    assert {v.user_id for v in await viewers.viewing(NOW, limit=10)} == {"UA", "UB"}


async def test_of_replicas_taking_a_publish_at_once_exactly_one_gets_it(handles: Handles) -> None:
    replicas = [await handles() for _ in range(4)]

    taken = await asyncio.gather(*(r.claim_publish("UA", 60.0, NOW) for r in replicas for _ in range(3)))

    assert taken.count(True) == 1


async def test_what_a_tab_showed_is_replaced_by_the_next_publish(viewers: HomeViewers) -> None:
    await viewers.opened("UA", NOW)
    await viewers.showed("UA", frozenset({"S1"}), frozenset({"i-1"}))
    await viewers.showed("UA", frozenset(), frozenset({"i-2", "i-3"}))
    await viewers.showed("UNOBODY", frozenset(), frozenset({"i-9"}))  # never opened: nothing recorded

    assert await viewers.viewing(NOW, limit=10) == [HomeViewer("UA", frozenset(), frozenset({"i-2", "i-3"}))]


async def test_pruning_forgets_who_opened_their_tab_before_the_cutoff(viewers: HomeViewers) -> None:
    for n in range(3):
        await viewers.opened(f"UOLD{n}", NOW - timedelta(hours=2))
    await viewers.opened("UNEW", NOW)

    assert await viewers.prune(NOW - timedelta(hours=1)) == 3
    assert await viewers.prune(NOW - timedelta(hours=1)) == 0
    assert [v.user_id for v in await viewers.viewing(NOW - timedelta(days=1), limit=10)] == ["UNEW"]
