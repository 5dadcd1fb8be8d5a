"""Clicks on confirmation and approval cards, on the fakes: only the right person changes anything, a
request runs at most once however many clicks race, and every click is answered."""

from __future__ import annotations

import asyncio

from bot.core.errors import DcsApiError, DcsTransportError
from bot.core.flow.inputs import Click
from bot.core.rules.audit import AuditKind
from bot.core.rules.backup_request import RequestEvent, RequestState
from bot.core.rules.messages import (
    ApprovalRequested,
    BackupNotStarted,
    BackupStarted,
    CardClosed,
    ClickRefused,
    OutcomeChecking,
)
from tests.factories import ALICE, BOB, LEAD
from tests.fakes import APPROVAL_TTL, CONFIRM_TTL, fake_backup_id
from tests.flow.conftest import CAROL, DANA, LEAD2, WITHOUT_ALICE, Flow, click, response_url


def refusals(flow: Flow, user: str) -> list[str]:
    return [
        sent.reply.plain
        for sent in flow.fakes.notifier.replies
        if isinstance(sent.reply, ClickRefused) and sent.response_url.endswith(f"/click/{user}")
    ]


def closed_cards(flow: Flow) -> list[CardClosed]:
    return flow.fakes.notifier.replies_of(CardClosed)


# --- confirmation ----------------------------------------------------------------------------------------


async def test_a_confirmation_submits_once_and_announces_the_backup(flow: Flow) -> None:
    request = await flow.card('redis-prod rdb "before the migration"')

    await flow.service.confirm(click(ALICE, request))

    [call] = flow.fakes.dcs.created
    assert call.instance_id == request.instance_id
    assert call.arguments == {"backup_format": "rdb", "remark": "before the migration"}
    confirmed, final = closed_cards(flow)
    assert confirmed.outcome == "confirmed" and confirmed.by_user == ALICE
    # Once DCS has answered, the card ends in its final state, through the same click's response_url.
    assert final.outcome == "started" and final.request.backup_id == fake_backup_id(1)
    assert all(sent.replace_original for sent in flow.fakes.notifier.replies[-2:])
    [started] = flow.fakes.notifier.notices_of(BackupStarted)
    assert started.request.backup_id == fake_backup_id(1)
    stored = await flow.request(request.request_id)
    assert stored.state == RequestState.SUBMITTED
    assert stored.backup_id == fake_backup_id(1)
    assert stored.message_ts == flow.fakes.notifier.announcements[-1].delivered.ts  # type: ignore[union-attr]


async def test_a_double_click_submits_once_and_the_second_is_told(flow: Flow) -> None:
    request = await flow.card("redis-prod")

    await asyncio.gather(
        flow.service.confirm(click(ALICE, request)), flow.service.confirm(click(ALICE, request))
    )

    # Both clicks reached the store's atomic step: a real race, with exactly one winner.
    attempts = [t for t in flow.fakes.requests.transitions if t.event == RequestEvent.CONFIRM]
    assert [t.won for t in attempts].count(True) == 1 and len(attempts) == 2
    assert len(flow.fakes.dcs.created) == 1
    assert [c.outcome for c in closed_cards(flow)] == ["confirmed", "started"]
    assert refusals(flow, ALICE) == ["This backup request was already confirmed; it runs only once."]
    assert len(flow.fakes.notifier.notices_of(BackupStarted)) == 1


async def test_many_clicks_at_once_still_submit_once(flow: Flow) -> None:
    request = await flow.card("redis-prod")

    await asyncio.gather(*(flow.service.confirm(click(ALICE, request)) for _ in range(10)))

    assert len(flow.fakes.dcs.created) == 1
    assert len(refusals(flow, ALICE)) == 9


async def test_a_confirmation_after_the_ttl_expires_the_card_and_calls_nothing(flow: Flow) -> None:
    request = await flow.card("redis-prod")
    flow.fakes.clock.advance(CONFIRM_TTL)  # expires_at itself is already too late

    await flow.service.confirm(click(ALICE, request))

    assert flow.fakes.dcs.created == []
    assert (await flow.request(request.request_id)).state == RequestState.EXPIRED
    [card] = closed_cards(flow)
    assert card.outcome == "expired"
    assert flow.fakes.notifier.replies[-1].replace_original
    assert AuditKind.EXPIRED in flow.fakes.audit.kinds()


async def test_a_confirmation_just_before_the_ttl_goes_through(flow: Flow) -> None:
    request = await flow.card("redis-prod")
    flow.fakes.clock.advance(CONFIRM_TTL - 0.001)

    await flow.service.confirm(click(ALICE, request))

    assert len(flow.fakes.dcs.created) == 1


