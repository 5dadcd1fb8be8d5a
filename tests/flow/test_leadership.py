"""Leadership on the fakes (INTERFACE §9): one replica runs the background work; a standby takes over once
the lease runs out; a leader that lost the lease stops at once and — fenced — posts nothing; a clean
shutdown hands the lease over; the leader settles only the submissions whose owner is gone."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from bot.core.flow.claims import keep_claims
from bot.core.flow.leadership import FencedNotifier, Leadership, LeaseLost
from bot.core.flow.tracker import Tracker, TrackerOptions
from bot.core.ports import Claimant
from bot.core.rules.audit import AuditKind
from bot.core.rules.backup_request import RequestEvent, RequestState
from bot.core.rules.messages import BackupFinished, BackupStarted, InternalError, OutcomeChecking
from tests.factories import NOW, confirmed_request, make_record, make_request, submitted_request
from tests.fakes import FakeLeaseTable, Fakes, FakeSubmissionClaims, service_on
from tests.flow.conftest import PROD

TTL = 10.0


@dataclass
class Work:
    """Background work that runs until told to stop, noting how each term of it ended."""

    started: int = 0
    ended: list[str] = field(default_factory=list)

    def __call__(self, stop: asyncio.Event) -> Iterator[tuple[str, Coroutine[Any, Any, None]]]:
        self.started += 1
        yield "work", self._run(stop)

    async def _run(self, stop: asyncio.Event) -> None:
        try:
            await stop.wait()
        except asyncio.CancelledError:
            self.ended.append("cancelled")
            raise
        self.ended.append("stopped")


def replica(table: FakeLeaseTable, name: str, work: Work | None = None) -> Leadership:
    return Leadership(table.lease(name, TTL), ttl=TTL, work=work or Work())


async def settle() -> None:
    """Lets the tasks a term started run up to their first wait."""
    for _ in range(3):
        await asyncio.sleep(0)


@pytest.fixture
def table(fakes: Fakes) -> FakeLeaseTable:
    return FakeLeaseTable(fakes.clock)


async def test_of_two_replicas_one_leads_and_only_it_runs_the_background_work(table: FakeLeaseTable) -> None:
    work_a, work_b = Work(), Work()
    a, b = replica(table, "a", work_a), replica(table, "b", work_b)

    await a.start()
    await b.start()
    await b.try_once()

    assert (a.role, a.epoch, b.role, b.epoch) == ("leader", 1, "standby", None)
    assert (work_a.started, work_b.started) == (1, 0)
    await a.try_once()
    assert work_a.started == 1, "renewing the lease does not start the work again"


async def test_a_standby_takes_over_once_the_leaders_lease_runs_out(
    fakes: Fakes, table: FakeLeaseTable
) -> None:
    work_b = Work()
    a, b = replica(table, "a"), replica(table, "b", work_b)
    await a.start()
    await b.start()

    fakes.clock.advance(TTL / 2)
    await b.try_once()
    assert b.role == "standby"
    fakes.clock.advance(TTL / 2)  # a stopped renewing: it died
    await b.try_once()

    assert (b.role, b.epoch, work_b.started) == ("leader", 2, 1)


async def test_a_standby_tries_every_poll_interval_when_that_is_shorter_than_half_its_ttl() -> None:
    table = FakeLeaseTable()  # the wall clock: run() waits for real
    dead = Leadership(table.lease("a", 0.2), ttl=0.2, work=Work())
    await dead.start()
    leads = asyncio.Event()
    standby = Leadership(
        table.lease("b", 600.0),
        ttl=600.0,
        work=Work(),
        at_least_every=0.02,
        on_role=lambda role: leads.set() if role == "leader" else None,
    )
    await standby.start()
    stop = asyncio.Event()
    running = asyncio.create_task(standby.run(stop))
    try:
        await asyncio.wait_for(leads.wait(), 5)  # half of b's ttl would be 300 s
    finally:
        stop.set()
        await running


async def test_a_leader_that_finds_another_holder_stops_its_work_at_once(
    fakes: Fakes, table: FakeLeaseTable
) -> None:
    work_a = Work()
    a, b = replica(table, "a", work_a), replica(table, "b")
    await a.start()
    await settle()
    fakes.clock.advance(TTL)  # a was paused for a whole ttl
    await b.try_once()

    await a.try_once()

    assert (a.role, work_a.ended) == ("standby", ["cancelled"])
    assert b.role == "leader"


async def test_a_failed_renewal_stops_the_work_and_a_later_one_starts_it_again(table: FakeLeaseTable) -> None:
    work = Work()
    a = replica(table, "a", work)
    await a.start()
    await settle()

    table.fail_next = OSError("database is locked")
    await a.try_once()
    assert (a.role, work.ended) == ("standby", ["cancelled"])

    await a.try_once()
    assert (a.role, a.epoch, work.started) == ("leader", 1, 2)


async def test_a_clean_shutdown_lets_the_work_stop_and_hands_the_lease_over_at_once(
    table: FakeLeaseTable,
) -> None:
    work = Work()
    a, b = replica(table, "a", work), replica(table, "b")
    await a.start()
    stop = asyncio.Event()
    running = asyncio.create_task(a.run(stop))
    await settle()

    stop.set()
    await asyncio.wait_for(running, 5)

    assert (a.role, work.ended) == ("standby", ["stopped"])
    await b.try_once()
    assert (b.role, b.epoch) == ("leader", 2), "no wait for the ttl: the lease was released"


# --- fencing: the posts of the background work ------------------------------------------------------------


def fenced_tracker(fakes: Fakes, leadership: Leadership) -> Tracker:
    return Tracker(
        dcs=fakes.dcs,
        requests=fakes.requests,
        watch=fakes.watch,
        notifier=FencedNotifier(fakes.notifier, leadership),
        audit=fakes.audit,
        policy=lambda: fakes.policy,
        clock=fakes.clock,
        options=TrackerOptions(interval=15),
    )


async def a_finished_backup(fakes: Fakes) -> None:
    request = submitted_request(backup_id="b-1", message_ts="1700000000.000001", instance=PROD)
    await fakes.requests.add(request)
    fakes.dcs.add_record(
        PROD.instance_id, make_record("b-1", "succeed", instance_id=PROD.instance_id, ended=NOW)
    )


async def test_a_paused_leader_that_lost_the_lease_posts_nothing_and_the_new_one_announces_once(
    fakes: Fakes, table: FakeLeaseTable
) -> None:
    await a_finished_backup(fakes)
    work_a = Work()
    a, b = replica(table, "a", work_a), replica(table, "b")
    await a.start()
    await settle()
    # a is paused (it does not renew) for longer than the ttl; b takes over meanwhile.
    fakes.clock.advance(TTL + 1)
    await b.try_once()

    # a wakes up in the middle of a poll cycle, believing it still leads.
    with pytest.raises(LeaseLost):
        await fenced_tracker(fakes, a).cycle()
    assert fakes.notifier.notices_of(BackupFinished) == [] and fakes.notifier.updates == []
    await settle()
    assert (a.role, work_a.ended) == ("standby", ["cancelled"]), "the rest of a's term stops too"

    await fenced_tracker(fakes, b).cycle()
    assert len(fakes.notifier.notices_of(BackupFinished)) == 1
    assert (await fakes.requests.get("r1")).state == RequestState.FINISHED  # type: ignore[union-attr]
    await fenced_tracker(fakes, b).cycle()
    assert len(fakes.notifier.notices_of(BackupFinished)) == 1


async def test_a_paused_leader_that_lost_the_lease_leaves_the_living_message_to_the_new_one(
    fakes: Fakes, table: FakeLeaseTable
) -> None:
    request = submitted_request(backup_id="b-1", message_ts="1700000000.000001", instance=PROD)
    await fakes.requests.add(request)
    record = make_record("b-1", "backuping", instance_id=PROD.instance_id, progress="42.5")
    fakes.dcs.add_record(PROD.instance_id, record)
    a, b = replica(table, "a"), replica(table, "b")
    await a.start()
    fakes.clock.advance(TTL + 1)
    await b.try_once()

    with pytest.raises(LeaseLost):
        await fenced_tracker(fakes, a).cycle()
    assert fakes.notifier.updates == [], "the paused leader updated no message"

    await fenced_tracker(fakes, b).cycle()
    [update] = fakes.notifier.updates
    assert (update.channel_id, update.ts) == (request.channel_id, "1700000000.000001")
    assert isinstance(update.content, BackupStarted) and update.content.progress == "42.5"


async def test_a_lease_that_ran_out_with_nobody_taking_it_still_lets_the_leader_post(
    fakes: Fakes, table: FakeLeaseTable
) -> None:
    await a_finished_backup(fakes)
    a = replica(table, "a")
    await a.start()
    fakes.clock.advance(TTL + 1)  # a renewal came late; no other replica took the lease

    await fenced_tracker(fakes, a).cycle()

    assert len(fakes.notifier.notices_of(BackupFinished)) == 1
    assert (a.role, a.epoch) == ("leader", 1)


async def test_a_standby_posts_nothing_from_background_work(fakes: Fakes, table: FakeLeaseTable) -> None:
    await a_finished_backup(fakes)
    await replica(table, "a").start()
    b = replica(table, "b")
    await b.start()

    with pytest.raises(LeaseLost):
        await fenced_tracker(fakes, b).cycle()

    assert fakes.notifier.announcements == []


# --- submissions whose owner is gone ----------------------------------------------------------------------


async def test_the_leader_leaves_a_live_replicas_submission_alone_and_settles_it_once_its_owner_is_gone(
    fakes: Fakes,
) -> None:
    other = fakes.requests.replica(Claimant("b", TTL))
    await other.add(make_request(instance=PROD, remark="in flight"))
    await other.transition("r1", RequestEvent.CONFIRM, now=NOW, confirmed_by="UALICE1", submitted_at=NOW)
    claims = FakeSubmissionClaims(fakes.requests, Claimant("a", TTL))
    service = service_on(fakes)

    assert await service.settle_orphaned(claims) == []
    fakes.clock.advance(TTL / 2)
    assert await FakeSubmissionClaims(other, Claimant("b", TTL)).renew() == 1, "b lives on"
    fakes.clock.advance(TTL / 2 + 1)
    assert await service.settle_orphaned(claims) == []
    assert fakes.notifier.announcements == []

    fakes.clock.advance(TTL)  # b died: nobody renews its claim
    assert await service.settle_orphaned(claims) == ["r1"]

    assert (await fakes.requests.get("r1")).state == RequestState.CHECKING  # type: ignore[union-attr]
    assert len(fakes.notifier.notices_of(OutcomeChecking)) == 1
    assert await service.settle_orphaned(claims) == []


async def test_a_submission_an_earlier_release_left_is_settled_at_once(fakes: Fakes) -> None:
    await fakes.requests.add(confirmed_request(request_id="old", instance=PROD, sent_at=NOW - timedelta(1)))
    claims = FakeSubmissionClaims(fakes.requests, Claimant("a", TTL))

    assert await service_on(fakes).settle_orphaned(claims) == ["old"]


class RenewedMeanwhile:
    """The leader's view of the claims, while the owner renews its claim right after the leader looked
    (it was paused, not gone)."""

    def __init__(self, leader: FakeSubmissionClaims, owner: FakeSubmissionClaims) -> None:
        self._leader = leader
        self._owner = owner

    async def renew(self) -> int:
        return await self._leader.renew()

    async def orphaned(self) -> list[str]:
        found = await self._leader.orphaned()
        await self._owner.renew()
        return found


async def test_a_submission_whose_owner_renews_its_claim_after_the_look_is_left_to_its_owner(
    fakes: Fakes,
) -> None:
    owner = fakes.requests.replica(Claimant("b", TTL))
    await owner.add(make_request(instance=PROD, remark="in flight"))
    await owner.transition("r1", RequestEvent.CONFIRM, now=NOW, confirmed_by="UALICE1", submitted_at=NOW)
    fakes.clock.advance(TTL + 1)
    leader = FakeSubmissionClaims(fakes.requests, Claimant("a", TTL))
    claims = RenewedMeanwhile(leader, FakeSubmissionClaims(owner, Claimant("b", TTL)))

    await service_on(fakes).settle_orphaned(claims)

    assert (await fakes.requests.get("r1")).state == RequestState.SUBMITTING  # type: ignore[union-attr]
    assert fakes.notifier.notices_of(OutcomeChecking) == [], "nobody said it was being checked"
    assert fakes.audit.of(AuditKind.RECOVERY) == []


class FlakyClaims:
    """Claims whose renewal fails a number of times, then works; ``stop`` is set after the last call."""

    def __init__(self, failures: int, stop: asyncio.Event) -> None:
        self.calls = 0
        self._failures = failures
        self._stop = stop

    async def renew(self) -> int:
        self.calls += 1
        if self.calls > self._failures:
            self._stop.set()
            return 1
        raise OSError("database is locked")

    async def orphaned(self) -> list[str]:
        return []


async def test_a_failing_renewal_of_the_claims_is_logged_once_and_tried_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bot.core.flow.claims")
    stop = asyncio.Event()
    claims = FlakyClaims(3, stop)

    await asyncio.wait_for(keep_claims(claims, 0.001, stop), 5)

    assert claims.calls == 4
    warnings = [r for r in caplog.records if "could not renew" in r.getMessage()]
    assert len(warnings) == 1
    assert any("renewed again" in r.getMessage() for r in caplog.records)


async def test_a_paused_leader_that_lost_the_lease_updates_no_message_either(
    fakes: Fakes, table: FakeLeaseTable
) -> None:
    a, b = replica(table, "a"), replica(table, "b")
    await a.start()
    fakes.clock.advance(TTL + 1)
    await b.try_once()
    fenced = FencedNotifier(fakes.notifier, a)

    with pytest.raises(LeaseLost):
        await fenced.update_message("COPS1", "1700000000.000001", InternalError("ref-1"))

    assert fakes.notifier.updates == []
