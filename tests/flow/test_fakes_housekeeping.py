"""The housekeeping methods of the stores, fake and SQLite side by side (as in test_fakes): what is past
expiry, the expiry compare-and-set, pruning finished requests, and forgetting watch memory."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.core.ports import RequestStore, WatchStore
from bot.core.rules.backup_request import FINAL_STATES, RequestEvent, RequestState
from tests.factories import NOW, awaiting_approval, make_instance, make_request, submitted_request


async def test_past_expiry_lists_waiting_requests_whose_time_ran_out(requests: RequestStore) -> None:
    for request in (
        make_request(request_id="late", ttl=20),
        make_request(request_id="later", ttl=10),
        awaiting_approval(request_id="approval", ttl=30),
        make_request(request_id="at-the-moment", ttl=60),
        make_request(request_id="in-time", ttl=61),
        submitted_request(request_id="running", ttl=1),
        make_request(request_id="cancelled", ttl=1).with_state(RequestState.CANCELLED),
    ):
        await requests.add(request)
    now = NOW + timedelta(seconds=60)

    found = [r.request_id for r in await requests.past_expiry(now)]
    first_two = [r.request_id for r in await requests.past_expiry(now, limit=2)]

    assert found == ["later", "late", "approval", "at-the-moment"]
    assert first_two == ["later", "late"]


@pytest.mark.parametrize(("seconds", "allowed"), [(-1, False), (-0.001, False), (0, True), (1, True)])
async def test_expired_means_at_or_after_expires_at(
    requests: RequestStore, seconds: float, allowed: bool
) -> None:
    request = make_request(ttl=300)
    await requests.add(request)
    at = request.expires_at + timedelta(seconds=seconds)

    changed = await requests.transition("r1", RequestEvent.EXPIRE, now=at, expired=True)

    assert (changed is not None) is allowed
    current = await requests.get("r1")
    assert current is not None
    assert current.state == (RequestState.EXPIRED if allowed else RequestState.PENDING)


async def test_prune_deletes_final_requests_that_ended_before_the_cutoff(requests: RequestStore) -> None:
    cutoff = NOW
    before, after = NOW - timedelta(seconds=1), NOW + timedelta(seconds=1)
    finals = sorted(FINAL_STATES)
    for n, state in enumerate(finals):
        old = make_request(request_id=f"old-{n}", now=before).with_state(state, updated_at=before)
        await requests.add(old)
    await requests.add(
        make_request(request_id="finished-at", now=before).with_state(
            RequestState.FINISHED, updated_at=after, finished_at=before
        )
    )
    lately = make_request(request_id="updated-lately", now=before)
    await requests.add(lately.with_state(RequestState.CANCELLED, updated_at=after))
    await requests.add(make_request(request_id="never-updated", now=before).with_state(RequestState.EXPIRED))
    await requests.add(make_request(request_id="at-the-cutoff", now=cutoff).with_state(RequestState.REJECTED))
    for n, state in enumerate(sorted(set(RequestState) - FINAL_STATES)):
        # Each its own instance: one instance has at most one unsettled request (PostgreSQL enforces it).
        instance = make_instance(f"redis-open-{n}", f"{n:08d}-2222-3333-4444-555555555555")
        await requests.add(
            make_request(request_id=f"open-{state}", instance=instance, now=before).with_state(state)
        )

    deleted = await requests.prune(cutoff)

    assert deleted == len(finals) + 2
    left = {r.request_id for r in await requests.in_states(*RequestState)}
    assert left == {"updated-lately", "at-the-cutoff"} | {
        f"open-{state}" for state in set(RequestState) - FINAL_STATES
    }
    assert await requests.prune(cutoff) == 0


async def test_forget_drops_old_memory_and_moves_the_start_of_watching(watch: WatchStore) -> None:
    old, cutoff = NOW - timedelta(days=100), NOW - timedelta(days=90)
    await watch.state("C1", "i-old", "redis-old", old)
    await watch.state("C1", "i-new", "redis-new", NOW)
    await watch.remember("C1", "b-old", "i-old", "succeed", announced=True, now=old)
    await watch.remember("C1", "b-cutoff", "i-old", "succeed", announced=False, now=cutoff)
    await watch.remember("C2", "b-old", "i-old", "failed", announced=True, now=old)

    forgotten = await watch.forget(cutoff)

    assert forgotten == 2
    assert await watch.seen("C1", ["b-old", "b-cutoff"]) == {"b-cutoff"}
    assert await watch.seen("C2", ["b-old"]) == set()
    assert (await watch.state("C1", "i-old", "redis-old", NOW)).watching_since == cutoff
    assert (await watch.state("C1", "i-new", "redis-new", NOW)).watching_since == NOW
    # Forgotten means it can be remembered again (once).
    assert await watch.remember("C1", "b-old", "i-old", "succeed", announced=False, now=NOW)
    assert not await watch.remember("C1", "b-old", "i-old", "succeed", announced=False, now=NOW)
