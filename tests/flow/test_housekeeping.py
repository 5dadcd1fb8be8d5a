"""Housekeeping on the fakes: the expiry sweep (who is told, what is audited, races with clicks) and the
pruning of finished requests and watch memory."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

import pytest

from bot.core.flow.housekeeping import DELIVERY_MEMORY, Housekeeping, HousekeepingOptions
from bot.core.flow.notices import RESPONSE_URL_LIFETIME, response_url_issued_at
from bot.core.rules.audit import AuditKind
from bot.core.rules.backup_request import BackupRequest, RequestState
from bot.core.rules.messages import CardClosed, Reply
from tests.factories import LEAD, NOW, awaiting_approval, confirmed_request, make_request, submitted_request
from tests.fakes import (
    FakeAuditLog,
    FakeClock,
    FakeEventDeliveries,
    FakeNotifier,
    FakeRequestStore,
    Fakes,
    FakeWatchStore,
)
from tests.flow.conftest import Flow, click

RETENTION = timedelta(days=90)
URL = "http://127.0.0.1:9/response/command/UALICE1"


def housekeeping_on(fakes: Fakes, **options: object) -> Housekeeping:
    values: dict[str, object] = {"sweep_every": 0.01, "retention": RETENTION} | options
    return Housekeeping(
        requests=fakes.requests,
        watch=fakes.watch,
        notifier=fakes.notifier,
        audit=fakes.audit,
        clock=fakes.clock,
        options=HousekeepingOptions(**values),  # type: ignore[arg-type]
    )


async def add(fakes: Fakes, *requests: BackupRequest) -> None:
    for request in requests:
        await fakes.requests.add(request)


async def state_of(fakes: Fakes, request_id: str) -> RequestState | None:
    return await state_of_in(fakes.requests, request_id)


async def state_of_in(requests: FakeRequestStore, request_id: str) -> RequestState | None:
    request = await requests.get(request_id)
    return None if request is None else request.state


# --- the expiry sweep ----------------------------------------------------------------------------------


async def test_a_card_past_its_expiry_is_expired_audited_and_its_requester_told(fakes: Fakes) -> None:
    await add(
        fakes,
        make_request(request_id="late", ttl=300, response_url=URL),
        make_request(request_id="in-time", ttl=600, response_url=URL),
        submitted_request(request_id="running", ttl=1),
    )
    fakes.clock.advance(300)  # expires_at itself is too late, as for a click

    report = await housekeeping_on(fakes).sweep()

    assert (report.expired, report.told) == (["late"], ["late"])
    assert await state_of(fakes, "late") == RequestState.EXPIRED
    assert await state_of(fakes, "in-time") == RequestState.PENDING
    assert await state_of(fakes, "running") == RequestState.SUBMITTED
    [entry] = fakes.audit.of(AuditKind.EXPIRED)
    assert (entry.user_id, entry.request_id, entry.outcome) == (None, "late", "expired")
    assert entry.detail == {"expires_at": (NOW + timedelta(seconds=300)).isoformat(), "was": "pending"}
    [sent] = fakes.notifier.replies
    assert sent.response_url == URL and sent.replace_original
    assert isinstance(sent.reply, CardClosed) and sent.reply.outcome == "expired"
    assert sent.reply.request.state == RequestState.EXPIRED


async def test_a_second_sweep_changes_nothing(fakes: Fakes) -> None:
    await add(fakes, make_request(request_id="late", response_url=URL))
    fakes.clock.advance(301)
    housekeeping = housekeeping_on(fakes)
    await housekeeping.sweep()

    again = await housekeeping.sweep()

    assert again.expired == [] and len(fakes.notifier.replies) == 1
    assert len(fakes.audit.of(AuditKind.EXPIRED)) == 1


async def test_an_approval_past_its_expiry_is_expired_and_the_requester_told_on_the_clicked_card(
    fakes: Fakes,
) -> None:
    asked = NOW + timedelta(minutes=4)
    click_url = "http://127.0.0.1:9/response/click/UALICE1"
    request = awaiting_approval(
        request_id="waiting",
        response_url=click_url,
        updated_at=asked,
        expires_at=asked + timedelta(minutes=20),
    )
    await add(fakes, request)
    fakes.clock.current = request.expires_at

    report = await housekeeping_on(fakes).sweep()

    assert report.told == ["waiting"]
    assert await state_of(fakes, "waiting") == RequestState.EXPIRED
    [sent] = fakes.notifier.replies
    assert sent.response_url == click_url and sent.replace_original
    assert fakes.audit.of(AuditKind.EXPIRED)[0].detail["was"] == "awaiting_approval"


@pytest.mark.parametrize(
    ("request_", "told"),
    [
        pytest.param(make_request(request_id="r", response_url=URL, ttl=1799), True, id="29m59s-old"),
        pytest.param(make_request(request_id="r", response_url=URL, ttl=1800), False, id="30-minutes-old"),
        pytest.param(make_request(request_id="r", response_url=None, ttl=1), False, id="no-response-url"),
        pytest.param(
            awaiting_approval(
                request_id="r", response_url=URL, updated_at=NOW + timedelta(hours=1), ttl=5399
            ),
            True,
            id="approval-asked-29m59s-before",
        ),
        pytest.param(
            awaiting_approval(request_id="r", response_url=URL, updated_at=NOW, ttl=3600),
            False,
            id="approval-asked-an-hour-before",
        ),
    ],
)
async def test_the_requester_is_told_only_while_slack_takes_the_response_url(
    fakes: Fakes, request_: BackupRequest, told: bool
) -> None:
    await add(fakes, request_)
    fakes.clock.current = request_.expires_at

    report = await housekeeping_on(fakes).sweep()

    assert report.expired == ["r"], "expired either way"
    assert (report.told == ["r"]) is told
    assert bool(fakes.notifier.replies) is told
    assert len(fakes.audit.of(AuditKind.EXPIRED)) == 1


def test_the_response_url_of_a_waiting_request_is_that_of_its_last_transition() -> None:
    asked = NOW + timedelta(minutes=3)

    assert response_url_issued_at(make_request()) == NOW
    assert response_url_issued_at(awaiting_approval(updated_at=asked)) == asked
    assert response_url_issued_at(awaiting_approval()) == NOW
    # Confirmed: the click's, at submission; approved: the requester's, some time after the request was made.
    assert response_url_issued_at(confirmed_request(submitted_at=asked)) == asked
    approved = confirmed_request(
        submitted_at=asked + timedelta(minutes=9), approved_by=LEAD, updated_at=asked
    )
    assert response_url_issued_at(approved) == NOW
    assert RESPONSE_URL_LIFETIME == timedelta(minutes=30)


async def test_a_request_slack_did_not_take_the_notice_for_is_still_expired(fakes: Fakes) -> None:
    await add(fakes, make_request(request_id="late", response_url=URL))
    fakes.notifier.refuse_replies = True
    fakes.clock.advance(301)

    report = await housekeeping_on(fakes).sweep()

    assert (report.expired, report.told) == (["late"], [])
    assert await state_of(fakes, "late") == RequestState.EXPIRED


class StaleRequestStore(FakeRequestStore):
    """Lists what was past expiry a moment ago, although a click has changed it since."""

    def __init__(self, stale: BackupRequest, current: BackupRequest) -> None:
        super().__init__(current)
        self.stale = stale

    async def past_expiry(self, now: datetime, *, limit: int = 100) -> list[BackupRequest]:
        return [self.stale]


async def test_a_click_that_asked_for_approval_just_before_the_sweep_wins(fakes: Fakes) -> None:
    pending = make_request(request_id="r", response_url=URL)
    asked = pending.expires_at - timedelta(seconds=1)
    waiting = awaiting_approval(request_id="r", updated_at=asked, expires_at=asked + timedelta(hours=1))
    fakes.requests = StaleRequestStore(pending, waiting)
    fakes.clock.current = pending.expires_at

    report = await housekeeping_on(fakes).sweep()

    assert report.expired == []
    assert await state_of(fakes, "r") == RequestState.AWAITING_APPROVAL
    assert fakes.audit.entries == [] and fakes.notifier.replies == []


async def test_a_click_after_the_sweep_closes_the_card_and_starts_nothing(flow: Flow) -> None:
    request = await flow.card("redis-prod")
    flow.fakes.clock.advance(flow.fakes.options.confirm_ttl)
    await housekeeping_on(flow.fakes).sweep()

    await flow.service.confirm(click("UALICE1", request))

    assert flow.fakes.dcs.created == []
    assert [r.outcome for r in flow.fakes.notifier.replies_of(CardClosed)] == ["expired", "expired"]
    assert flow.fakes.notifier.replies[-1].replace_original


class BrokenForOne(FakeNotifier):
    async def reply(self, response_url: str, reply: Reply, *, replace_original: bool = False) -> bool:
        if response_url.endswith("/broken"):
            raise RuntimeError("an adapter with a bug")
        return await super().reply(response_url, reply, replace_original=replace_original)


async def test_one_request_that_fails_does_not_stop_the_others(
    fakes: Fakes, caplog: pytest.LogCaptureFixture
) -> None:
    fakes.notifier = BrokenForOne()
    await add(
        fakes,
        make_request(request_id="first", ttl=1, response_url="http://127.0.0.1:9/broken"),
        make_request(request_id="second", ttl=2, response_url=URL),
    )
    fakes.clock.advance(10)

    with caplog.at_level(logging.ERROR):
        report = await housekeeping_on(fakes).sweep()

    assert report.expired == ["second"]
    assert await state_of(fakes, "second") == RequestState.EXPIRED
    assert "could not expire request first" in caplog.text


async def test_a_sweep_takes_at_most_a_batch(fakes: Fakes) -> None:
    await add(fakes, *(make_request(request_id=f"r{n}", ttl=n + 1) for n in range(5)))
    fakes.clock.advance(60)
    housekeeping = housekeeping_on(fakes, batch=2)

    first = await housekeeping.sweep()
    second = await housekeeping.sweep()

    assert (first.expired, second.expired) == (["r0", "r1"], ["r2", "r3"])


# --- pruning -------------------------------------------------------------------------------------------


async def test_pruning_deletes_finished_requests_and_watch_memory_past_the_retention(fakes: Fakes) -> None:
    old = NOW - RETENTION - timedelta(seconds=1)
    await add(
        fakes,
        submitted_request(request_id="finished-old", now=old).with_state(
            RequestState.FINISHED, finished_at=old, updated_at=old
        ),
        make_request(request_id="cancelled-old", now=old).with_state(RequestState.CANCELLED, updated_at=old),
        make_request(request_id="expired-just-now", now=old).with_state(RequestState.EXPIRED, updated_at=NOW),
        submitted_request(request_id="finished-lately").with_state(RequestState.FINISHED, finished_at=NOW),
        submitted_request(request_id="followed-long", now=old),
        make_request(request_id="pending-old", now=old),
    )
    watch = fakes.watch
    await watch.state("COPS1", "i-1", "redis-prod", old)
    await watch.remember("COPS1", "b-old", "i-1", "succeed", announced=True, now=old)
    await watch.remember("COPS1", "b-new", "i-1", "succeed", announced=True, now=NOW)
    audit_before = list(fakes.audit.entries)

    report = await housekeeping_on(fakes).prune()

    assert (report.requests, report.watched) == (2, 1)
    assert sorted(fakes.requests.requests) == [
        "expired-just-now",
        "finished-lately",
        "followed-long",
        "pending-old",
    ]
    assert set(watch.seen_backups) == {("COPS1", "b-new")}
    # The watch now "began" at the cutoff: b-old, should DCS still list it, ended before and stays quiet.
    assert (await watch.state("COPS1", "i-1", "redis-prod", NOW)).watching_since == NOW - RETENTION
    assert fakes.audit.entries == audit_before


# --- running in the background -------------------------------------------------------------------------


class FailingOnce(FakeRequestStore):
    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    async def past_expiry(self, now: datetime, *, limit: int = 100) -> list[BackupRequest]:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("the database is locked")
        return await super().past_expiry(now, limit=limit)


async def test_run_sweeps_every_interval_prunes_at_start_and_survives_a_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    requests = FailingOnce()
    watch = FakeWatchStore()
    notifier = FakeNotifier()
    audit = FakeAuditLog()
    old = NOW - RETENTION - timedelta(days=1)
    await requests.add(make_request(request_id="old", now=old).with_state(RequestState.CANCELLED))
    await requests.add(make_request(request_id="late", response_url=URL))
    housekeeping = Housekeeping(
        requests=requests,
        watch=watch,
        notifier=notifier,
        audit=audit,
        clock=clock,
        options=HousekeepingOptions(sweep_every=0.01, retention=RETENTION, prune_every=3600),
    )
    stop = asyncio.Event()

    with caplog.at_level(logging.ERROR):
        running = asyncio.create_task(housekeeping.run(stop))
        await asyncio.sleep(0.05)
        assert requests.pruned == ["old"], "pruned once, right away"
        clock.advance(301)
        deadline = asyncio.get_running_loop().time() + 2
        while await state_of_in(requests, "late") != RequestState.EXPIRED:
            assert asyncio.get_running_loop().time() < deadline, "the sweep never ran"
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(running, timeout=2)

    assert requests.pruned == ["old"], "not again within the hour"
    assert "expiring unanswered requests failed" in caplog.text


async def test_pruning_forgets_event_deliveries_older_than_a_day(fakes: Fakes) -> None:
    deliveries = FakeEventDeliveries()
    await deliveries.first_delivery("Ev-old", NOW - DELIVERY_MEMORY - timedelta(seconds=1))
    await deliveries.first_delivery("Ev-recent", NOW - timedelta(minutes=5))
    housekeeping = Housekeeping(
        requests=fakes.requests,
        watch=fakes.watch,
        notifier=fakes.notifier,
        audit=fakes.audit,
        clock=fakes.clock,
        options=HousekeepingOptions(sweep_every=0.01, retention=RETENTION),
        deliveries=deliveries,
    )

    report = await housekeeping.prune()

    assert report.deliveries == 1
    assert list(deliveries.first_seen) == ["Ev-recent"]
