"""The request state machine: which events are allowed where, and what is final."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.core.rules.backup_request import (
    FINAL_STATES,
    TRANSITIONS,
    UNSETTLED_STATES,
    RequestEvent,
    RequestState,
    guards_instance,
    new_request_id,
    next_state,
    sources_of,
)


def test_only_confirm_and_approve_lead_to_submission() -> None:
    into_submitting = {
        event for (_, event), target in TRANSITIONS.items() if target == RequestState.SUBMITTING
    }
    assert into_submitting == {RequestEvent.CONFIRM, RequestEvent.APPROVE}


def test_final_states() -> None:
    assert FINAL_STATES == {
        RequestState.FINISHED,
        RequestState.ABANDONED,
        RequestState.API_FAILED,
        RequestState.CANCELLED,
        RequestState.EXPIRED,
        RequestState.REJECTED,
        RequestState.NOT_CREATED,
        RequestState.UNKNOWN,
        RequestState.DRY_RUN,
    }


@given(st.sampled_from(RequestState), st.sampled_from(RequestEvent))
def test_final_states_accept_no_event(state: RequestState, event: RequestEvent) -> None:
    if state in FINAL_STATES:
        assert next_state(state, event) is None


@given(st.lists(st.sampled_from(RequestEvent), max_size=12))
def test_any_event_sequence_submits_at_most_once(events: list[RequestEvent]) -> None:
    state = RequestState.PENDING
    submissions = 0
    for event in events:
        following = next_state(state, event)
        if following is None:
            continue
        submissions += following == RequestState.SUBMITTING
        state = following
    assert submissions <= 1


def test_sources_of_an_event() -> None:
    assert sources_of(RequestEvent.CANCEL) == {RequestState.PENDING, RequestState.AWAITING_APPROVAL}
    assert sources_of(RequestEvent.ACCEPTED) == {RequestState.SUBMITTING, RequestState.CHECKING}


def test_an_unknown_outcome_is_checked_and_ends_found_none_or_ambiguous() -> None:
    assert next_state(RequestState.SUBMITTING, RequestEvent.OUTCOME_UNKNOWN) == RequestState.CHECKING
    assert next_state(RequestState.CHECKING, RequestEvent.ACCEPTED) == RequestState.SUBMITTED
    assert next_state(RequestState.CHECKING, RequestEvent.NONE_CREATED) == RequestState.NOT_CREATED
    assert next_state(RequestState.CHECKING, RequestEvent.AMBIGUOUS) == RequestState.UNKNOWN
    # Checking never leads back to a submission, and a refusal is only ever DCS's answer to the call.
    assert next_state(RequestState.CHECKING, RequestEvent.REFUSED) is None
    assert next_state(RequestState.CHECKING, RequestEvent.CONFIRM) is None


def test_only_the_events_that_start_a_submission_guard_the_instance() -> None:
    assert UNSETTLED_STATES == {RequestState.SUBMITTING, RequestState.CHECKING}
    assert {event for event in RequestEvent if guards_instance(event)} == {
        RequestEvent.CONFIRM,
        RequestEvent.APPROVE,
    }


def test_request_ids_are_opaque_and_unique() -> None:
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) >= 24 for i in ids)
