"""Button clicks on confirmation and approval cards.

A click is trusted for nothing but its request id. Who may press what is checked against the stored
request and the policy, and every state change is one atomic transition in the store, so of several
simultaneous clicks exactly one wins and the others are told what happened.
"""

from __future__ import annotations

from typing import Any

from bot.core.flow.context import Workflow, about, request_ref
from bot.core.flow.inputs import Click
from bot.core.flow.notices import response_url_usable
from bot.core.flow.submission import Submission
from bot.core.rules.audit import AuditEntry, AuditKind
from bot.core.rules.backup_request import (
    UNSETTLED_STATES,
    BackupRequest,
    RequestEvent,
    RequestState,
    expiry,
)
from bot.core.rules.messages import ApprovalRequested, CardClosed, CardOutcome, ClickRefused, Reply
from bot.core.rules.policy import Action, Actor, decide, is_group_id, may_approve

# States a request reaches only through a confirmation (and, under a peer rule, an approval).
_STARTED_STATES = frozenset(
    {
        RequestState.SUBMITTING,
        RequestState.SUBMITTED,
        RequestState.API_FAILED,
        RequestState.CHECKING,
        RequestState.NOT_CREATED,
        RequestState.UNKNOWN,
        RequestState.FINISHED,
        RequestState.ABANDONED,
    }
)
_PAST_TENSE = {"confirm": "confirmed", "cancel": "cancelled", "approve": "approved", "reject": "rejected"}
_UNKNOWN = "This backup request is unknown to the bot. Nothing was changed."


def _groups_unknown(actor: Actor, what: str) -> str:
    return (
        f"Slack could not tell which user groups you are in ({actor.groups_unknown}), and {what} "
        "depends on them. Nothing was changed; try again in a moment."
    )


