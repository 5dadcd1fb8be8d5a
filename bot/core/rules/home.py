"""What a person's Home tab shows (INTERFACE §11), as plain values, and the decisions behind it.

The policy decides per channel, and the Home tab is in no channel: an instance is one the person "may back
up" when the policy allows it in at least one channel, and the view says in which (:func:`backup_channels`).
Stale means what the watch means by it (:mod:`bot.core.rules.watching`): a ``[[watch]]`` with
``stale_after_hours`` covers the instance and no backup succeeded within that window.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.core.rules.backup_request import BackupRequest, RequestState
from bot.core.rules.instances import Instance
from bot.core.rules.messages import Reply
from bot.core.rules.policy import (
    Action,
    Actor,
    InstanceRef,
    Policy,
    Watch,
    decide,
    may_approve,
    ref_of,
)
from bot.core.rules.watching import is_fresh

#: States of a request whose backup is being started or is running: the Home tab's "running now".
RUNNING_STATES = (RequestState.SUBMITTING, RequestState.SUBMITTED, RequestState.CHECKING)

# A channel id no rule can list: a rule covers it only when it names no channels at all.
_UNLISTED_CHANNEL = ""


@dataclass(frozen=True)
class Where:
    """Where a person may back an instance up: in any channel (``anywhere``), else in ``channels``;
    ``approval``: in at least one of them a second person must approve."""

    anywhere: bool
    channels: tuple[str, ...] = ()
    approval: bool = False


def backup_channels(policy: Policy, actor: Actor, instance: InstanceRef) -> Where | None:
    """Where the policy lets ``actor`` back ``instance`` up, deciding for every channel a rule names and
    for any other channel; None when nowhere."""
    anywhere = decide(policy, replace(actor, channel_id=_UNLISTED_CHANNEL), Action.BACKUP, instance)
    if anywhere.allowed:
        return Where(anywhere=True, approval=anywhere.approval == "peer")
    named = sorted({channel for rule in policy.rules for channel in rule.channels or ()})
    allowed = []
    approval = False
    for channel in named:
        decision = decide(policy, replace(actor, channel_id=channel), Action.BACKUP, instance)
        if decision.allowed:
            allowed.append(channel)
            approval = approval or decision.approval == "peer"
    return Where(anywhere=False, channels=tuple(allowed), approval=approval) if allowed else None


def stale_window(watches: Iterable[Watch], instance: InstanceRef) -> timedelta | None:
    """The shortest ``stale_after_hours`` of the watches covering ``instance``; None when none sets one."""
    hours = [w.stale_after_hours for w in watches if w.stale_after_hours and w.covers_instance(instance)]
    return timedelta(hours=min(hours)) if hours else None


def is_stale(window: timedelta | None, last_success: datetime | None, now: datetime) -> bool:
    """Stale as the watch judges it: watched for staleness, and no backup succeeded within the window."""
    return window is not None and not is_fresh(last_success, now, window)


def waits_for(request: BackupRequest, user_id: str, groups: frozenset[str], now: datetime) -> bool:
    """Whether ``request`` waits for ``user_id`` to approve it: they are a listed approver (themselves or
    through a group), not the requester, and it has not expired."""
    return (
        request.state == RequestState.AWAITING_APPROVAL
        and request.requester_id != user_id
        and not request.is_expired(now)
        and may_approve(request.approvers, user_id, groups)
    )


def concerns(request: BackupRequest, user_id: str, groups: frozenset[str], shown: frozenset[str]) -> bool:
    """Whether a change of ``request`` changes what ``user_id``'s Home tab shows: they asked for it, they
    may approve it, or its instance is among those ``shown`` to them (running now, last backup)."""
    return (
        request.requester_id == user_id
        or may_approve(request.approvers, user_id, groups)
        or request.instance_id in shown
    )


@dataclass(frozen=True)
class HomeInstance:
    """An instance the person may back up. ``last_success`` is the end of its newest successful backup;
    ``records_known`` False: its records could not be read just now (nothing can be said of it)."""

    instance: Instance
    where: Where
    last_success: datetime | None = None
    records_known: bool = True
    stale: bool = False


@dataclass(frozen=True)
class HomeCloud:
    """The instances of one cloud the person may back up: ``shown`` (the first few), of ``total``;
    ``unavailable``: why the cloud could not be listed (then both are empty)."""

    cloud: str
    shown: tuple[HomeInstance, ...]
    total: int
    unavailable: str | None = None


@dataclass(frozen=True)
class HomeNote:
    """An answer to a click the person made on their Home tab (a click there has no message to answer
    through), shown at the top of the tab for a while."""

    at: datetime
    reply: Reply


@dataclass(frozen=True)
class HomeSnapshot:
    """Everything one person's Home tab shows, as of ``at``. ``groups``: the policy's user groups they
    are in (for telling later whose tabs a change concerns); ``groups_unknown``: why Slack could not tell."""

    user_id: str
    at: datetime
    clouds: tuple[HomeCloud, ...]
    running: tuple[BackupRequest, ...] = ()
    awaiting: tuple[BackupRequest, ...] = ()
    recent: tuple[BackupRequest, ...] = ()
    notes: tuple[HomeNote, ...] = ()
    groups: frozenset[str] = frozenset()
    groups_unknown: str | None = None
    multi_cloud: bool = False

    @property
    def shown_instance_ids(self) -> frozenset[str]:
        shown = {i.instance.instance_id for cloud in self.clouds for i in cloud.shown}
        return frozenset(shown | {r.instance_id for r in self.running})


def permitted(policy: Policy, actor: Actor, instances: Sequence[Instance]) -> list[tuple[Instance, Where]]:
    """The instances ``actor`` may back up somewhere, by name, with where."""
    found = []
    for instance in sorted(instances, key=lambda i: (i.name, i.instance_id)):
        where = backup_channels(policy, actor, ref_of(instance))
        if where is not None:
            found.append((instance, where))
    return found
