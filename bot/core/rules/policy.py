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
from bot.core.rules.instances import Instance


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
    """One grant. ``clouds`` and ``tags`` (INTERFACE §4) narrow the instances: ``None`` means any cloud and
    any tags. ``tags`` holds (key, value) pairs, ``"*"`` for any value (see :func:`tags_match`)."""

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
        return (
            instance_matches(self.instances, instance)
            and cloud_matches(self.clouds, instance)
            and tags_match(self.tags, instance)
        )

    def covers_channel(self, channel_id: str) -> bool:
        return self.channels is None or channel_id in self.channels


@dataclass(frozen=True, kw_only=True)
class Watch:
    """What is watched into ``channel``: instances matching ``instances``, in ``clouds`` (None: any) and
    carrying ``tags`` (None: any)."""

    instances: tuple[str, ...]
    clouds: tuple[str, ...] | None = None
    tags: tuple[tuple[str, str], ...] | None = None
    channel: str
    events: tuple[WatchEvent, ...] = ("failed",)
    stale_after_hours: float | None = None

    def covers_instance(self, instance: InstanceRef) -> bool:
        return (
            instance_matches(self.instances, instance)
            and cloud_matches(self.clouds, instance)
            and tags_match(self.tags, instance)
        )


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


Tags = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class InstanceRef:
    """An instance as decisions see it. ``cloud`` None: not known which cloud (a rule limited to clouds
    does not cover it). ``tags`` are the instance's own DCS tags; None: not known (a rule that asks for
    tags does not cover it) — fail closed both times."""

    instance_id: str
    name: str
    cloud: str | None = None
    tags: Tags | None = None


def ref_of(instance: Instance) -> InstanceRef:
    return InstanceRef(instance.instance_id, instance.name, instance.cloud, instance.tags)


def cloud_matches(clouds: tuple[str, ...] | None, instance: InstanceRef) -> bool:
    return clouds is None or (instance.cloud is not None and instance.cloud in clouds)


def tags_match(wanted: Tags | None, instance: InstanceRef) -> bool:
    """Every wanted tag is on the instance with that value (``"*"``: the key is there, any value)."""
    if wanted is None:
        return True
    if instance.tags is None:
        return False
    have: dict[str, set[str]] = {}
    for key, value in instance.tags:
        have.setdefault(key, set()).add(value)
    return all(key in have and (value == "*" or value in have[key]) for key, value in wanted)


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
    #: The deciding rule's ``clouds`` and ``tags`` (None: not limited), shown by dry runs.
    clouds: tuple[str, ...] | None = None
    tags: Tags | None = None


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
                clouds=rule.clouds,
                tags=rule.tags,
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
    named = [rule for rule in in_channel if instance_matches(rule.instances, instance)]
    if not named:
        return (
            f"You may {verb} only instances matching {', '.join(patterns)}; "
            f"{instance.name} is not one of them."
        )
    limits = "; ".join(f"rule {rule.name!r}: {describe_scope(rule.clouds, rule.tags)}" for rule in named)
    return f"You may {verb} {instance.name} only {limits} — {_described(instance)}."


def describe_scope(clouds: tuple[str, ...] | None, tags: Tags | None) -> str:
    """``in cloud eu-de, with tags env=prod, team=*`` (or ``anywhere``), for help, dry runs and refusals."""
    parts = []
    if clouds is not None:
        parts.append(("in cloud " if len(clouds) == 1 else "in clouds ") + ", ".join(clouds))
    if tags is not None:
        parts.append(("with tag " if len(tags) == 1 else "with tags ") + format_tags(tags))
    return ", ".join(parts) or "anywhere"


def format_tags(tags: Tags) -> str:
    return ", ".join(f"{key}={value}" for key, value in tags)


def _described(instance: InstanceRef) -> str:
    cloud = f"it is in cloud {instance.cloud}" if instance.cloud is not None else "its cloud is not known"
    if instance.tags is None:
        tags = "its tags are not known"
    elif instance.tags:
        tags = f"its tags are {format_tags(instance.tags)}"
    else:
        tags = "it has no tags"
    return f"{cloud} and {tags}"


@dataclass(frozen=True)
class Permission:
    """One line of "what you may do" for the help answer."""

    rule: str
    actions: tuple[Action, ...]
    instances: tuple[str, ...]
    channels: tuple[str, ...] | None
    approval: Approval
    clouds: tuple[str, ...] | None = None
    tags: Tags | None = None


def permissions_of(policy: Policy, actor: Actor) -> list[Permission]:
    if actor.user_id in policy.admins:
        return [Permission(ADMIN_RULE, tuple(Action), ("*",), None, "self")]
    return [
        Permission(
            rule.name, rule.actions, rule.instances, rule.channels, rule.approval, rule.clouds, rule.tags
        )
        for rule in policy.rules
        if _applies_to(rule, actor)
    ]


def may_approve(approvers: Iterable[str], user_id: str, groups: frozenset[str]) -> bool:
    listed = set(approvers)
    return user_id in listed or bool(groups & listed)