async def test_a_click_after_expiry_closes_the_card_it_came_from(flow: Flow) -> None:
    request = await flow.card("redis-prod")
    flow.fakes.clock.advance(CONFIRM_TTL + 1)
    await flow.service.confirm(click(ALICE, request))

    await flow.service.cancel(click(ALICE, request))

    # Expired already (by that click, or by the housekeeping sweep): the card clicked is closed, again.
    assert [card.outcome for card in closed_cards(flow)] == ["expired", "expired"]
    assert flow.fakes.notifier.replies[-1].replace_original
    assert flow.fakes.audit.of(AuditKind.CLICK_REFUSED)[-1].outcome == "expired"
    assert (await flow.request(request.request_id)).state == RequestState.EXPIRED


async def test_another_persons_click_is_refused_and_changes_nothing(flow: Flow) -> None:
    request = await flow.card("redis-prod")

    await flow.service.confirm(click(BOB, request))
    await flow.service.cancel(click(BOB, request))

    message = "Only @UALICE1 can {} this backup request. Nothing was changed."
    assert refusals(flow, BOB) == [message.format("confirm"), message.format("cancel")]
    assert closed_cards(flow) == []  # the card keeps its buttons for Alice
    assert flow.fakes.dcs.created == []
    assert await flow.request(request.request_id) == request
    assert all(not t.won for t in flow.fakes.requests.transitions)


async def test_a_click_on_an_unknown_request_is_refused(flow: Flow) -> None:
    await flow.card("redis-prod")
    forged = Click(ALICE, "forged-id", "http://127.0.0.1:9/response/click/UALICE1")

    await flow.service.confirm(forged)
    await flow.service.approve(forged)

    assert refusals(flow, ALICE) == ["This backup request is unknown to the bot. Nothing was changed."] * 2
    assert flow.fakes.dcs.created == []


async def test_cancel_closes_the_card_and_a_later_confirm_is_told(flow: Flow) -> None:
    request = await flow.card("redis-prod")

    await flow.service.cancel(click(ALICE, request))
    await flow.service.confirm(click(ALICE, request))

    assert (await flow.request(request.request_id)).state == RequestState.CANCELLED
    assert [c.outcome for c in closed_cards(flow)] == ["cancelled"]
    assert refusals(flow, ALICE) == ["This backup request was already cancelled."]
    assert flow.fakes.dcs.created == []


async def test_confirm_and_cancel_racing_leave_one_outcome(flow: Flow) -> None:
    request = await flow.card("redis-prod")

    await asyncio.gather(
        flow.service.confirm(click(ALICE, request)), flow.service.cancel(click(ALICE, request))
    )

    state = (await flow.request(request.request_id)).state
    assert len(closed_cards(flow)) == 1 and len(refusals(flow, ALICE)) == 1
    assert len(flow.fakes.dcs.created) == (1 if state == RequestState.SUBMITTED else 0)


async def test_a_policy_revoked_between_command_and_click_cancels_the_request(flow: Flow) -> None:
    request = await flow.card("redis-prod")
    flow.fakes.set_policy(WITHOUT_ALICE)

    await flow.service.confirm(click(ALICE, request))

    assert flow.fakes.dcs.created == []
    stored = await flow.request(request.request_id)
    assert stored.state == RequestState.CANCELLED
    assert stored.error_msg == "No rule in the bot's policy gives you any permission."
    [card] = closed_cards(flow)
    assert card.outcome == "revoked" and card.reason == stored.error_msg
    [cancelled] = flow.fakes.audit.of(AuditKind.CANCELLED)
    assert cancelled.outcome == "revoked"


# --- DCS and Slack faults after a confirmation ----------------------------------------------------------


async def test_a_dcs_refusal_is_announced_with_its_code_and_hint(flow: Flow) -> None:
    request = await flow.card("redis-prod")
    refusal = DcsApiError(400, "DCS.4965", "A backup is already running.", hint="Try again later.")
    flow.fakes.dcs.fail("create_backup", refusal)

    await flow.service.confirm(click(ALICE, request))

    stored = await flow.request(request.request_id)
    assert stored.state == RequestState.API_FAILED and stored.error_code == "DCS.4965"
    [failed] = flow.fakes.notifier.notices_of(BackupNotStarted)
    assert failed.failure.error_code == "DCS.4965" and failed.failure.hint == "Try again later."
    assert flow.fakes.notifier.notices_of(BackupStarted) == []


