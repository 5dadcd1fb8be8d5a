"""The lease and the submission claims keep the same promises on the fakes and on SQLite (INTERFACE §9):
one holder at a time, a new epoch with every new holder, expiry by the database's clock, a release that
frees the lease at once; claims recorded with the move into ``submitting``, renewed by their owner, and
orphaned only when their owner is gone."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from bot.core.rules.backup_request import RequestEvent, RequestState
from tests.factories import NOW, confirmed_request, make_instance, make_request
from tests.flow.conftest import ReplicaFactory

#: Long enough that nothing expires during a test; short ttls are only for the tests of expiry.
LONG = 60.0
SHORT = 0.2


async def eventually(condition: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Polls ``condition`` (the database's clock moves on its own) until it holds."""
    async with asyncio.timeout(timeout):
        while True:
            if await condition():
                return
            await asyncio.sleep(0.02)


# --- the lease --------------------------------------------------------------------------------------------


async def test_the_first_replica_takes_the_lease_and_renews_it_others_wait(replicas: ReplicaFactory) -> None:
    a, b = await replicas("a", LONG), await replicas("b", LONG)

    assert await a.lease.acquire() == 1
    assert await b.lease.acquire() is None
    assert await a.lease.acquire() == 1, "renewing keeps the epoch"
    assert await a.lease.holds(1)
    assert not await b.lease.holds(1)
    assert not await a.lease.holds(2)


async def test_of_replicas_trying_at_once_exactly_one_holds_the_lease(replicas: ReplicaFactory) -> None:
    every = [await replicas(f"r{n}", LONG) for n in range(5)]

    epochs = await asyncio.gather(*(replica.lease.acquire() for replica in every))

    assert sorted(epochs, key=str) == [1, None, None, None, None]


async def test_a_released_lease_goes_to_the_next_replica_at_once_under_a_new_epoch(
    replicas: ReplicaFactory,
) -> None:
    a, b = await replicas("a", LONG), await replicas("b", LONG)
    await a.lease.acquire()

    await b.lease.release(1)  # not b's to release
    assert await b.lease.acquire() is None
    await a.lease.release(1)

    assert not await a.lease.holds(1)
    assert await b.lease.acquire() == 2
    assert await a.lease.acquire() is None
    await a.lease.release(1)  # a's old term: nothing happens
    assert await b.lease.holds(2)


async def test_an_expired_lease_goes_to_a_standby_and_the_old_holder_is_fenced_off(
    replicas: ReplicaFactory,
) -> None:
    a, b = await replicas("a", SHORT), await replicas("b", LONG)
    assert await a.lease.acquire() == 1

    async def taken() -> bool:
        return await b.lease.acquire() is not None

    await eventually(taken)

    assert await b.lease.holds(2)
    assert not await a.lease.holds(1)
    assert await a.lease.acquire() is None


async def test_a_lease_that_ran_out_with_nobody_taking_it_is_taken_back_under_the_same_epoch(
    replicas: ReplicaFactory,
) -> None:
    a = await replicas("a", SHORT)
    assert await a.lease.acquire() == 1

    async def expired() -> bool:
        return not await a.lease.holds(1)

    await eventually(expired)

    assert await a.lease.acquire() == 1
    assert await a.lease.holds(1)


# --- the claims on submissions ------------------------------------------------------------------------------


async def test_the_move_into_submitting_claims_the_request_for_its_replica(replicas: ReplicaFactory) -> None:
    a, b = await replicas("a", LONG), await replicas("b", LONG)
    await a.requests.add(make_request())

    assert await a.requests.transition("r1", RequestEvent.CONFIRM, now=NOW, confirmed_by="U1") is not None

    assert await a.claims.orphaned() == []
    assert await b.claims.orphaned() == [], "a live replica's submission is nobody else's to settle"
    assert await a.claims.renew() == 1
    assert await b.claims.renew() == 0


async def test_a_submission_without_a_claim_is_orphaned(replicas: ReplicaFactory) -> None:
    a = await replicas("a", LONG)
    # As an earlier release, which recorded no claims, left it.
    await a.requests.add(confirmed_request(request_id="old", instance=make_instance()))

    assert await a.claims.orphaned() == ["old"]


async def test_a_claim_its_owner_stopped_renewing_is_orphaned_until_renewed(replicas: ReplicaFactory) -> None:
    a, b = await replicas("a", SHORT), await replicas("b", LONG)
    await a.requests.add(make_request())
    await a.requests.transition("r1", RequestEvent.CONFIRM, now=NOW)

    async def orphaned() -> bool:
        return await b.claims.orphaned() == ["r1"]

    await eventually(orphaned)

    assert await a.claims.orphaned() == [], "never a replica's own: it is alive"
    assert await a.claims.renew() == 1
    assert await b.claims.orphaned() == []


async def test_a_settled_submission_is_neither_renewed_nor_orphaned(replicas: ReplicaFactory) -> None:
    a, b = await replicas("a", SHORT), await replicas("b", LONG)
    await a.requests.add(make_request())
    await a.requests.transition("r1", RequestEvent.CONFIRM, now=NOW)
    await a.requests.transition("r1", RequestEvent.ACCEPTED, now=NOW, backup_id="b1")
    await asyncio.sleep(SHORT)

    assert await a.claims.renew() == 0
    assert await b.claims.orphaned() == []
    assert (await b.requests.get("r1")).state == RequestState.SUBMITTED  # type: ignore[union-attr]


async def test_the_move_of_an_orphan_to_checking_judges_its_claim_again(replicas: ReplicaFactory) -> None:
    a, b = await replicas("a", SHORT), await replicas("b", LONG)
    await a.requests.add(make_request())
    await a.requests.transition("r1", RequestEvent.CONFIRM, now=NOW)

    async def orphaned() -> bool:
        return await b.claims.orphaned() == ["r1"]

    await eventually(orphaned)
    # Between b's look and b's move, a (paused until now) renews its claim: the submission stays a's.
    assert await a.claims.renew() == 1
    assert await b.requests.transition("r1", RequestEvent.OUTCOME_UNKNOWN, now=NOW, orphaned=True) is None
    assert await a.requests.transition("r1", RequestEvent.OUTCOME_UNKNOWN, now=NOW, orphaned=True) is None, (
        "never a replica's own"
    )
    assert (await b.requests.get("r1")).state == RequestState.SUBMITTING  # type: ignore[union-attr]

    await eventually(orphaned)
    moved = await b.requests.transition("r1", RequestEvent.OUTCOME_UNKNOWN, now=NOW, orphaned=True)
    assert moved is not None and moved.state == RequestState.CHECKING


async def test_a_submission_without_a_claim_is_moved_as_an_orphan(replicas: ReplicaFactory) -> None:
    a = await replicas("a", LONG)
    await a.requests.add(confirmed_request(request_id="old", instance=make_instance()))

    moved = await a.requests.transition("old", RequestEvent.OUTCOME_UNKNOWN, now=NOW, orphaned=True)

    assert moved is not None and moved.state == RequestState.CHECKING
