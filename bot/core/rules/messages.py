"""What the bot says, as plain values. The Slack adapter renders them; the core never formats Slack text.

``Reply`` values answer one person (ephemeral); ``Notice`` values go to a channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from bot.core.rules.backup_request import BackupRequest
from bot.core.rules.instances import BackupFormat, BackupRecord, Instance
from bot.core.rules.policy import Decision, InstanceRef, Permission

# --- answers to one person --------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    message: str


@dataclass(frozen=True)
class Help:
    user_id: str
    permissions: tuple[Permission, ...]
    default_format: BackupFormat
    groups_unknown: str | None = None
    #: Slack could not tell just now (rather than refusing): rules granted through groups are not
    #: listed, and asking again in a moment may show them.
    groups_passing: bool = False


@dataclass(frozen=True)
class Refusal:
    decision: Decision
    instance: InstanceRef | None = None


@dataclass(frozen=True)
class UnaskedCloud:
    """A cloud that could not be asked while resolving an instance (it refused, failed or was too slow):
    the answer comes from the others, and says so."""

    cloud: str
    detail: str


@dataclass(frozen=True)
class InstanceNotFound:
    """No instance answers to ``query``. ``suggestions``: close names (``cloud/name`` when several clouds
    are served); ``picks``: for each, what picking it means — its instance id, qualified with its cloud
    when several clouds are served (:func:`pick_value`)."""

    query: str
    suggestions: tuple[str, ...] = ()
    unasked: tuple[UnaskedCloud, ...] = ()
    picks: tuple[str, ...] = ()


@dataclass(frozen=True)
class InstanceAmbiguous:
    """Several instances answer to ``query``. With ``qualified`` (several clouds configured) each is
    offered as ``cloud/name`` (or ``cloud/id`` when the name repeats within its cloud)."""

    query: str
    candidates: tuple[Instance, ...]
    qualified: bool = False
    unasked: tuple[UnaskedCloud, ...] = ()

    def picks(self) -> tuple[str, ...]:
        """What picking each candidate means (:func:`pick_value`)."""
        return tuple(pick_value(i, qualified=self.qualified) for i in self.candidates)

    def forms(self) -> tuple[str, ...]:
        """What to type for each candidate."""
        if not self.qualified:
            return tuple(i.instance_id for i in self.candidates)
        names = [(i.cloud, i.name) for i in self.candidates]
        return tuple(
            f"{i.cloud}/{i.name if names.count((i.cloud, i.name)) == 1 else i.instance_id}"
            for i in self.candidates
        )


def pick_value(instance: Instance, *, qualified: bool) -> str:
    """How a button that picks ``instance`` names it: its id, with its cloud when several are served."""
    if qualified and instance.cloud is not None:
        return f"{instance.cloud}/{instance.instance_id}"
    return instance.instance_id


@dataclass(frozen=True)
class NotBackupable:
    instance: Instance
    reason: str


@dataclass(frozen=True)
class GroupsUnavailable:
    """Slack could not tell just now which user groups the person is in, and the answer depends on them;
    nothing was decided or changed."""

    reason: str


@dataclass(frozen=True)
class CloudUnavailable:
    """DCS could not answer a read; nothing was changed. ``cloud``: which one, when several are
    configured."""

    detail: str
    cloud: str | None = None


@dataclass(frozen=True)
class PlannedCall:
    method: str
    path: str
    body: dict[str, str]


@dataclass(frozen=True)
class DryRun:
    """``run_id``: the stored request a ``backup_run`` click turns into a real confirmation card (None when
    the policy says no or the instance cannot be backed up now)."""

    instance: Instance
    decision: Decision
    call: PlannedCall
    blockers: tuple[str, ...] = ()
    unasked: tuple[UnaskedCloud, ...] = ()
    run_id: str | None = None


@dataclass(frozen=True)
class Confirmation:
    request: BackupRequest
    instance: Instance
    decision: Decision
    unasked: tuple[UnaskedCloud, ...] = ()


CardOutcome = Literal[
    "confirmed",
    "cancelled",
    "expired",
    "revoked",
    "awaiting_approval",
    "approved",
    "rejected",
    # Final states once DCS has answered (or the bot has found out what became of the call).
    "started",
    "not_started",
    "checking",
    "undetermined",
]


@dataclass(frozen=True)
class CardClosed:
    """Replaces a confirmation or approval card once it has been answered, so its buttons disappear; once
    DCS has answered, the card shows the final state (``started``/``not_started``, or ``undetermined``
    after checking). ``by_user``: who answered the card (for a final state, who confirmed or approved)."""

    request: BackupRequest
    outcome: CardOutcome
    by_user: str
    reason: str | None = None


@dataclass(frozen=True)
class ClickRefused:
    """A click that changes nothing (someone else's card, an unknown or already answered request).

    ``message`` may name ``{person}`` (the user id in ``person``) and ``{instance}`` (the instance name in
    ``instance``); whoever renders it decides how a person and an instance are shown."""

    message: str
    person: str | None = None
    instance: str | None = None

    @property
    def plain(self) -> str:
        """The message with the person as ``@user-id`` and the instance by name, e.g. for the audit trail."""
        return self.message.replace("{person}", f"@{self.person}").replace("{instance}", str(self.instance))


@dataclass(frozen=True)
class BackupList:
    instance: Instance
    records: tuple[BackupRecord, ...]
    total: int
    unasked: tuple[UnaskedCloud, ...] = ()


@dataclass(frozen=True)
class BackupStatus:
    request: BackupRequest
    record: BackupRecord | None


@dataclass(frozen=True)
class InternalError:
    """Something failed on the bot's side; the reference points operators to the log line."""

    reference: str


# --- messages to a channel ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiFailure:
    status: int
    error_code: str | None
    error_msg: str
    hint: str
    request_id: str | None = None


@dataclass(frozen=True)
class BackupStarted:
    """The channel message of a backup DCS accepted, as it stands: just started (``status`` None), then
    as DCS lists it (``status``, ``progress`` in percent), and at its end (the ``final`` record, or
    ``abandoned_after`` seconds of following). ``adopted`` when DCS's answer was lost and the bot found
    the backup in the instance's records instead."""

    request: BackupRequest
    adopted: bool = False
    status: str | None = None
    progress: str | None = None
    final: BackupRecord | None = None
    duration_seconds: float | None = None
    abandoned_after: float | None = None


@dataclass(frozen=True)
class BackupNotStarted:
    request: BackupRequest
    failure: ApiFailure


@dataclass(frozen=True)
class BackupFinished:
    """A backup started through the bot reached a final status; posted in the thread."""

    request: BackupRequest
    record: BackupRecord
    duration_seconds: float | None = None


@dataclass(frozen=True)
class TrackingAbandoned:
    request: BackupRequest
    followed_seconds: float


@dataclass(frozen=True)
class ApprovalRequested:
    request: BackupRequest


@dataclass(frozen=True)
class ApprovalExpired:
    """Nobody approved the request in time: posted in the approval request's thread, naming the requester,
    once the approval request itself has been updated."""

    request: BackupRequest


@dataclass(frozen=True)
class OutcomeChecking:
    """DCS's answer to the backup call was lost (``reason``), or the bot restarted while making it: the
    outcome is unknown, and the bot looks for the backup in the instance's records until ``until``."""

    request: BackupRequest
    reason: str
    until: datetime
    restarted: bool = False


@dataclass(frozen=True)
class NoBackupCreated:
    """Checking ended: the instance's records show no backup from the request."""

    request: BackupRequest
    checked_for_seconds: float


@dataclass(frozen=True)
class OutcomeAmbiguous:
    """Checking ended without an answer: several records could be the request's backup."""

    request: BackupRequest
    candidates: tuple[BackupRecord, ...]


@dataclass(frozen=True)
class WatchedBackupEnded:
    """A backup of a watched instance (automatic, or manual from anywhere) reached a final status."""

    instance_name: str
    record: BackupRecord
    duration_seconds: float | None = None
    requester_id: str | None = None
    cloud: str | None = None


@dataclass(frozen=True)
class BackupsStale:
    instance_name: str
    instance_id: str
    window_hours: float
    last_success: datetime | None
    cloud: str | None = None


@dataclass(frozen=True)
class BackupsRecovered:
    instance_name: str
    instance_id: str
    last_success: datetime
    cloud: str | None = None


Notice = (
    BackupStarted
    | BackupNotStarted
    | BackupFinished
    | TrackingAbandoned
    | ApprovalRequested
    | ApprovalExpired
    | OutcomeChecking
    | NoBackupCreated
    | OutcomeAmbiguous
    | WatchedBackupEnded
    | BackupsStale
    | BackupsRecovered
)


@dataclass(frozen=True)
class NoticeCopy:
    """A notice Slack would not take in ``channel_id`` within the time budget, sent to the person through
    their response_url instead."""

    notice: Notice
    channel_id: str


Reply = (
    Usage
    | Help
    | Refusal
    | InstanceNotFound
    | InstanceAmbiguous
    | NotBackupable
    | GroupsUnavailable
    | CloudUnavailable
    | DryRun
    | Confirmation
    | CardClosed
    | ClickRefused
    | BackupList
    | BackupStatus
    | InternalError
    | NoticeCopy
)