class ClickHandler:
    def __init__(self, workflow: Workflow, submission: Submission) -> None:
        self._w = workflow
        self._submission = submission

    async def confirm(self, click: Click) -> None:
        request = await self._requester_target(click, "confirm")
        if request is None:
            return
        now = self._w.clock.now()
        if request.is_expired(now):
            await self._close(click, "confirm", RequestEvent.EXPIRE, "expired", AuditKind.EXPIRED)
            return
        policy = self._w.policy()
        actor = await self._w.actor(policy, click.user_id, request.channel_id)
        ref = request_ref(request)
        if self._w.undecidable(policy, actor, Action.BACKUP, ref):
            # Slack could not tell just now; that is no reason to take the request away.
            await self._refuse(click, _groups_unknown(actor, "whether you may confirm"), request)
            return
        decision = decide(policy, actor, Action.BACKUP, ref)
        if not decision.allowed:
            await self._close(
                click,
                "confirm",
                RequestEvent.CANCEL,
                "revoked",
                AuditKind.CANCELLED,
                reason=decision.reason,
                audit_outcome="revoked",
                audit_detail={"reason": decision.reason},
                error_msg=decision.reason,
            )
            return
        if decision.approval == "peer":
            await self._ask_approval(request, click)
            return
        confirmed = await self._close(
            click,
            "confirm",
            RequestEvent.CONFIRM,
            "confirmed",
            AuditKind.CONFIRMED,
            rule=decision.rule,
            unexpired=True,
            confirmed_by=click.user_id,
            submitted_at=now,
            response_url=click.response_url or request.response_url,
        )
        if confirmed is not None:
            await self._submission.submit(confirmed)

    async def cancel(self, click: Click) -> None:
        if await self._requester_target(click, "cancel") is not None:
            await self._close(click, "cancel", RequestEvent.CANCEL, "cancelled", AuditKind.CANCELLED)

    async def approve(self, click: Click) -> None:
        request = await self._approver_target(click, "approve")
        if request is None:
            return
        now = self._w.clock.now()
        if request.is_expired(now):
            await self._close(click, "approve", RequestEvent.EXPIRE, "expired", AuditKind.EXPIRED)
            return
        approved = await self._close(
            click,
            "approve",
            RequestEvent.APPROVE,
            "approved",
            AuditKind.APPROVED,
            unexpired=True,
            approved_by=click.user_id,
            submitted_at=now,
            # The request keeps the requester's response_url: their card is brought to its final state
            # once DCS has answered (the approval request in the channel by chat.update).
        )
        if approved is not None:
            await self._submission.submit(approved)

    async def reject(self, click: Click) -> None:
        request = await self._approver_target(click, "reject")
        if request is None:
            return
        rejected = await self._close(
            click, "reject", RequestEvent.REJECT, "rejected", AuditKind.REJECTED, approved_by=click.user_id
        )
        url = request.response_url
        if rejected is not None and url is not None and response_url_usable(request, self._w.clock.now()):
            # The requester's card said it waits for approval; now it says how that ended.
            closed = CardClosed(rejected, "rejected", click.user_id)
            await self._w.notifier.reply(url, closed, replace_original=True)

    async def _ask_approval(self, request: BackupRequest, click: Click) -> None:
        now = self._w.clock.now()
        waiting = await self._close(
            click,
            "confirm",
            RequestEvent.ASK_APPROVAL,
            "awaiting_approval",
            AuditKind.APPROVAL_REQUESTED,
            audit_detail={"approvers": list(request.approvers)},
            unexpired=True,
            confirmed_by=click.user_id,
            expires_at=expiry(now, self._w.options.approval_ttl),
            response_url=click.response_url or request.response_url,
        )
        if waiting is None:
            return
        delivered = await self._w.notifier.announce(
            waiting.channel_id, ApprovalRequested(waiting), fallback_response_url=waiting.response_url
        )
        if delivered is not None and delivered.ts is not None:
            await self._w.requests.update(waiting.request_id, approval_message_ts=delivered.ts)

    async def _close(
        self,
        click: Click,
        verb: str,
        event: RequestEvent,
        outcome: CardOutcome,
        kind: AuditKind,
        *,
        rule: str | None = None,
        reason: str | None = None,
        audit_outcome: str | None = None,
        audit_detail: dict[str, object] | None = None,
        unexpired: bool = False,
        **changes: Any,
    ) -> BackupRequest | None:
        """Applies ``event`` atomically, records it and replaces the card (its buttons disappear); a click
        that lost the race to another change is told what the request is now instead."""
        changed = await self._w.requests.transition(
            click.request_id, event, now=self._w.clock.now(), unexpired=unexpired, **changes
        )
        if changed is None:
            await self._lost_race(click, verb)
            return None
        await self._w.audit.record(
            about(changed, kind, click.user_id, rule=rule, outcome=audit_outcome, detail=audit_detail)
        )
        await self._close_card(click, changed, CardClosed(changed, outcome, click.user_id, reason=reason))
        return changed

    async def _requester_target(self, click: Click, verb: str) -> BackupRequest | None:
        """The request a requester's click may act on, or None after telling the clicker why not."""
        request = await self._w.requests.get(click.request_id)
        await self._audit_click(click, request, verb)
        if request is None:
            await self._refuse(click, _UNKNOWN)
            return None
        if click.user_id != request.requester_id:
            message = f"Only {{person}} can {verb} this backup request. Nothing was changed."
            await self._refuse(click, ClickRefused(message, person=request.requester_id), request)
            return None
        return request

    async def _approver_target(self, click: Click, verb: str) -> BackupRequest | None:
        """The request an approver's click may act on, or None after telling the clicker why not."""
        request = await self._w.requests.get(click.request_id)
        await self._audit_click(click, request, verb)
        if request is None:
            await self._refuse(click, _UNKNOWN)
            return None
        if request.state != RequestState.AWAITING_APPROVAL:
            await self._lost_race(click, verb)
            return None
        if click.user_id == request.requester_id:
            message = f"You cannot {verb} your own request; another approver has to. Nothing was changed."
            await self._refuse(click, message, request)
            return None
        actor = await self._w.actor(self._w.policy(), click.user_id, request.channel_id)
        if not may_approve(request.approvers, click.user_id, actor.groups):
            if actor.groups_passing and any(is_group_id(a) for a in request.approvers):
                await self._refuse(click, _groups_unknown(actor, f"whether you may {verb} it"), request)
                return None
            note = f" ({actor.groups_unknown})" if actor.groups_unknown else ""
            message = (
                f"Only the approvers of rule {request.rule!r} can {verb} this request{note}. "
                "Nothing was changed."
            )
            await self._refuse(click, message, request)
            return None
        return request

    async def _lost_race(self, click: Click, verb: str) -> None:
        """Another click (or the clock) changed the request first; say what it is now."""
        current = await self._w.requests.get(click.request_id)
        state = current.state if current else None
        busy = await self._unsettled_neighbour(current, verb)
        if busy is not None:
            busy_message = ClickRefused(
                "Another backup of {instance} is being started (requested by {person}) and its outcome is "
                "not known yet. Nothing was changed: try again once the channel has heard how it went.",
                person=busy.requester_id,
                instance=busy.instance_name,
            )
            await self._refuse(click, busy_message, current)
            return
        if state in _STARTED_STATES:
            done = "approved" if current is not None and current.approved_by else "confirmed"
            message = f"This backup request was already {done}; it runs only once."
        elif state == RequestState.AWAITING_APPROVAL:
            message = "This backup request was already confirmed and is waiting for approval."
        elif state == RequestState.CANCELLED:
            message = "This backup request was already cancelled."
        elif state == RequestState.REJECTED:
            message = "This backup request was already rejected."
        elif state == RequestState.EXPIRED and current is not None:
            # Expired by the clock before this click: the card clicked still had buttons, so close it.
            await self._w.audit.record(
                self._click_entry(AuditKind.CLICK_REFUSED, click, current, outcome="expired")
            )
            await self._close_card(click, current, CardClosed(current, "expired", click.user_id))
            return
        elif current is not None and current.is_expired(self._w.clock.now()):
            message = "This confirmation has expired. Run the command again to start over."
        else:
            message = f"This backup request can no longer be {_PAST_TENSE[verb]}."
        await self._refuse(click, message, current)

    async def _unsettled_neighbour(self, request: BackupRequest | None, verb: str) -> BackupRequest | None:
        """The other request of the instance whose submission is unsettled, when that is what kept a
        confirmation or an approval of ``request`` from going through."""
        if request is None or verb not in ("confirm", "approve"):
            return None
        if request.state not in (RequestState.PENDING, RequestState.AWAITING_APPROVAL):
            return None
        if request.is_expired(self._w.clock.now()):
            return None
        unsettled = await self._w.requests.in_states(*UNSETTLED_STATES)
        return next(
            (
                other
                for other in unsettled
                if other.instance_id == request.instance_id and other.request_id != request.request_id
            ),
            None,
        )

    async def _audit_click(self, click: Click, request: BackupRequest | None, verb: str) -> None:
        await self._w.audit.record(
            self._click_entry(AuditKind.CLICK, click, request, detail={"button": verb})
        )

    async def _refuse(
        self, click: Click, message: str | ClickRefused, request: BackupRequest | None = None
    ) -> None:
        refusal = message if isinstance(message, ClickRefused) else ClickRefused(message)
        await self._w.audit.record(
            self._click_entry(AuditKind.CLICK_REFUSED, click, request, outcome=refusal.plain)
        )
        await self._answer(click, refusal)

    async def _answer(self, click: Click, reply: Reply) -> None:
        """Tells the clicker: through the click's response_url, or on their Home tab for a click there."""
        if click.response_url is None:
            self._w.home.answer(click.user_id, reply)
        else:
            await self._w.notifier.reply(click.response_url, reply)

    async def _close_card(self, click: Click, request: BackupRequest, closed: CardClosed) -> None:
        """Replaces the clicked card, its buttons gone. A click on the Home tab has no card to replace:
        the clicker is told there, and the approval request in the channel is replaced instead."""
        if click.response_url is not None:
            await self._w.notifier.reply(click.response_url, closed, replace_original=True)
            return
        self._w.home.answer(click.user_id, closed)
        if request.approval_message_ts is not None:
            await self._w.notifier.update_message(request.channel_id, request.approval_message_ts, closed)

    @staticmethod
    def _click_entry(
        kind: AuditKind,
        click: Click,
        request: BackupRequest | None,
        *,
        outcome: str | None = None,
        detail: dict[str, object] | None = None,
    ) -> AuditEntry:
        return AuditEntry(
            kind,
            user_id=click.user_id,
            channel_id=click.channel_id,
            request_id=click.request_id,
            instance_id=request.instance_id if request else None,
            instance_name=request.instance_name if request else None,
            outcome=outcome,
            detail=dict(detail or {}),
            cloud=request.cloud if request else None,
        )