async def test_a_lost_answer_adopts_the_backup_dcs_created_without_posting_again(flow: Flow) -> None:
    request = await flow.card("redis-prod")
    flow.fakes.dcs.lose_create_answers()

    await flow.service.confirm(click(ALICE, request))

    assert len(flow.fakes.dcs.created) == 1  # never repeated
    assert flow.fakes.dcs.calls_to("list_backups")
    stored = await flow.request(request.request_id)
    assert stored.state == RequestState.SUBMITTED and stored.backup_id == fake_backup_id(1)


async def test_an_unreachable_dcs_with_no_record_is_an_unknown_outcome_being_checked(flow: Flow) -> None:
    request = await flow.card("redis-prod")
    flow.fakes.dcs.fail("create_backup", DcsTransportError("connect timeout to 10.0.0.1:443"))

    await flow.service.confirm(click(ALICE, request))

    assert flow.fakes.notifier.notices_of(BackupNotStarted) == []
    [checking] = flow.fakes.notifier.notices_of(OutcomeChecking)
    assert checking.reason == "DCS could not be reached or did not answer in time"
    assert "10.0.0.1" not in checking.reason
    stored = await flow.request(request.request_id)
    assert stored.state == RequestState.CHECKING
    assert stored.answer_lost_at == flow.fakes.clock.now() and stored.sent_at == flow.fakes.clock.now()
    assert stored.notice_due is None


async def test_a_notice_slack_refuses_still_leaves_the_backup_followed(flow: Flow) -> None:
    request = await flow.card("redis-prod")
    flow.fakes.notifier.refuse_announcements = True

    await flow.service.confirm(click(ALICE, request))

    stored = await flow.request(request.request_id)
    assert stored.state == RequestState.SUBMITTED and stored.message_ts is None
    assert [a.delivered for a in flow.fakes.notifier.announcements] == [None]
    # The tracker owes the channel the start notice, within the notice budget from now.
    assert (stored.notice_due, stored.notice_refused_since) == ("started", flow.fakes.clock.now())


# --- approval by a peer ---------------------------------------------------------------------------------


async def awaiting(flow: Flow) -> str:
    request = await flow.card("critical-payments")
    await flow.service.confirm(click(ALICE, request))
    stored = await flow.request(request.request_id)
    assert stored.state == RequestState.AWAITING_APPROVAL
    return request.request_id


async def test_confirming_a_peer_rule_asks_for_approval_in_the_channel(flow: Flow) -> None:
    request_id = await awaiting(flow)

    [asked] = flow.fakes.notifier.notices_of(ApprovalRequested)
    assert asked.request.request_id == request_id
    stored = await flow.request(request_id)
    assert stored.approval_message_ts == flow.fakes.notifier.announcements[0].delivered.ts  # type: ignore[union-attr]
    assert stored.expires_at == flow.fakes.clock.now() + __import__("datetime").timedelta(
        seconds=APPROVAL_TTL
    )
    assert [c.outcome for c in closed_cards(flow)] == ["awaiting_approval"]
    assert flow.fakes.dcs.created == []


async def test_an_approval_submits_and_names_both_people(flow: Flow) -> None:
    request_id = await awaiting(flow)

    await flow.service.approve(click(LEAD, await flow.request(request_id)))

    stored = await flow.request(request_id)
    assert stored.state == RequestState.SUBMITTED
    assert (stored.confirmed_by, stored.approved_by) == (ALICE, LEAD)
    assert len(flow.fakes.dcs.created) == 1
    # Both cards end "started": the requester's through the response_url it keeps, the approval request
    # in the channel (answered "approved" on the click) by chat.update.
    assert stored.response_url == response_url(ALICE, "click")
    closed = [
        (r.response_url, r.reply.outcome)
        for r in flow.fakes.notifier.replies
        if isinstance(r.reply, CardClosed)
    ]
    assert closed[1:] == [
        (response_url(LEAD, "click"), "approved"),
        (response_url(ALICE, "click"), "started"),
    ]
    [update] = flow.fakes.notifier.updates
    assert update.ts == stored.approval_message_ts
    assert isinstance(update.content, CardClosed) and update.content.outcome == "started"


async def test_the_requesters_card_is_left_alone_once_its_response_url_is_too_old(flow: Flow) -> None:
    request_id = await awaiting(flow)
    flow.fakes.clock.advance(31 * 60)

    await flow.service.reject(click(LEAD, await flow.request(request_id)))

    assert [r.response_url for r in flow.fakes.notifier.replies][1:] == [response_url(LEAD, "click")]


