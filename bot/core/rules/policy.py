"""The policy (INTERFACE §4) as plain values, and the decisions made from it.

Deny by default. Rules are read in file order and the first rule that matches the person, the channel,
the instance and the action decides, so a stricter rule (``approval = "peer"``) placed first wins over a
looser one below it. Reading and checking the policy file is :mod:`bot.policy_file`'s job.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import Literal

from bot.core.rules.grammar import is_instance_id


class Action(StrEnum):
    BACKUP = "backup"
    LIST = "list"
    STATUS = "status"


ACTION_VERBS = {Action.BACKUP: "back up", Action.LIST: "list backups of", Action.STATUS: "see the status of"}

Approval = Literal["self", "peer"]
WatchEvent = Literal["failed", "succeed"]

_GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")


def is_group_id(value: str) -> bool:
    """Whether ``value`` is a Slack user-group ID (``S…``) rather than a user ID."""
    return _GROUP_ID.match(value) is not None


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One grant. ``clouds`` and ``tags`` (INTERFACE §4) are read and checked, not yet used to decide;
    ``None`` means any cloud and any tags. ``tags`` holds (key, value) pairs, ``"*"`` for any value."""

    name: str
    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    channels: tuple[str, ...] | None = None
    clouds: tuple[str, ...] | None = None
    tags: tuple[tuple[str, str], ...] | None = None
    instances: tuple[str, ...]
    actions: tuple[Action, ...]
    approval: Approval = "self"
    approvers: tuple[str, ...] = ()

    def covers_instance(self, instance: InstanceRef) -> bool:
        return instance_matches(self.instances, instance)

    def covers_channel(self, channel_id: str) -> bool:
        return self.channels is None or channel_id in self.channels


@dataclass(frozen=True, kw_only=True)
class Watch:
    """``clouds`` and ``tags`` are read and checked, not yet used to choose what is watched."""

    instances: tuple[str, ...]
    clouds: tuple[str, ...] | None = None
    tags: tuple[tuple[str, str], ...] | None = None
    channel: str
    events: tuple[WatchEvent, ...] = ("failed",)
    stale_after_hours: float | None = None


@dataclass(frozen=True, kw_only=True)
class Policy:
    admins: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()
    watch: tuple[Watch, ...] = ()

    def referenced_groups(self) -> frozenset[str]:
        """User groups whose membership decisions depend on."""
        groups = {group for rule in self.rules for group in rule.groups}
        groups |= {p for rule in self.rules for p in rule.approvers if is_group_id(p)}
        return frozenset(groups)


@dataclass(frozen=True)
class InstanceRef:
    instance_id: str
    name: str


def instance_matches(patterns: Iterable[str], instance: InstanceRef) -> bool:
    for pattern in patterns:
        if is_instance_id(pattern):
            if pattern == instance.instance_id.lower():
                return True
        elif fnmatchcase(instance.name, pattern):
            return True
    return False


