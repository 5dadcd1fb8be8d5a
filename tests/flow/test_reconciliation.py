"""Unknown outcomes on the fakes: the request is checked over several tracker cycles — found, reported as
not created after the window, or reported as ambiguous — never submitted twice, and another request of the
instance waits meanwhile."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.core.errors import DcsApiError, DcsTransportError
from bot.core.flow.tracker import Tracker, TrackerOptions
from bot.core.ports import Claimant
from bot.core.rules.audit import AuditKind
from bot.core.rules.backup_request import BackupRequest, RequestState
from bot.core.rules.instances import BackupFormat, BackupRecord
from bot.core.rules.messages import (
    BackupNotStarted,
    BackupStarted,
    ClickRefused,
    NoBackupCreated,
    OutcomeAmbiguous,
    OutcomeChecking,
)
from tests.factories import ALICE, BOB, LEAD, confirmed_request
from tests.fakes import Fakes, FakeSubmissionClaims, fake_backup_id
from tests.flow.conftest import CRITICAL, PROD, Flow, click

WINDOW = timedelta(minutes=5)  # the service's default checking window
GATEWAY_TIMEOUT = DcsApiError(504, "DCS.5000", "Gateway timeout.", request_id="gw-1")


def tracker(fakes: Fakes, flow: Flow) -> Tracker:
    return Tracker(
        dcs=fakes.dcs,
        requests=fakes.requests,
        watch=fakes.watch,
        notifier=fakes.notifier,
        audit=fakes.audit,
        policy=lambda: fakes.policy,
        clock=fakes.clock,
        options=TrackerOptions(interval=15),
        reconciler=flow.service.reconciler,
    )


async def cycles(flow: Flow, count: int, every: float = 15) -> None:
    """``count`` tracker cycles, ``every`` seconds apart on the fake clock."""
    track = tracker(flow.fakes, flow)
    for _ in range(count):
        flow.fakes.clock.advance(every)
        await track.cycle()


async def lost_answer(
    flow: Flow, error: Exception = GATEWAY_TIMEOUT, text: str = "redis-prod"
) -> BackupRequest:
    request = await flow.card(text)
    flow.fakes.dcs.fail("create_backup", error)
    await flow.service.confirm(click(ALICE, request))
    return await flow.request(request.request_id)


def later_record(flow: Flow, remark: str, *, after: float = 0, **fields: object) -> BackupRecord:
    record = BackupRecord(
        backup_id=fields.pop("backup_id", "b-late"),  # type: ignore[arg-type]
        instance_id=PROD.instance_id,
        remark=remark,
        backup_type=fields.pop("backup_type", "manual"),  # type: ignore[arg-type]
        status="waiting",
        created_at=flow.fakes.clock.now() + timedelta(seconds=after),
    )
    return flow.fakes.dcs.add_record(PROD.instance_id, record)


# --- what counts as unknown ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        GATEWAY_TIMEOUT,
        DcsApiError(500, "DCS.5000", "Internal service error."),
        DcsApiError(502, None, "HTTP 502 Bad Gateway from DCS"),
        DcsTransportError("DCS did not answer within 30 s"),
        RuntimeError("a bug reading the answer"),
    ],
    ids=["504", "500", "502", "timeout", "bug"],
)
async def test_an_answer_that_is_no_answer_leaves_the_outcome_unknown(flow: Flow, error: Exception) -> None:
    request = await lost_answer(flow, error)

    assert request.state == RequestState.CHECKING
    assert request.answer_lost_at == flow.fakes.clock.now()
    assert flow.fakes.notifier.notices_of(BackupNotStarted) == []
    [checking] = flow.fakes.notifier.notices_of(OutcomeChecking)
    assert checking.until == request.answer_lost_at + WINDOW
    assert not checking.restarted
    assert flow.fakes.dcs.calls_to("list_backups"), "looked once at once"
    [unknown] = [e for e in flow.fakes.audit.of(AuditKind.API_RESULT) if e.outcome == "unknown"]
    assert unknown.detail["reason"] == checking.reason


@pytest.mark.parametrize("status", [400, 403, 404, 429])
async def test_a_4xx_is_a_refusal(flow: Flow, status: int) -> None:
    request = await lost_answer(flow, DcsApiError(status, "DCS.4096", "The DCS instance is being backed up."))

    assert request.state == RequestState.API_FAILED
    assert (request.error_status, request.error_code) == (status, "DCS.4096")
    [failed] = flow.fakes.notifier.notices_of(BackupNotStarted)
    assert failed.failure.status == status
    assert flow.fakes.notifier.notices_of(OutcomeChecking) == []


# --- looking over several cycles ------------------------------------------------------------------------


async def test_a_backup_dcs_records_on_a_later_cycle_is_adopted_and_followed(flow: Flow) -> None:
    request = await lost_answer(flow)
    await cycles(flow, 3)
    assert (await flow.request(request.request_id)).state == RequestState.CHECKING

    record = later_record(flow, request.remark, after=-20)
    await cycles(flow, 1)

    stored = await flow.request(request.request_id)
    assert (stored.state, stored.backup_id) == (RequestState.SUBMITTED, record.backup_id)
    [started] = flow.fakes.notifier.notices_of(BackupStarted)
    assert started.adopted and started.request.backup_id == record.backup_id
    assert stored.message_ts is not None
    assert len(flow.fakes.dcs.created) == 1, "the POST is never repeated"
    [adopted] = [e for e in flow.fakes.audit.of(AuditKind.RECOVERY) if e.outcome == "adopted"]
    assert adopted.detail["backup_id"] == record.backup_id


async def test_nothing_found_is_reported_once_after_a_look_past_the_deadline(flow: Flow) -> None:
    request = await lost_answer(flow)
    # 19 cycles of 15 s end just before the 5 min window does.
    await cycles(flow, 19)
    assert (await flow.request(request.request_id)).state == RequestState.CHECKING
    assert flow.fakes.notifier.notices_of(NoBackupCreated) == []

    await cycles(flow, 3)

    stored = await flow.request(request.request_id)
    assert stored.state == RequestState.NOT_CREATED
    [none] = flow.fakes.notifier.notices_of(NoBackupCreated)
    assert none.checked_for_seconds == WINDOW.total_seconds()
    assert len(flow.fakes.dcs.created) == 1
    looks = flow.fakes.dcs.calls_to("list_backups")
    assert len(looks) == 21, "one at once, then one per cycle until the outcome"
    [ended] = [e for e in flow.fakes.audit.of(AuditKind.RECOVERY) if e.outcome == "none_created"]
    assert ended.detail["notice"] == "delivered"


async def test_no_conclusion_while_dcs_cannot_be_asked_past_the_deadline(flow: Flow) -> None:
    request = await lost_answer(flow)
    flow.fakes.dcs.fail("list_backups", DcsTransportError("unreachable"), times=5)

    # Five looks 5 min apart (each one due despite the backoff), all past the deadline, all unanswered.
    await cycles(flow, 5, every=300)

    assert (await flow.request(request.request_id)).state == RequestState.CHECKING
    await cycles(flow, 1, every=300)
    assert (await flow.request(request.request_id)).state == RequestState.NOT_CREATED
    assert len(flow.fakes.notifier.notices_of(NoBackupCreated)) == 1


async def test_a_record_outside_the_window_or_of_another_kind_is_not_taken_for_ours(flow: Flow) -> None:
    request = await flow.card('redis-prod "nightly"')
    later_record(flow, "nightly", after=-200, backup_id="b-before")  # before the POST, beyond the skew
    later_record(flow, "nightly", backup_id="b-auto", backup_type="auto")
    later_record(flow, "someone else's", backup_id="b-other")
    flow.fakes.dcs.fail("create_backup", GATEWAY_TIMEOUT)
    await flow.service.confirm(click(ALICE, request))

    await cycles(flow, 25)

    stored = await flow.request(request.request_id)
    assert (stored.state, stored.backup_id) == (RequestState.NOT_CREATED, None)


async def test_a_record_another_request_claims_is_not_taken_for_ours(flow: Flow, fakes: Fakes) -> None:
    record = later_record(flow, "same words", backup_id="b-theirs")
    theirs = confirmed_request(
        request_id="theirs", state=RequestState.FINISHED, remark="same words", backup_id=record.backup_id
    )
    await fakes.requests.add(theirs)
    request = await lost_answer(flow, text='redis-prod "same words"')

    await cycles(flow, 25)

    assert (await flow.request(request.request_id)).state == RequestState.NOT_CREATED


async def test_two_records_that_could_be_ours_are_reported_and_neither_is_followed(flow: Flow) -> None:
    foreign = later_record(flow, "same words", after=-60, backup_id="b-foreign")
    request = await flow.card('redis-prod "same words"')
    flow.fakes.dcs.lose_create_answers()
    await flow.service.confirm(click(ALICE, request))
    assert (await flow.request(request.request_id)).state == RequestState.CHECKING

    await cycles(flow, 1)

    stored = await flow.request(request.request_id)
    assert (stored.state, stored.backup_id) == (RequestState.UNKNOWN, None)
    [ambiguous] = flow.fakes.notifier.notices_of(OutcomeAmbiguous)
    assert [r.backup_id for r in ambiguous.candidates] == [foreign.backup_id, fake_backup_id(1)]
    [entry] = [e for e in flow.fakes.audit.of(AuditKind.RECOVERY) if e.outcome == "ambiguous"]
    assert entry.detail["candidates"] == [foreign.backup_id, fake_backup_id(1)]
    assert flow.fakes.notifier.notices_of(BackupStarted) == []


async def test_a_lost_answer_whose_backup_is_there_at_once_is_adopted_without_a_checking_notice(
    flow: Flow,
) -> None:
    request = await flow.card("redis-prod")
    flow.fakes.dcs.lose_create_answers()

    await flow.service.confirm(click(ALICE, request))

    stored = await flow.request(request.request_id)
    assert (stored.state, stored.backup_id) == (RequestState.SUBMITTED, fake_backup_id(1))
    assert flow.fakes.notifier.notices_of(OutcomeChecking) == []
    [started] = flow.fakes.notifier.notices_of(BackupStarted)
    assert started.adopted


# --- one unsettled request per instance -------------------------------------------------------------------


async def test_another_confirm_for_the_instance_waits_while_one_is_checked(flow: Flow) -> None:
    first = await lost_answer(flow)
    second = await flow.card('redis-prod "another"', user=BOB)

    await flow.service.confirm(click(BOB, second))

    [refused] = [r.plain for r in flow.fakes.notifier.replies_of(ClickRefused)]
    assert "Another backup of redis-prod is being started" in refused
    assert f"@{ALICE}" in refused and "try again" in refused
    assert (await flow.request(second.request_id)).state == RequestState.PENDING
    assert len(flow.fakes.dcs.created) == 1

    await cycles(flow, 25)
    assert (await flow.request(first.request_id)).state == RequestState.NOT_CREATED
    again = await flow.card('redis-prod "another"', user=BOB)
    await flow.service.confirm(click(BOB, again))
    assert (await flow.request(again.request_id)).state == RequestState.SUBMITTED
    assert len(flow.fakes.dcs.created) == 2


async def test_an_approval_waits_while_another_backup_of_the_instance_is_checked(flow: Flow) -> None:
    waiting = await flow.card("critical-payments")
    await flow.service.confirm(click(ALICE, waiting))
    assert (await flow.request(waiting.request_id)).state == RequestState.AWAITING_APPROVAL
    other = confirmed_request(
        request_id="other",
        instance=CRITICAL,
        state=RequestState.CHECKING,
        answer_lost_at=flow.fakes.clock.now(),
    )
    await flow.fakes.requests.add(other)

    await flow.service.approve(click(LEAD, waiting))

    [refused] = [r.plain for r in flow.fakes.notifier.replies_of(ClickRefused)]
    assert "Another backup of critical-payments is being started" in refused
    assert (await flow.request(waiting.request_id)).state == RequestState.AWAITING_APPROVAL
    assert flow.fakes.dcs.created == []


async def test_confirms_of_two_requests_of_one_instance_at_once_submit_one(flow: Flow) -> None:
    first, second = await flow.card("redis-prod"), await flow.card('redis-prod "two"', user=BOB)

    await asyncio.gather(flow.service.confirm(click(ALICE, first)), flow.service.confirm(click(BOB, second)))

    assert len(flow.fakes.dcs.created) == 1
    states = sorted(
        [
            str((await flow.request(first.request_id)).state),
            str((await flow.request(second.request_id)).state),
        ]
    )
    assert states == ["pending", "submitted"]


# --- the checking notice, start-up, and crashes ----------------------------------------------------------


async def test_a_checking_notice_slack_refused_is_retried_and_dropped_once_the_backup_is_found(
    flow: Flow,
) -> None:
    flow.fakes.notifier.refuse_announcements = True
    request = await lost_answer(flow)
    assert (request.notice_due, request.notice_refused_since) == ("checking", flow.fakes.clock.now())
    await cycles(flow, 2)
    flow.fakes.notifier.refuse_announcements = False
    await cycles(flow, 1)
    assert [type(a.notice) for a in flow.fakes.notifier.announcements if a.delivered] == [OutcomeChecking]
    assert (await flow.request(request.request_id)).notice_due is None

    flow.fakes.notifier.refuse_announcements = True
    later_record(flow, request.remark)
    await cycles(flow, 1)
    flow.fakes.notifier.refuse_announcements = False
    await cycles(flow, 1)

    stored = await flow.request(request.request_id)
    assert stored.state == RequestState.SUBMITTED and stored.notice_due is None
    delivered = [type(a.notice) for a in flow.fakes.notifier.announcements if a.delivered]
    assert delivered == [OutcomeChecking, BackupStarted]


def leader_claims(fakes: Fakes) -> FakeSubmissionClaims:
    """The claims as the leader sees them (a request added without a claim is an orphan)."""
    return FakeSubmissionClaims(fakes.requests, Claimant("leader", 30.0))


async def test_an_interrupted_submission_is_checked_like_a_lost_answer(flow: Flow, fakes: Fakes) -> None:
    interrupted = confirmed_request(request_id="crashed", instance=PROD, backup_format=BackupFormat.RDB)
    await fakes.requests.add(interrupted)

    assert await flow.service.settle_orphaned(leader_claims(fakes)) == ["crashed"]

    stored = await flow.request("crashed")
    assert stored.state == RequestState.CHECKING and stored.answer_lost_at == fakes.clock.now()
    [checking] = fakes.notifier.notices_of(OutcomeChecking)
    assert checking.restarted
    assert [e.outcome for e in fakes.audit.of(AuditKind.RECOVERY)] == ["checking"]
    assert fakes.dcs.created == []
    later_record(flow, interrupted.remark, after=-30)
    await cycles(flow, 1)
    assert (await flow.request("crashed")).state == RequestState.SUBMITTED
    assert [e.outcome for e in fakes.audit.of(AuditKind.RECOVERY)] == ["checking", "adopted"]


async def test_a_backup_id_kept_before_a_crash_while_checking_is_adopted_exactly(
    flow: Flow, fakes: Fakes
) -> None:
    later_record(flow, "x", backup_id="b-other-same-remark")
    kept = confirmed_request(
        request_id="kept", state=RequestState.CHECKING, backup_id="b-kept", answer_lost_at=fakes.clock.now()
    )
    await fakes.requests.add(kept)

    await cycles(flow, 1)

    stored = await flow.request("kept")
    assert (stored.state, stored.backup_id) == (RequestState.SUBMITTED, "b-kept")


async def test_an_interrupted_submission_that_fails_to_settle_is_tried_again(
    flow: Flow, fakes: Fakes
) -> None:
    interrupted = confirmed_request(request_id="crashed", instance=PROD)
    await fakes.requests.add(interrupted)
    fakes.dcs.fail("list_backups", RuntimeError("a bug in the adapter"))
    stop = asyncio.Event()

    async def stop_once_settled() -> None:
        for _ in range(500):
            if (await flow.request("crashed")).state != RequestState.SUBMITTING:
                break
            await asyncio.sleep(0.01)
        stop.set()

    await asyncio.wait_for(
        asyncio.gather(flow.service.settle_orphans(leader_claims(fakes), 0.01, stop), stop_once_settled()), 5
    )

    assert (await flow.request("crashed")).state == RequestState.CHECKING
    assert len(fakes.notifier.notices_of(OutcomeChecking)) == 1


async def test_a_checking_notice_still_owed_when_checking_ends_is_dropped_for_the_outcome(flow: Flow) -> None:
    refused: list[OutcomeChecking] = []

    class NoCheckingNotices(type(flow.fakes.notifier)):  # type: ignore[misc]
        async def announce(self, channel_id: str, notice: object, **options: object) -> object:
            if isinstance(notice, OutcomeChecking):
                refused.append(notice)
                return None
            return await super().announce(channel_id, notice, **options)

    flow.fakes.notifier.__class__ = NoCheckingNotices
    request = await lost_answer(flow)

    await cycles(flow, 25)

    stored = await flow.request(request.request_id)
    assert (stored.state, stored.notice_due, stored.notice_refused_since) == (
        RequestState.NOT_CREATED,
        None,
        None,
    )
    assert len(flow.fakes.notifier.notices_of(NoBackupCreated)) == 1
    # Tried every cycle while checking went on, then superseded by what checking found (not given up).
    assert len(refused) == 20, "the first try, then one per cycle until the deadline"
    assert flow.fakes.audit.of(AuditKind.NOTICE) == []
