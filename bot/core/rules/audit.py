"""Audit records: one append-only line for every command, decision, click, API call and outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class AuditKind(StrEnum):
    COMMAND = "command"
    DECISION = "decision"
    CONFIRMATION_SHOWN = "confirmation_shown"
    DRY_RUN = "dry_run"
    CLICK = "click"
    CLICK_REFUSED = "click_refused"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    APPROVAL_REQUESTED = "approval_requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    API_CALL = "api_call"
    API_RESULT = "api_result"
    NOTICE = "notice"
    OUTCOME = "outcome"
    RECOVERY = "recovery"


@dataclass(frozen=True)
class AuditEntry:
    kind: AuditKind
    user_id: str | None = None
    channel_id: str | None = None
    request_id: str | None = None
    instance_id: str | None = None
    instance_name: str | None = None
    backup_id: str | None = None
    rule: str | None = None
    outcome: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    #: The cloud of the instance (INTERFACE §8); None when no instance is concerned or it is not known.
    cloud: str | None = None


@dataclass(frozen=True)
class AuditRecord:
    """An entry as stored, with its sequence number and time."""

    seq: int
    at: datetime
    entry: AuditEntry
