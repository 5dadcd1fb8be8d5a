"""The matching rule for a submission whose answer was lost: which record, if any, is its backup."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.rules.backup_request import BackupRequest, RequestState
from bot.core.rules.instances import BackupRecord
from bot.core.rules.reconciliation import (
    CLOCK_SKEW,
    Ambiguous,
    Finding,
    Found,
    KeepLooking,
    NoneCreated,
    checking_window,
    reconcile,
    span_of,
)
from tests.factories import NOW, PROD_ID, confirmed_request, make_record

WINDOW = timedelta(minutes=5)
SENT = NOW
LOST = NOW + timedelta(seconds=30)
DEADLINE = LOST + WINDOW


def checking(**fields: Any) -> BackupRequest:
    values: dict[str, Any] = {
        "state": RequestState.CHECKING,
        "remark": "before the migration",
        "sent_at": SENT,
        "answer_lost_at": LOST,
    }
    return confirmed_request(**(values | fields))


def manual(backup_id: str, created_at: datetime | None, **fields: Any) -> BackupRecord:
    values: dict[str, Any] = {
        "backup_type": "manual",
        "remark": "before the migration",
        "instance_id": PROD_ID,
        "status": "waiting",
    }
    return make_record(backup_id, created_at=created_at, **(values | fields))


def look(records: list[BackupRecord], at: datetime = LOST, **options: Any) -> Finding:
    return reconcile(checking(), records, looked_at=at, window=WINDOW, **options)


def test_the_window_is_20_poll_intervals_or_4_dcs_timeouts() -> None:
    assert checking_window(15, 30) == timedelta(minutes=5)
    assert checking_window(1, 60) == timedelta(minutes=4)
    assert checking_window(0.05, 0.3) == timedelta(seconds=1.2)


def test_the_span_runs_from_the_post_to_the_deadline_widened_by_the_skew() -> None:
    span = span_of(checking(), WINDOW)
    assert (span.earliest, span.deadline, span.latest) == (SENT - CLOCK_SKEW, DEADLINE, DEADLINE + CLOCK_SKEW)


def test_a_request_without_sent_at_counts_from_its_submission() -> None:
    old = checking(sent_at=None, submitted_at=NOW - timedelta(minutes=1), answer_lost_at=None)
    span = span_of(old, WINDOW)
    assert span.earliest == NOW - timedelta(minutes=1) - CLOCK_SKEW
    assert span.deadline == NOW - timedelta(minutes=1) + WINDOW


def test_the_one_matching_record_in_the_window_is_found() -> None:
    ours = manual("b-ours", SENT + timedelta(seconds=1))
    assert look([ours]) == Found(ours)


@pytest.mark.parametrize(
    "record",
    [
        manual("auto", SENT, backup_type="auto"),
        manual("other remark", SENT, remark="someone else's"),
        manual("too early", SENT - CLOCK_SKEW - timedelta(seconds=1)),
        manual("too late", DEADLINE + CLOCK_SKEW + timedelta(seconds=1)),
        manual("other instance", SENT, instance_id="99999999-2222-3333-4444-555555555555"),
    ],
    ids=lambda r: r.backup_id,
)
def test_records_that_cannot_be_ours_are_never_taken(record: BackupRecord) -> None:
    assert look([record]) == KeepLooking(DEADLINE)
    assert look([record], at=DEADLINE) == NoneCreated(DEADLINE)


def test_records_at_the_edges_of_the_skew_are_still_candidates() -> None:
    early = manual("early", SENT - CLOCK_SKEW)
    late = manual("late", DEADLINE + CLOCK_SKEW)
    assert look([early]) == Found(early)
    assert look([late]) == Found(late)


def test_a_record_another_request_claims_is_not_ours() -> None:
    theirs = manual("b-theirs", SENT)
    assert look([theirs], claimed=frozenset({"b-theirs"})) == KeepLooking(DEADLINE)


def test_two_records_that_could_be_ours_are_reported_not_guessed() -> None:
    first, second = manual("b-1", SENT + timedelta(seconds=2)), manual("b-2", SENT - timedelta(seconds=30))
    assert look([first, second]) == Ambiguous((second, first))


def test_a_matching_record_without_a_creation_time_is_not_adopted_alone() -> None:
    timeless = manual("b-timeless", None)
    assert look([timeless]) == Ambiguous((timeless,))


def test_another_unsettled_request_with_the_same_remark_makes_it_ambiguous() -> None:
    ours = manual("b-1", SENT)
    rival = checking(request_id="r2", sent_at=SENT + timedelta(seconds=10))
    assert look([ours], rivals=[rival]) == Ambiguous((ours,))
    other_remark = checking(request_id="r3", remark="another")
    far_away = checking(request_id="r4", sent_at=SENT - timedelta(hours=3), answer_lost_at=None)
    assert look([ours], rivals=[other_remark, far_away, checking()]) == Found(ours)


def test_nothing_found_is_final_only_for_a_look_at_or_after_the_deadline() -> None:
    assert look([], at=DEADLINE - timedelta(microseconds=1)) == KeepLooking(DEADLINE)
    assert look([], at=DEADLINE) == NoneCreated(DEADLINE)


def test_times_without_a_zone_are_read_as_utc() -> None:
    naive = manual("b-naive", (SENT + timedelta(seconds=5)).replace(tzinfo=None))
    assert look([naive]) == Found(naive)


@given(
    offsets=st.lists(st.integers(min_value=-3600, max_value=3600), max_size=6),
    claimed=st.sets(st.integers(min_value=0, max_value=5)),
)
def test_a_found_record_always_fits_the_request_and_is_unclaimed(
    offsets: list[int], claimed: set[int]
) -> None:
    records = [manual(f"b-{i}", SENT + timedelta(seconds=s)) for i, s in enumerate(offsets)]
    taken = frozenset(f"b-{i}" for i in claimed)
    finding = look(records, claimed=taken)
    span = span_of(checking(), WINDOW)
    fitting = [
        r
        for r in records
        if r.backup_id not in taken and r.created_at and span.earliest <= r.created_at <= span.latest
    ]
    if len(fitting) == 1:
        assert finding == Found(fitting[0])
    elif fitting:
        assert isinstance(finding, Ambiguous) and set(finding.candidates) == set(fitting)
    else:
        assert finding == KeepLooking(DEADLINE)