async def test_self_approval_is_refused_even_for_a_listed_approver(flow: Flow) -> None:
    request_id = await awaiting(flow)
    request = await flow.request(request_id)

    await flow.service.approve(click(ALICE, request))
    await flow.service.reject(click(ALICE, request))

    assert refusals(flow, ALICE) == [
        "You cannot approve your own request; another approver has to. Nothing was changed.",
        "You cannot reject your own request; another approver has to. Nothing was changed.",
    ]
    assert await flow.request(request_id) == request
    assert flow.fakes.dcs.created == []


async def test_two_approvers_at_once_submit_once(flow: Flow) -> None:
    request = await flow.request(await awaiting(flow))

    await asyncio.gather(
        flow.service.approve(click(LEAD, request)), flow.service.approve(click(LEAD2, request))
    )

    assert len(flow.fakes.dcs.created) == 1
    assert [c.outcome for c in closed_cards(flow)] == ["awaiting_approval", "approved", "started"]
    lost = refusals(flow, LEAD) + refusals(flow, LEAD2)
    assert lost == ["This backup request was already approved; it runs only once."]


async def test_approve_and_reject_at_once_leave_one_outcome(flow: Flow) -> None:
    request = await flow.request(await awaiting(flow))

    await asyncio.gather(
        flow.service.approve(click(LEAD, request)), flow.service.reject(click(LEAD2, request))
    )

    state = (await flow.request(request.request_id)).state
    assert state in (RequestState.SUBMITTED, RequestState.REJECTED)
    assert len(flow.fakes.dcs.created) == (1 if state == RequestState.SUBMITTED else 0)
    assert len(refusals(flow, LEAD) + refusals(flow, LEAD2)) == 1


async def test_a_rejection_closes_the_request_without_a_call(flow: Flow) -> None:
    request = await flow.request(await awaiting(flow))

    await flow.service.reject(click(LEAD, request))
    await flow.service.approve(click(LEAD2, request))

    stored = await flow.request(request.request_id)
    assert stored.state == RequestState.REJECTED and stored.approved_by == LEAD
    # The approver's click closes the approval request; the requester's card is told too.
    closed = [
        (r.response_url, r.reply.outcome)
        for r in flow.fakes.notifier.replies
        if isinstance(r.reply, CardClosed)
    ]
    assert closed == [
        (response_url(ALICE, "click"), "awaiting_approval"),
        (response_url(LEAD, "click"), "rejected"),
        (response_url(ALICE, "click"), "rejected"),
    ]
    assert refusals(flow, LEAD2) == ["This backup request was already rejected."]
    assert flow.fakes.dcs.created == []


async def test_someone_not_among_the_approvers_is_refused(flow: Flow) -> None:
    request = await flow.request(await awaiting(flow))

    await flow.service.approve(click(BOB, request))
    await flow.service.reject(click(CAROL, request))

    assert refusals(flow, BOB) == [
        "Only the approvers of rule 'critical' can approve this request. Nothing was changed."
    ]
    assert refusals(flow, CAROL) == [
        "Only the approvers of rule 'critical' can reject this request. Nothing was changed."
    ]
    assert await flow.request(request.request_id) == request
    assert flow.fakes.dcs.created == []


async def test_an_approver_through_a_user_group_may_approve(flow: Flow) -> None:
    request = await flow.request(await awaiting(flow))

    await flow.service.approve(click(DANA, request))

    assert (await flow.request(request.request_id)).approved_by == DANA
    assert len(flow.fakes.dcs.created) == 1


async def test_an_unreadable_user_group_fails_closed_and_says_why(flow: Flow) -> None:
    request = await flow.request(await awaiting(flow))
    flow.fakes.groups.fail("plan_upgrade_required")

    await flow.service.approve(click(DANA, request))

    [message] = refusals(flow, DANA)
    assert "(plan_upgrade_required)" in message and "Nothing was changed." in message
    assert flow.fakes.dcs.created == []


async def test_an_approval_after_its_ttl_expires_the_request(flow: Flow) -> None:
    request = await flow.request(await awaiting(flow))
    flow.fakes.clock.advance(APPROVAL_TTL)

    await flow.service.approve(click(LEAD, request))

    assert (await flow.request(request.request_id)).state == RequestState.EXPIRED
    assert closed_cards(flow)[-1].outcome == "expired"
    assert flow.fakes.dcs.created == []


async def test_an_approval_click_on_a_pending_request_is_told_it_cannot(flow: Flow) -> None:
    request = await flow.card("critical-payments")

    await flow.service.approve(click(LEAD, request))

    assert refusals(flow, LEAD) == ["This backup request can no longer be approved."]
    assert (await flow.request(request.request_id)).state == RequestState.PENDING
