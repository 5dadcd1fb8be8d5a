"""Which backup record, if any, a submission whose answer was lost created — decided from the instance's
records alone, without ever sending the POST again.

A record is taken to be the request's only when everything ties it to the request:

- it is a **manual** backup (automatic ones are DCS's own) of the request's instance;
- it was **created inside the request's window**: no earlier than the POST can have left (``sent_at``)
  and no later than the end of checking, each widened by :data:`CLOCK_SKEW` for the clocks of the bot and
  of DCS;
- its **remark is the one the bot sent** (DCS keeps it verbatim) — a confirmation, never the link alone;
- **no other request claims it** (has it as its ``backup_id``).

The link does not rest on the remark being unique: the window does that, and while a request is unsettled
no other request of the instance can be submitted (see :func:`bot.core.rules.backup_request.guards_instance`).
When more than one record fits — or another unsettled request of the instance could own the same record
(rows from before that rule) — the bot does not guess: the outcome stays unknown and the candidates are
named. A look that finds nothing goes on until a look made at or after the window's deadline has found
nothing; only then is the request reported as having created no backup.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.core.rules.backup_request import BackupRequest
from bot.core.rules.instances import BackupRecord

# How far the clocks of the bot and of DCS may disagree about when a record was created.
CLOCK_SKEW = timedelta(minutes=2)
# The checking window after the answer was lost: this many poll intervals, or this many DCS timeouts when
# that is longer (a backend may work on for a while after its gateway gave up). 5 minutes at the defaults.
WINDOW_POLL_INTERVALS = 20
WINDOW_DCS_TIMEOUTS = 4


def checking_window(poll_interval: float, dcs_timeout: float) -> timedelta:
    """How long after the answer was lost the bot looks for the backup before concluding there is none."""
    return timedelta(seconds=max(WINDOW_POLL_INTERVALS * poll_interval, WINDOW_DCS_TIMEOUTS * dcs_timeout))


@dataclass(frozen=True)
class Span:
    """When DCS can have recorded the request's backup (``earliest``..``latest``), and the deadline of
    checking."""

    earliest: datetime
    latest: datetime
    deadline: datetime

    def overlaps(self, other: Span) -> bool:
        return self.earliest <= other.latest and other.earliest <= self.latest


def span_of(request: BackupRequest, window: timedelta) -> Span:
    sent = _aware(request.sent_since)
    lost = _aware(request.answer_lost_at) if request.answer_lost_at is not None else sent
    deadline = max(lost, sent) + window
    return Span(earliest=sent - CLOCK_SKEW, latest=deadline + CLOCK_SKEW, deadline=deadline)


@dataclass(frozen=True)
class Found:
    """Exactly one record is the request's."""

    record: BackupRecord


@dataclass(frozen=True)
class Ambiguous:
    """More than one record could be the request's (or one whose creation time DCS left out, or one that
    another unsettled request could own as well): the bot cannot tell."""

    candidates: tuple[BackupRecord, ...]


@dataclass(frozen=True)
class KeepLooking:
    deadline: datetime


@dataclass(frozen=True)
class NoneCreated:
    """A look made at or after the deadline found no record of the request."""

    deadline: datetime


Finding = Found | Ambiguous | KeepLooking | NoneCreated


def could_be(request: BackupRequest, record: BackupRecord, span: Span) -> bool:
    """Whether ``record`` fits ``request`` by kind, remark and time (claims aside)."""
    if record.backup_type not in (None, "manual") or record.remark != request.remark:
        return False
    if record.instance_id is not None and record.instance_id != request.instance_id:
        return False
    created = record.created_at
    return created is None or span.earliest <= _aware(created) <= span.latest


def reconcile(
    request: BackupRequest,
    records: Iterable[BackupRecord],
    *,
    looked_at: datetime,
    window: timedelta,
    claimed: frozenset[str] = frozenset(),
    rivals: Sequence[BackupRequest] = (),
) -> Finding:
    """What one look at the instance's ``records`` (listed at ``looked_at`` or later) says about
    ``request``. ``claimed`` are backup ids other requests hold; ``rivals`` the other unsettled requests of
    the instance."""
    span = span_of(request, window)
    candidates = tuple(
        sorted(
            (r for r in records if r.backup_id not in claimed and could_be(request, r, span)),
            key=_creation,
        )
    )
    shared = any(
        rival.request_id != request.request_id
        and rival.remark == request.remark
        and span_of(rival, window).overlaps(span)
        for rival in rivals
    )
    if len(candidates) == 1 and candidates[0].created_at is not None and not shared:
        return Found(candidates[0])
    if candidates:
        return Ambiguous(candidates)
    if _aware(looked_at) >= span.deadline:
        return NoneCreated(span.deadline)
    return KeepLooking(span.deadline)


def _aware(moment: datetime) -> datetime:
    # A time without a zone is read as UTC, the zone DCS means.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _creation(record: BackupRecord) -> tuple[bool, datetime]:
    created = record.created_at
    return (created is None, _aware(created) if created is not None else datetime.min.replace(tzinfo=UTC))
