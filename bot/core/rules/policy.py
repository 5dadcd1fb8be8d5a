"""The policy file (INTERFACE §4) and the decisions made from it.

Deny by default. Rules are read in file order and the first rule that matches the person, the channel,
the instance and the action decides, so a stricter rule (``approval = "peer"``) placed first wins over a
looser one below it.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from bot.core.rules.grammar import is_instance_id


class Action(StrEnum):
    BACKUP = "backup"
    LIST = "list"
    STATUS = "status"


ACTION_VERBS = {Action.BACKUP: "back up", Action.LIST: "list backups of", Action.STATUS: "see the status of"}

_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_GLOB = re.compile(r"^(?:[A-Za-z0-9_.*?-]|\[!?[A-Za-z0-9_.-]+\])+$")
_PARTIAL_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F-]*$")


def _user_id(value: str) -> str:
    if not _USER_ID.match(value):
        raise ValueError(f"{value!r} is not a Slack user ID (like U0123ABCD)")
    return value


def _group_id(value: str) -> str:
    if not _GROUP_ID.match(value):
        raise ValueError(f"{value!r} is not a Slack user-group ID (like S0123ABCD)")
    return value


def _channel_id(value: str) -> str:
    if not _CHANNEL_ID.match(value):
        raise ValueError(f"{value!r} is not a Slack channel ID (like C0123ABCD)")
    return value


def _principal(value: str) -> str:
    if not (_USER_ID.match(value) or _GROUP_ID.match(value)):
        raise ValueError(f"{value!r} is neither a Slack user ID (U…) nor a user-group ID (S…)")
    return value


def _instance_pattern(value: str) -> str:
    if is_instance_id(value):
        return value.lower()
    if _PARTIAL_ID.match(value):
        raise ValueError(f"{value!r} looks like an instance ID but is not a complete UUID")
    if not _GLOB.match(value):
        raise ValueError(
            f"{value!r} is not an instance name glob (letters, digits, _ - . with * ? [...]) or instance ID"
        )
    return value


UserId = Annotated[str, AfterValidator(_user_id)]
GroupId = Annotated[str, AfterValidator(_group_id)]
ChannelId = Annotated[str, AfterValidator(_channel_id)]
Principal = Annotated[str, AfterValidator(_principal)]
InstancePattern = Annotated[str, AfterValidator(_instance_pattern)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(_Strict):
    name: str = Field(min_length=1)
    users: tuple[UserId, ...] = ()
    groups: tuple[GroupId, ...] = ()
    channels: tuple[ChannelId, ...] | None = None
    instances: tuple[InstancePattern, ...] = Field(min_length=1)
    actions: tuple[Action, ...] = Field(min_length=1)
    approval: Literal["self", "peer"] = "self"
    approvers: tuple[Principal, ...] = ()

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if not self.users and not self.groups:
            raise ValueError("a rule needs users or groups; otherwise it grants nothing")
        if self.approval == "peer" and not self.approvers:
            raise ValueError('approval = "peer" needs approvers')
        if self.approval == "self" and self.approvers:
            raise ValueError('approvers are only used with approval = "peer"')
        return self

    def covers_instance(self, instance: InstanceRef) -> bool:
        return instance_matches(self.instances, instance)

    def covers_channel(self, channel_id: str) -> bool:
        return self.channels is None or channel_id in self.channels


class Watch(_Strict):
    instances: tuple[InstancePattern, ...] = Field(min_length=1)
    channel: ChannelId
    events: tuple[Literal["failed", "succeed"], ...] = ("failed",)
    stale_after_hours: float | None = Field(default=None, gt=0)


class Policy(_Strict):
    admins: tuple[UserId, ...] = ()
    rules: tuple[Rule, ...] = ()
    watch: tuple[Watch, ...] = ()

    @model_validator(mode="after")
    def _unique_rule_names(self) -> Self:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"rule name {rule.name!r} is used twice; names identify rules in the audit")
            seen.add(rule.name)
        return self

    def referenced_groups(self) -> frozenset[str]:
        """User groups whose membership decisions depend on."""
        groups = {group for rule in self.rules for group in rule.groups}
        groups |= {p for rule in self.rules for p in rule.approvers if _GROUP_ID.match(p)}
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


# --- loading -------------------------------------------------------------------------------------


class PolicyError(Exception):
    """The policy file cannot be used; ``problems`` names each mistake."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.source = source
        self.problems = list(problems)


def parse_policy(text: str, source: str = "policy") -> Policy:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(source, [f"not valid TOML: {error}"]) from None
    try:
        return Policy.model_validate(data)
    except ValidationError as error:
        raise PolicyError(source, _describe(error, data)) from None


def _describe(error: ValidationError, data: object) -> list[str]:
    problems = []
    details = error.errors(include_url=False)
    for detail in details:
        if detail["type"] == "too_short" and any(
            other["loc"][: len(detail["loc"])] == detail["loc"] and other is not detail for other in details
        ):
            continue  # the list is only empty because its items were refused, and those are reported
        where = _location(detail["loc"], data)
        message = detail["msg"].removeprefix("Value error, ")
        if detail["type"] == "extra_forbidden":
            message = "unknown key"
        elif detail["type"] == "enum":
            message = f"unknown action {detail['input']!r} (allowed: backup, list, status)"
        elif detail["type"] == "literal_error":
            message = f"{detail['input']!r} is not allowed ({message.removeprefix('Input should be ')})"
        elif detail["type"] == "missing":
            message = "required key is missing"
        problems.append(f"{where}: {message}" if where else message)
    return problems


def _location(loc: tuple[int | str, ...], data: object) -> str:
    """``rules[0] ('sre-prod').actions[1]`` for a pydantic error location."""
    text = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("name"), str):
                text += f" ({node['name']!r})"
        else:
            text += ("." if text else "") + part
            node = node.get(part) if isinstance(node, dict) else None
    return text


# --- decisions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """The person asking, with the user groups they belong to among those the policy names.

    ``groups_unknown`` carries the reason when membership could not be read: group rules then grant
    nothing (fail closed) and the person is told why.
    """

    user_id: str
    channel_id: str
    groups: frozenset[str] = frozenset()
    groups_unknown: str | None = None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    action: Action
    reason: str
    rule: str | None = None
    approval: Literal["self", "peer"] = "self"
    approvers: tuple[str, ...] = ()


ADMIN_RULE = "admins"


def _applies_to(rule: Rule, actor: Actor) -> bool:
    return actor.user_id in rule.users or bool(actor.groups.intersection(rule.groups))


def _group_note(policy: Policy, actor: Actor) -> str:
    if actor.groups_unknown is None or not policy.referenced_groups():
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
    approval: Literal["self", "peer"]


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
