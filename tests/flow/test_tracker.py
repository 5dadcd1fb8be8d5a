"""The tracker on the fakes: notices retried within a time budget and audited as lost when given up, and
each request and watch target handled on its own — one that fails does not stop the others."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from bot.core.errors import DcsApiError
from bot.core.flow.tracker import Tracker, TrackerOptions
from bot.core.ports import Delivered, UpdateResult
from bot.core.rules.audit import AuditEntry, AuditKind
from bot.core.rules.backup_request import BackupRequest, RequestState
from bot.core.rules.messages import (
    BackupFinished,
    BackupNotStarted,
    BackupStarted,
    Notice,
    NoticeCopy,
    Reply,
    WatchedBackupEnded,
)
from tests.factories import ALICE, NOW, OPS, confirmed_request, make_record, submitted_request
from tests.fakes import Fakes
from tests.flow.conftest import PROD, STAGING, Flow, click

BUDGET = timedelta(minutes=20)
ALERTS = "CALERTS1"


def tracker(fakes: Fakes, flow: Flow | None = None, **options: object) -> Tracker:
    return Tracker(
        dcs=fakes.dcs,
        requests=fakes.requests,
        watch=fakes.watch,
        notifier=fakes.notifier,
        audit=fakes.audit,
        policy=lambda: fakes.policy,
        clock=fakes.clock,
        options=TrackerOptions(interval=15, **options),  # type: ignore[arg-type]
        reconciler=flow.service.reconciler if flow is not None else None,
    )


def lost_notices(fakes: Fakes) -> list[AuditEntry]:
    return [e for e in fakes.audit.of(AuditKind.NOTICE) if e.outcome == "lost"]


async def finished_backup(fakes: Fakes, request_id: str = "r1", **fields: object) -> BackupRequest:
    """A followed request whose backup DCS shows as succeeded."""
    request = submitted_request(
        request_id=request_id,
        backup_id=f"b-{request_id}",
        message_ts="1700000000.000001",
        response_url="http://127.0.0.1:9/response/click/alice",
        **fields,
    )
    await fakes.requests.add(request)
    fakes.dcs.add_record(
        request.instance_id,
        make_record(request.backup_id or "", "succeed", instance_id=request.instance_id, ended=NOW),
    )
    return request


# --- the time budget ---------------------------------------------------------------------------------------


async def test_a_refused_outcome_notice_is_retried_for_the_budget_then_audited_lost(fakes: Fakes) -> None:
    # Confirmed a quarter of an hour ago: by the time the notice is given up its response_url has expired.
    await finished_backup(fakes, submitted_at=NOW - timedelta(minutes=15))
    fakes.notifier.refuse_announcements = True
    track = tracker(fakes)

    # Refused from the first cycle on: retried every 15 s for 20 minutes, far more than any count of 5.
    for _ in range(80):
        await track.cycle()
        fakes.clock.advance(15)
        assert (await fakes.requests.get("r1")).state == RequestState.SUBMITTED  # type: ignore[union-attr]
    assert lost_notices(fakes) == []
    await track.cycle()

    stored = await fakes.requests.get("r1")
    assert stored is not None and stored.state == RequestState.FINISHED
    [lost] = lost_notices(fakes)
    assert (lost.request_id, lost.detail["notice"], lost.detail["response_url"]) == (
        "r1",
        "outcome",
        "expired",
    )
    assert lost.detail["refused_since"] == NOW.isoformat()
    [outcome] = fakes.audit.of(AuditKind.OUTCOME)
    assert (outcome.outcome, outcome.detail["notice"]) == ("succeed", "lost")
    assert len(fakes.notifier.notices_of(BackupFinished)) == 81
    assert stored.notice_refused_since is None
    assert fakes.notifier.replies_of(NoticeCopy) == [], "the response_url had expired (30 minutes)"


async def test_a_notice_given_up_within_the_response_urls_life_reaches_the_person(fakes: Fakes) -> None:
    request = await finished_backup(fakes, submitted_at=NOW)
    fakes.notifier.refuse_announcements = True
    track = tracker(fakes, notice_budget=timedelta(minutes=1))

    for _ in range(6):
        await track.cycle()
        fakes.clock.advance(15)

    [lost] = lost_notices(fakes)
    assert lost.detail["response_url"] == "taken"
    [copy] = fakes.notifier.replies_of(NoticeCopy)
    assert isinstance(copy.notice, BackupFinished) and copy.channel_id == OPS
    assert fakes.notifier.replies_to(request.response_url or "") == [copy]


async def test_the_budget_survives_a_restart(fakes: Fakes) -> None:
    await finished_backup(fakes)
    fakes.notifier.refuse_announcements = True
    await tracker(fakes).cycle()
    fakes.clock.advance(BUDGET.total_seconds())

    await tracker(fakes).cycle()  # a new process: the first refusal is remembered in the database

    assert [e.detail["notice"] for e in lost_notices(fakes)] == ["outcome"]


async def test_a_start_notice_slack_refused_is_retried_before_the_outcome(flow: Flow) -> None:
    fakes = flow.fakes
    request = await flow.card("redis-prod")
    fakes.notifier.refuse_announcements = True
    await flow.service.confirm(click(ALICE, request))
    track = tracker(fakes, flow)
    [record] = fakes.dcs.backups[PROD.instance_id]
    fakes.dcs.backups[PROD.instance_id] = [make_record(record.backup_id, "succeed", ended=NOW)]
    await track.cycle()
    assert (await flow.request(request.request_id)).state == RequestState.SUBMITTED

    fakes.notifier.refuse_announcements = False
    await track.cycle()

    stored = await flow.request(request.request_id)
    assert stored.state == RequestState.FINISHED and stored.notice_due is None
    taken = [a for a in fakes.notifier.announcements if a.delivered is not None]
    assert [type(a.notice) for a in taken] == [BackupStarted, BackupFinished]
    started_ts = taken[0].delivered.ts  # type: ignore[union-attr]
    assert taken[1].thread_ts == started_ts == stored.message_ts


async def test_a_refusal_notice_slack_refused_is_retried(flow: Flow) -> None:
    request = await flow.card("redis-prod")
    flow.fakes.dcs.fail("create_backup", DcsApiError(400, "DCS.4096", "busy", request_id="d1", hint="Later."))
    flow.fakes.notifier.refuse_announcements = True
    await flow.service.confirm(click(ALICE, request))
    assert (await flow.request(request.request_id)).notice_due == "refused"
    flow.fakes.notifier.refuse_announcements = False

    await tracker(flow.fakes).cycle()

    [first, again] = flow.fakes.notifier.notices_of(BackupNotStarted)
    assert again.failure == first.failure
    assert (again.failure.status, again.failure.hint, again.failure.request_id) == (400, "Later.", "d1")
    assert (await flow.request(request.request_id)).notice_due is None
    await tracker(flow.fakes).cycle()
    assert len(flow.fakes.notifier.notices_of(BackupNotStarted)) == 2


async def test_a_watch_notice_given_up_is_audited_lost_and_not_remembered_as_announced(fakes: Fakes) -> None:
    fakes.set_policy(f'[[watch]]\ninstances = ["redis-prod"]\nchannel = "{ALERTS}"\n')
    fakes.dcs.add_instance(PROD)
    track = tracker(fakes, notice_budget=timedelta(seconds=30))
    await track.cycle()  # the watch begins
    fakes.dcs.add_record(
        PROD.instance_id, make_record("b-auto", "failed", backup_type="auto", ended=fakes.clock.advance(5))
    )
    fakes.notifier.refuse_announcements = True

    for _ in range(4):
        fakes.clock.advance(15)
        await track.cycle()

    [lost] = lost_notices(fakes)
    assert (lost.channel_id, lost.backup_id, lost.detail["watch"], lost.detail["notice"]) == (
        ALERTS,
        "b-auto",
        True,
        "failed",
    )
    assert not fakes.watch.seen_backups[(ALERTS, "b-auto")].announced
    fakes.notifier.refuse_announcements = False
    await track.cycle()
    assert [type(a.notice) for a in fakes.notifier.announcements if a.delivered] == []


# --- isolation ---------------------------------------------------------------------------------------------


class PickyNotifier:
    """Raises for notices to one channel, as an adapter surprise would; delivers the rest."""

    def __init__(self, fakes: Fakes, channel: str) -> None:
        self._inner = fakes.notifier
        self._channel = channel

    async def reply(self, response_url: str, reply: object, *, replace_original: bool = False) -> bool:
        return await self._inner.reply(response_url, reply, replace_original=replace_original)  # type: ignore[arg-type]

    async def announce(
        self,
        channel_id: str,
        notice: Notice,
        *,
        thread_ts: str | None = None,
        fallback_response_url: str | None = None,
        broadcast: bool = False,
    ) -> Delivered | None:
        if channel_id == self._channel:
            raise AttributeError("'str' object has no attribute 'get'")
        return await self._inner.announce(
            channel_id,
            notice,
            thread_ts=thread_ts,
            fallback_response_url=fallback_response_url,
            broadcast=broadcast,
        )

    async def update_message(self, channel_id: str, ts: str, content: Notice | Reply) -> UpdateResult:
        if channel_id == self._channel:
            raise AttributeError("'str' object has no attribute 'get'")
        return await self._inner.update_message(channel_id, ts, content)


async def test_a_notifier_surprise_for_one_request_does_not_stop_the_others(
    fakes: Fakes, caplog: pytest.LogCaptureFixture
) -> None:
    await finished_backup(fakes, "r1", channel_id="CBROKEN1")
    await finished_backup(fakes, "r2", instance=STAGING)
    fakes.notifier = PickyNotifier(fakes, "CBROKEN1")  # type: ignore[assignment]
    track = tracker(fakes)

    with caplog.at_level(logging.DEBUG):
        await track.cycle()
        await track.cycle()

    assert (await fakes.requests.get("r2")).state == RequestState.FINISHED  # type: ignore[union-attr]
    assert (await fakes.requests.get("r1")).state == RequestState.SUBMITTED  # type: ignore[union-attr]
    surprises = [r for r in caplog.records if r.levelno >= logging.ERROR]
    # Once by the notice's delivery and once by the update of its channel message, however often tried.
    assert sorted(r.name for r in surprises) == ["bot.core.flow.living", "bot.core.flow.notices"]
    assert all(r.exc_info for r in surprises), "an unexpected error is logged with its stack"


async def test_an_odd_record_for_one_request_is_logged_once_and_the_others_go_on(
    fakes: Fakes, caplog: pytest.LogCaptureFixture
) -> None:
    odd = submitted_request(request_id="odd", backup_id="b-odd", message_ts="1.1")
    await fakes.requests.add(odd)
    fakes.dcs.add_record(
        odd.instance_id,
        # A creation time without a zone next to an end with one: their difference cannot be taken.
        make_record("b-odd", "succeed", created_at=NOW.replace(tzinfo=None), ended=NOW),
    )
    await finished_backup(fakes, "fine", instance=STAGING)
    track = tracker(fakes)

    with caplog.at_level(logging.DEBUG):
        for _ in range(3):
            await track.cycle()
            fakes.clock.advance(15)

    assert (await fakes.requests.get("fine")).state == RequestState.FINISHED  # type: ignore[union-attr]
    about_odd = [
        r for r in caplog.records if "request odd (submitted backup of redis-prod)" in r.getMessage()
    ]
    assert [r.levelname for r in about_odd] == ["ERROR", "DEBUG", "DEBUG"]
    assert about_odd[0].exc_info is not None and "TypeError" in about_odd[0].getMessage()


async def test_a_store_error_for_one_watch_target_leaves_the_others_watched(
    fakes: Fakes, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fakes.set_policy(
        f'[[watch]]\ninstances = ["redis-prod"]\nchannel = "{ALERTS}"\n\n'
        '[[watch]]\ninstances = ["redis-staging"]\nchannel = "CSTAGING1"\n'
    )
    fakes.dcs.add_instance(PROD)
    fakes.dcs.add_instance(STAGING)
    original = fakes.watch.state

    async def damaged(channel_id: str, instance_id: str, instance_name: str, now: object) -> object:
        if channel_id == ALERTS:
            raise OSError("disk I/O error")
        return await original(channel_id, instance_id, instance_name, now)  # type: ignore[arg-type]

    monkeypatch.setattr(fakes.watch, "state", damaged)
    track = tracker(fakes)
    await track.cycle()
    fakes.dcs.add_record(
        STAGING.instance_id, make_record("b-st", "failed", backup_type="auto", ended=fakes.clock.advance(5))
    )

    with caplog.at_level(logging.WARNING):
        await track.cycle()

    [notice] = fakes.notifier.notices_of(WatchedBackupEnded)
    assert notice.record.backup_id == "b-st"
    assert any("watch of redis-prod" in r.getMessage() for r in caplog.records)


async def test_a_dcs_error_for_one_request_is_logged_without_a_stack(
    flow: Flow, caplog: pytest.LogCaptureFixture
) -> None:
    request = confirmed_request(
        request_id="checking", state=RequestState.CHECKING, answer_lost_at=NOW, remark="x"
    )
    await flow.fakes.requests.add(request)
    track = tracker(flow.fakes, flow)
    flow.fakes.dcs.fail("list_backups", DcsApiError(503, None, "unavailable"))

    with caplog.at_level(logging.WARNING):
        await track.cycle()

    assert all(r.exc_info is None for r in caplog.records)
    assert (await flow.request("checking")).state == RequestState.CHECKING
