"""The backup request: what a person asked for, and the states it moves through.

::

    pending ──confirm──▶ submitting ──accepted──▶ submitted
       │  └──confirm (peer rule)──▶ awaiting_approval ──approve──▶ submitting
       ├──cancel──▶ cancelled              └──reject──▶ rejected / expire──▶ expired
       └──expire──▶ expired     submitting ──refused──▶ api_failed
                                submitting ──(crash, no record found)──▶ unknown
    submitted ──final status seen──▶ finished      submitted ──followed too long──▶ abandoned

A request is submitted to DCS at most once: only the transition into ``submitting`` may call the API,
and it is taken atomically by the store.
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
    UNKNOWN = "unknown"
    FINISHED = "finished"
    ABANDONED = "abandoned"


class RequestEvent(StrEnum):
    CONFIRM = "confirm"
    ASK_APPROVAL = "ask_approval"
    APPROVE = "approve"
    REJECT = "reject"
    CANCEL = "cancel"
    EXPIRE = "expire"
    ACCEPTED = "accepted"
    REFUSED = "refused"
    LOST = "lost"
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
    (_S.SUBMITTING, _E.LOST): _S.UNKNOWN,
    (_S.SUBMITTED, _E.FINISH): _S.FINISHED,
    (_S.SUBMITTED, _E.ABANDON): _S.ABANDONED,
}

FINAL_STATES = frozenset(state for state in RequestState if not any(src == state for src, _ in TRANSITIONS))


def next_state(state: RequestState, event: RequestEvent) -> RequestState | None:
    """The state after ``event``, or None when the event is not allowed in ``state``."""
    return TRANSITIONS.get((state, event))


def sources_of(event: RequestEvent) -> frozenset[RequestState]:
    """States from which ``event`` may be taken (the store's atomic ``WHERE state IN (...)``)."""
    return frozenset(src for src, ev in TRANSITIONS if ev == event)


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

    def is_expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    def with_state(self, state: RequestState, **changes: object) -> BackupRequest:
        return replace(self, state=state, **changes)  # type: ignore[arg-type]


def expiry(now: datetime, ttl_seconds: float) -> datetime:
    return now + timedelta(seconds=ttl_seconds)