# --- decisions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """The person asking, with the user groups they belong to among those the policy names.

    ``groups_unknown`` carries the reason when membership could not be read: group rules then grant
    nothing (fail closed) and the person is told why. With ``groups_passing`` Slack could not tell just
    now (asking again may work): a decision that could turn on the groups (:func:`groups_could_decide`)
    is not made at all, and the person is asked to try again.
    """

    user_id: str
    channel_id: str
    groups: frozenset[str] = frozenset()
    groups_unknown: str | None = None
    groups_passing: bool = False


@dataclass(frozen=True)
class Decision:
    allowed: bool
    action: Action
    reason: str
    rule: str | None = None
    approval: Approval = "self"
    approvers: tuple[str, ...] = ()


ADMIN_RULE = "admins"


def _applies_to(rule: Rule, actor: Actor) -> bool:
    return actor.user_id in rule.users or bool(actor.groups.intersection(rule.groups))


def _group_note(policy: Policy, actor: Actor) -> str:
    if actor.groups_unknown is None or actor.groups_passing or not policy.referenced_groups():
        return ""
    return (
        f" Your user-group membership could not be read from Slack ({actor.groups_unknown}), "
        "so rules that grant access through groups do not apply."
    )


def may_act_somewhere(policy: Policy, actor: Actor, action: Action) -> bool:
    """Whether any instance could be allowed; lets the bot refuse before touching the cloud."""
    if actor.user_id in policy.admins:
        return True
    return any(
        _applies_to(rule, actor) and action in rule.actions and rule.covers_channel(actor.channel_id)
        for rule in policy.rules
    )


def decide(policy: Policy, actor: Actor, action: Action, instance: InstanceRef | None) -> Decision:
    """``instance`` is None for actions not bound to a known instance (e.g. status of a foreign backup)."""
    if actor.user_id in policy.admins:
        return Decision(True, action, "You are a bot admin.", rule=ADMIN_RULE)
    mine = [rule for rule in policy.rules if _applies_to(rule, actor)]
    for rule in mine:
        if (
            action in rule.actions
            and rule.covers_channel(actor.channel_id)
            and (instance is None or rule.covers_instance(instance))
        ):
            return Decision(
                True,
                action,
                f"Rule {rule.name!r} allows it.",
                rule=rule.name,
                approval=rule.approval,
                approvers=rule.approvers,
            )
    return Decision(False, action, _why_not(mine, actor, action, instance) + _group_note(policy, actor))


def groups_could_decide(policy: Policy, actor: Actor, action: Action, instance: InstanceRef | None) -> bool:
    """Whether belonging to some user group could change what :func:`decide` says for ``actor`` (taken to
    be in none): some rule granting through groups comes before every rule that names the person.
    ``instance`` None stands for any instance."""
    if actor.user_id in policy.admins:
        return False
    for rule in policy.rules:
        if not (
            action in rule.actions
            and rule.covers_channel(actor.channel_id)
            and (instance is None or rule.covers_instance(instance))
        ):
            continue
        if actor.user_id in rule.users:
            return False
        if rule.groups:
            return True
    return False


def _why_not(mine: list[Rule], actor: Actor, action: Action, instance: InstanceRef | None) -> str:
    verb = ACTION_VERBS[action]
    if not mine:
        return "No rule in the bot's policy gives you any permission."
    with_action = [rule for rule in mine if action in rule.actions]
    if not with_action:
        names = ", ".join(repr(rule.name) for rule in mine)
        return f"Your rules ({names}) do not allow you to {verb} instances."
    in_channel = [rule for rule in with_action if rule.covers_channel(actor.channel_id)]
    if not in_channel:
        channels = sorted({c for rule in with_action for c in rule.channels or ()})
        where = ", ".join(f"<#{channel}>" for channel in channels)
        return f"You may {verb} instances only in {where}, not in this channel."
    assert instance is not None  # a rule in this channel with this action would have matched otherwise
    patterns = sorted({p for rule in in_channel for p in rule.instances})
    return (
        f"You may {verb} only instances matching {', '.join(patterns)}; {instance.name} is not one of them."
    )


@dataclass(frozen=True)
class Permission:
    """One line of "what you may do" for the help answer."""

    rule: str
    actions: tuple[Action, ...]
    instances: tuple[str, ...]
    channels: tuple[str, ...] | None
    approval: Approval


def permissions_of(policy: Policy, actor: Actor) -> list[Permission]:
    if actor.user_id in policy.admins:
        return [Permission(ADMIN_RULE, tuple(Action), ("*",), None, "self")]
    return [
        Permission(rule.name, rule.actions, rule.instances, rule.channels, rule.approval)
        for rule in policy.rules
        if _applies_to(rule, actor)
    ]


def may_approve(approvers: Iterable[str], user_id: str, groups: frozenset[str]) -> bool:
    listed = set(approvers)
    return user_id in listed or bool(groups & listed)
