"""The Home tab across replicas (INTERFACE §9, §11), end to end: two bots in this process (two ``create_app``
apps, each its own HTTP server) on one database — a SQLite file and a PostgreSQL database — and one Slack
stand-in. A tab opened through replica A is published again by replica B when B changes a request it
shows: B learns who is looking from the database, never having seen the ``app_home_opened`` itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.rules.backup_request import RequestState
from tests.e2e.conftest import ALICE, StandInsFactory, World, WorldFactory
from tests.e2e.test_home_tab import home_views, text_of


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The ``BOT_DATABASE`` both replicas share."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "shared.sqlite3")


async def two_replicas(
    database: str, world_factory: WorldFactory, stand_ins_factory: StandInsFactory
) -> tuple[World, World]:
    stand_ins = await stand_ins_factory()
    a = await world_factory(stand_ins=stand_ins, bot_database=database)
    b = await world_factory(stand_ins=stand_ins, bot_database=database)
    return a, b


async def test_a_tab_opened_through_one_replica_follows_a_change_made_through_the_other(
    # The database first: set up before the bots, it is dropped only after they stopped.
    database: str,
    world_factory: WorldFactory,
    stand_ins_factory: StandInsFactory,
) -> None:
    a, b = await two_replicas(database, world_factory, stand_ins_factory)
    assert (await a.slack.open_home(a.bot_url, user_id=ALICE)).status == 200
    [opened] = await home_views(a, ALICE)
    assert "None yet." in text_of(opened)
    # A's own change is shown by A: the card Alice asked for through A.
    card = await a.card('redis-prod aof "home across replicas"')
    await a.slack.wait_until(
        lambda: "Waiting for confirmation" in text_of(a.slack.home_views(ALICE)[-1]),
        what="the pending request on Alice's Home tab",
    )
    published = len(a.slack.calls("views.publish"))

    # Cancelled through B, which never saw Alice open her tab: only B knows of this change.
    assert await b.click(card, "backup_cancel") == 200
    await b.slack.wait_until(
        lambda: "Cancelled" in text_of(b.slack.home_views(ALICE)[-1]),
        what="the cancelled request on Alice's Home tab, published by B",
    )

    [request] = await b.requests()
    assert request.state == RequestState.CANCELLED
    calls = b.slack.calls("views.publish")
    assert len(calls) > published and all(call.ok for call in calls)
    assert {call.params["user_id"] for call in calls} == {ALICE}
