"""The fake request and watch stores keep the promises of the SQLite ones, checked side by side: the same
calls give the same answers, so flow tests on the fakes say something about the real bot."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.core.ports import RequestStore, WatchStore
from bot.core.rules.backup_request import RequestEvent, RequestState
from bot.core.rules.grammar import BackupCommand, ListCommand
from bot.core.rules.instances import BackupFormat
from bot.core.rules.pick_offer import PickOffer
from tests.factories import NOW, make_request


async def test_of_concurrent_transitions_exactly_one_wins(requests: RequestStore) -> None:
    await requests.add(make_request())

    results = await asyncio.gather(
        *(requests.transition("r1", RequestEvent.CONFIRM, now=NOW, confirmed_by="U1") for _ in range(5))
    )

    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert winners[0].state == RequestState.SUBMITTING and winners[0].updated_at == NOW
    assert winners[0] == await requests.get("r1")


@pytest.mark.parametrize(("seconds", "allowed"), [(-1, True), (-0.001, True), (0, False), (1, False)])
async def test_unexpired_means_strictly_before_expires_at(
    requests: RequestStore, seconds: float, allowed: bool
) -> None:
    request = make_request(ttl=300)
    await requests.add(request)
    at = request.expires_at + timedelta(seconds=seconds)

    changed = await requests.transition("r1", RequestEvent.CONFIRM, now=at, unexpired=True)

    assert (changed is not None) is allowed
    assert (await requests.get("r1")).state == (  # type: ignore[union-attr]
        RequestState.SUBMITTING if allowed else RequestState.PENDING
    )


async def test_without_unexpired_an_expired_request_still_moves(requests: RequestStore) -> None:
    request = make_request(ttl=1)
    await requests.add(request)

    expired = await requests.transition(
        "r1", RequestEvent.EXPIRE, now=request.expires_at + timedelta(hours=1)
    )

    assert expired is not None and expired.state == RequestState.EXPIRED


async def test_events_follow_the_state_machine(requests: RequestStore) -> None:
    await requests.add(make_request())

    assert await requests.transition("r1", RequestEvent.APPROVE, now=NOW) is None
    assert await requests.transition("r1", RequestEvent.ASK_APPROVAL, now=NOW) is not None
    assert await requests.transition("r1", RequestEvent.CONFIRM, now=NOW) is None
    assert await requests.transition("r1", RequestEvent.APPROVE, now=NOW) is not None
    assert await requests.transition("r1", RequestEvent.ACCEPTED, now=NOW, backup_id="b1") is not None
    assert await requests.transition("r1", RequestEvent.CANCEL, now=NOW) is None
    assert await requests.transition("missing", RequestEvent.CANCEL, now=NOW) is None


async def test_unknown_fields_and_state_changes_through_update_are_refused(requests: RequestStore) -> None:
    await requests.add(make_request())

    with pytest.raises(ValueError, match="unknown request fields"):
        await requests.transition("r1", RequestEvent.CONFIRM, now=NOW, colour="red")
    with pytest.raises(ValueError, match="states change through transition"):
        await requests.update("r1", state=RequestState.FINISHED)
    with pytest.raises(ValueError, match="states change through transition"):
        await requests.update("r1", colour="red")
    assert (await requests.get("r1")).state == RequestState.PENDING  # type: ignore[union-attr]


async def test_update_and_queries(requests: RequestStore) -> None:
    await requests.add(make_request(request_id="r2", now=NOW + timedelta(seconds=1)))
    await requests.add(make_request(request_id="r1"))
    await requests.update("r2", backup_id="b2", message_ts="1.2")

    assert [r.request_id for r in await requests.in_states(RequestState.PENDING)] == ["r1", "r2"]
    assert await requests.in_states(RequestState.SUBMITTED) == []
    found = await requests.by_backup_id("b2")
    assert found is not None and (found.request_id, found.message_ts) == ("r2", "1.2")
    assert await requests.by_backup_id("nope") is None
    assert await requests.get("nope") is None


async def test_watch_state_begins_once_and_stale_is_compare_and_set(watch: WatchStore) -> None:
    first = await watch.state("C1", "i1", "redis-prod", NOW)
    again = await watch.state("C1", "i1", "redis-prod", NOW + timedelta(hours=1))
    assert first == again and first.watching_since == NOW and first.stale_since is None

    assert await watch.set_stale("C1", "i1", since=NOW, expected=None)
    assert not await watch.set_stale("C1", "i1", since=NOW, expected=None)
    assert not await watch.set_stale("C1", "other", since=NOW, expected=None)
    assert (await watch.state("C1", "i1", "redis-prod", NOW)).stale_since == NOW
    assert await watch.set_stale("C1", "i1", since=None, expected=NOW)


async def test_a_final_backup_is_remembered_once_per_channel(watch: WatchStore) -> None:
    assert await watch.remember("C1", "b1", "i1", "failed", announced=True, now=NOW)
    assert not await watch.remember("C1", "b1", "i1", "failed", announced=True, now=NOW)
    assert await watch.remember("C2", "b1", "i1", "failed", announced=False, now=NOW)

    assert await watch.seen("C1", ["b1", "b2"]) == {"b1"}
    assert await watch.seen("C1", []) == set()


async def test_a_pick_offer_is_found_by_its_person_channel_and_pick_only(requests: RequestStore) -> None:
    typed = BackupCommand("redis-prd", BackupFormat.AOF, "before the migration", dry_run=True)
    await requests.offer_picks(PickOffer("U1", "C1", typed, NOW), ["id-1", "eu-nl/id-2", "id-1"])
    since = NOW - timedelta(minutes=1)

    found = await requests.offered("U1", "C1", "eu-nl/id-2", since=since)

    assert found == PickOffer("U1", "C1", typed, NOW)
    assert found.picked("eu-nl/id-2") == BackupCommand(
        "eu-nl/id-2", BackupFormat.AOF, "before the migration", dry_run=True
    )
    assert await requests.offered("U2", "C1", "id-1", since=since) is None, "another person"
    assert await requests.offered("U1", "C2", "id-1", since=since) is None, "another channel"
    assert await requests.offered("U1", "C1", "id-3", since=since) is None, "not offered"
    assert await requests.offered("U1", "C1", "id-1", since=NOW + timedelta(seconds=1)) is None, "too old"


async def test_the_newest_offer_of_a_pick_wins_and_pruning_forgets_old_offers(requests: RequestStore) -> None:
    later = NOW + timedelta(minutes=5)
    await requests.offer_picks(PickOffer("U1", "C1", BackupCommand("redis-prd", None, None), NOW), ["id-1"])
    await requests.offer_picks(PickOffer("U1", "C1", ListCommand("redis-prd"), later), ["id-1", "id-2"])
    await requests.offer_picks(PickOffer("U1", "C1", ListCommand("x"), later), [])

    assert await requests.offered("U1", "C1", "id-1", since=NOW) == PickOffer(
        "U1", "C1", ListCommand("redis-prd"), later
    )
    await requests.offer_picks(PickOffer("U1", "C9", ListCommand("redis-prd"), NOW), ["id-1"])
    await requests.prune(NOW + timedelta(minutes=1))

    assert await requests.offered("U1", "C9", "id-1", since=NOW) is None
    assert await requests.offered("U1", "C1", "id-2", since=NOW) is not None
