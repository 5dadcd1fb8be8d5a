"""The backup request: what a person asked for, and the states it moves through.

::

    pending ──confirm──▶ submitting ──accepted──▶ submitted
       │  └──confirm (peer rule)──▶ awaiting_approval ──approve──▶ submitting
       ├──cancel──▶ cancelled              └──reject──▶ rejected / expire──▶ expired
       └──expire──▶ expired
    submitting ──refused (a 4xx: DCS said no)──▶ api_failed
    submitting ──outcome_unknown (timeout, connection lost, 5xx, a crash)──▶ checking
    checking ──accepted (its backup found in the instance's records)──▶ submitted
    checking ──none_created (the window passed, no record of it)──▶ not_created
    checking ──ambiguous (several records could be it)──▶ unknown
    submitted ──final status seen──▶ finished      submitted ──followed too long──▶ abandoned

A request is submitted to DCS at most once: only the transition into ``submitting`` may call the API,
and it is taken atomically by the store. ``checking`` never calls it again: it only reads the records.

While a request of an instance is *unsettled* (``submitting`` or ``checking``: its backup may exist without
the bot knowing its id) no other request of that instance may enter those states — the store refuses the
transition atomically (:func:`guards_instance`) — so that a record found in the window can only be that
request's, never a neighbour's.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from bot.core.rules.instances import BackupFormat


class RequestState(StrEnum):
    PENDING = "pending"
    AWAITING_APPROVAL = "awaiting_approval"
    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    API_FAILED = "api_failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REJECTED = "rejected"
    CHECKING = "checking"
    NOT_CREATED = "not_created"
    UNKNOWN = "unknown"
    FINISHED = "finished"
    ABANDONED = "abandoned"
    # A dry run allowed by the policy, kept so that its ``backup_run`` button can make the real card;
    # nothing can happen to it (no event leads anywhere from here).
    DRY_RUN = "dry_run"


class RequestEvent(StrEnum):
    CONFIRM = "confirm"
    ASK_APPROVAL = "ask_approval"
    APPROVE = "approve"
    REJECT = "reject"
    CANCEL = "cancel"
    EXPIRE = "expire"
    ACCEPTED = "accepted"
    REFUSED = "refused"
    OUTCOME_UNKNOWN = "outcome_unknown"
    NONE_CREATED = "none_created"
    AMBIGUOUS = "ambiguous"
    FINISH = "finish"
    ABANDON = "abandon"


_S = RequestState
_E = RequestEvent

TRANSITIONS: dict[tuple[RequestState, RequestEvent], RequestState] = {
    (_S.PENDING, _E.CONFIRM): _S.SUBMITTING,
    (_S.PENDING, _E.ASK_APPROVAL): _S.AWAITING_APPROVAL,
    (_S.PENDING, _E.CANCEL): _S.CANCELLED,
    (_S.PENDING, _E.EXPIRE): _S.EXPIRED,
    (_S.AWAITING_APPROVAL, _E.APPROVE): _S.SUBMITTING,
    (_S.AWAITING_APPROVAL, _E.REJECT): _S.REJECTED,
    (_S.AWAITING_APPROVAL, _E.CANCEL): _S.CANCELLED,
    (_S.AWAITING_APPROVAL, _E.EXPIRE): _S.EXPIRED,
    (_S.SUBMITTING, _E.ACCEPTED): _S.SUBMITTED,
    (_S.SUBMITTING, _E.REFUSED): _S.API_FAILED,
    (_S.SUBMITTING, _E.OUTCOME_UNKNOWN): _S.CHECKING,
    (_S.CHECKING, _E.ACCEPTED): _S.SUBMITTED,
    (_S.CHECKING, _E.NONE_CREATED): _S.NOT_CREATED,
    (_S.CHECKING, _E.AMBIGUOUS): _S.UNKNOWN,
    (_S.SUBMITTED, _E.FINISH): _S.FINISHED,
    (_S.SUBMITTED, _E.ABANDON): _S.ABANDONED,
}

FINAL_STATES = frozenset(state for state in RequestState if not any(src == state for src, _ in TRANSITIONS))

# A request in one of these may have a backup in DCS whose id the bot does not know yet.
UNSETTLED_STATES = frozenset({RequestState.SUBMITTING, RequestState.CHECKING})


def next_state(state: RequestState, event: RequestEvent) -> RequestState | None:
    """The state after ``event``, or None when the event is not allowed in ``state``."""
    return TRANSITIONS.get((state, event))


def sources_of(event: RequestEvent) -> frozenset[RequestState]:
    """States from which ``event`` may be taken (the store's atomic ``WHERE state IN (...)``)."""
    return frozenset(src for src, ev in TRANSITIONS if ev == event)


def guards_instance(event: RequestEvent) -> bool:
    """Whether taking ``event`` needs the instance to have no other unsettled request: true for the events
    that make a settled request unsettled (confirm, approve)."""
    sources = sources_of(event)
    targets = {next_state(source, event) for source in sources}
    return bool(targets & UNSETTLED_STATES) and not sources & UNSETTLED_STATES


def default_remark(user_name: str) -> str:
    """The remark a backup gets when the person gives none (INTERFACE §2)."""
    return f"Slack backup by @{user_name}"


def new_request_id() -> str:
    # Opaque and unguessable: the id is all a button carries, and the bot trusts nothing else in a click.
    return secrets.token_urlsafe(18)


@dataclass(frozen=True)
class BackupRequest:
    request_id: str
    requester_id: str
    requester_name: str
    channel_id: str
    instance_id: str
    instance_name: str
    backup_format: BackupFormat
    remark: str
    rule: str
    created_at: datetime
    expires_at: datetime
    response_url: str | None = None
    state: RequestState = RequestState.PENDING
    approval: str = "self"
    approvers: tuple[str, ...] = ()
    confirmed_by: str | None = None
    approved_by: str | None = None
    submitted_at: datetime | None = None
    backup_id: str | None = None
    error_code: str | None = None
    error_msg: str | None = None
    message_ts: str | None = None
    approval_message_ts: str | None = None
    updated_at: datetime | None = field(default=None)
    backup_status: str | None = None
    finished_at: datetime | None = None
    # The POST left no earlier than ``sent_at``; its answer was lost (or the bot restarted) at
    # ``answer_lost_at``. Together they bound when DCS can have recorded the backup.
    sent_at: datetime | None = None
    answer_lost_at: datetime | None = None
    # A notice about this request the channel has not had yet ("checking", "started"), and since when Slack
    # has refused the notice being tried (the start of its time budget).
    notice_due: str | None = None
    notice_refused_since: datetime | None = None
    # What else DCS said when it refused the call (HTTP status, plain-language hint, its request id).
    error_status: int | None = None
    error_hint: str | None = None
    error_request_id: str | None = None
    # The cloud the instance is in (None: a request from before clouds were recorded), and the instance's
    # DCS tags when the request was made (None: not recorded), for deciding again at the click.
    cloud: str | None = None
    instance_tags: tuple[tuple[str, str], ...] | None = None

    def is_expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    @property
    def sent_since(self) -> datetime:
        """The earliest moment the POST can have left (older rows have no ``sent_at``)."""
        return self.sent_at or self.submitted_at or self.updated_at or self.created_at

    def with_state(self, state: RequestState, **changes: object) -> BackupRequest:
        return replace(self, state=state, **changes)  # type: ignore[arg-type]


def expiry(now: datetime, ttl_seconds: float) -> datetime:
    return now + timedelta(seconds=ttl_seconds)
