"""The policy file (INTERFACE §4) and the decisions made from it.

Deny by default. Rules are read in file order and the first rule that matches the person, the channel,
the instance and the action decides, so a stricter rule (``approval = "peer"``) placed first wins over a
looser one below it.
"""

from __future__ import annotations

import re
import tomllib
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo

from bot.core.command import is_instance_id


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
_CLOUD_NAME = re.compile(r"^[a-z0-9-]{1,32}$")
_TAG_KEY = re.compile(r"^[A-Za-z0-9_.:/=+@-](?:[A-Za-z0-9_.:/=+@ -]{0,126}[A-Za-z0-9_.:/=+@-])?$")

#: ``stale_after_hours`` lies in (0, MAX_STALE_AFTER_HOURS]: a year is longer than any backup schedule.
MAX_STALE_AFTER_HOURS = 8760


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


def _cloud_name(value: str, info: ValidationInfo) -> str:
    if not _CLOUD_NAME.match(value):
        raise ValueError(f"{value!r} is not a cloud name (1 to 32 of a-z, 0-9, -)")
    known = info.context.get("known_clouds") if isinstance(info.context, Mapping) else None
    if known is not None and value not in known:
        names = ", ".join(sorted(known)) or "no clouds"
        raise ValueError(f"unknown cloud {value!r} (the clouds file names {names})")
    return value


def _tag_key(value: str) -> str:
    if not _TAG_KEY.match(value):
        raise ValueError(
            f"{value!r} is not a tag key (1 to 128 of letters, digits, spaces and _ . : / = + - @; "
            "no space at either end)"
        )
    return value


def _tag_value(value: str) -> str:
    if len(value) > 255:
        raise ValueError("a tag value has at most 255 characters")
    return value


UserId = Annotated[str, AfterValidator(_user_id)]
GroupId = Annotated[str, AfterValidator(_group_id)]
ChannelId = Annotated[str, AfterValidator(_channel_id)]
Principal = Annotated[str, AfterValidator(_principal)]
InstancePattern = Annotated[str, AfterValidator(_instance_pattern)]
CloudName = Annotated[str, AfterValidator(_cloud_name)]
TagKey = Annotated[str, AfterValidator(_tag_key)]
TagValue = Annotated[str, AfterValidator(_tag_value)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(_Strict):
    """One grant. ``clouds`` and ``tags`` (INTERFACE §4) are read and checked, not yet used to decide."""

    name: str = Field(min_length=1)
    users: tuple[UserId, ...] = ()
    groups: tuple[GroupId, ...] = ()
    channels: tuple[ChannelId, ...] | None = None
    clouds: tuple[CloudName, ...] | None = Field(default=None, min_length=1)
    tags: dict[TagKey, TagValue] | None = Field(default=None, min_length=1)
    instances: tuple[InstancePattern, ...] = Field(min_length=1)
    actions: tuple[Action, ...] = Field(min_length=1)
    approval: Literal["self", "peer"] = "self"
    approvers: tuple[Principal, ...] = ()

    def covers_instance(self, instance: InstanceRef) -> bool:
        return instance_matches(self.instances, instance)

    def covers_channel(self, channel_id: str) -> bool:
        return self.channels is None or channel_id in self.channels


class Watch(_Strict):
    """``clouds`` and ``tags`` are read and checked, not yet used to choose what is watched."""

    instances: tuple[InstancePattern, ...] = Field(min_length=1)
    clouds: tuple[CloudName, ...] | None = Field(default=None, min_length=1)
    tags: dict[TagKey, TagValue] | None = Field(default=None, min_length=1)
    channel: ChannelId
    events: tuple[Literal["failed", "succeed"], ...] = ("failed",)
    stale_after_hours: float | None = Field(default=None, gt=0, le=MAX_STALE_AFTER_HOURS, allow_inf_nan=False)


class Policy(_Strict):
    admins: tuple[UserId, ...] = ()
    rules: tuple[Rule, ...] = ()
    watch: tuple[Watch, ...] = ()

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


def parse_policy(text: str, source: str = "policy", known_clouds: frozenset[str] | None = None) -> Policy:
    """The policy in ``text``, or a :class:`PolicyError` naming every problem at once.

    With ``known_clouds``, a rule or watch naming another cloud is a problem too.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(source, [f"not valid TOML: {error}"]) from None
    problems: list[str] = []
    policy: Policy | None = None
    try:
        policy = Policy.model_validate(data, context={"known_clouds": known_clouds})
    except ValidationError as error:
        problems += _describe(error, data)
    # Checks across the keys of a rule run on the raw table, so that they are reported together with the
    # problems of the keys themselves rather than in a second round.
    rules = data.get("rules")
    for index, rule in enumerate(rules if isinstance(rules, list) else []):
        if isinstance(rule, dict):
            where = _location(("rules", index), data)
            problems += [f"{where}: {problem}" for problem in _incoherence(rule)]
    if problems:
        raise PolicyError(source, sorted(problems, key=lambda problem: _file_order(problem, data)))
    assert policy is not None
    return policy


_PLACE = re.compile(r"^(\w+)(?:\[(\d+)\])?")


def _file_order(problem: str, data: Mapping[str, object]) -> tuple[int, int]:
    """Sorts problems as the file runs: by top-level key, then by table (a stable sort keeps the rest)."""
    place = _PLACE.match(problem)
    keys = list(data)
    if place is None or place[1] not in keys:
        return (len(keys), 0)
    return (keys.index(place[1]), int(place[2] or 0))


def _incoherence(rule: Mapping[str, Any]) -> list[str]:
    problems = []
    if not rule.get("users") and not rule.get("groups"):
        problems.append("a rule needs users or groups; otherwise it grants nothing")
    approval = rule.get("approval", "self")
    if approval == "peer" and not rule.get("approvers"):
        problems.append('approval = "peer" needs approvers')
    if approval == "self" and rule.get("approvers"):
        problems.append('approvers are only used with approval = "peer"')
    return problems


_EMPTY = {
    "clouds": "must not be empty; leave it out for every cloud",
    "tags": "must not be empty; leave it out to match any tags",
}


def _describe(error: ValidationError, data: object) -> list[str]:
    problems = []
    details = error.errors(include_url=False)
    for detail in details:
        loc = detail["loc"]
        if detail["type"] == "too_short" and any(
            other["loc"][: len(loc)] == loc and other is not detail for other in details
        ):
            continue  # the list is only empty because its items were refused, and those are reported
        if loc and loc[-1] == "[key]":
            loc = loc[:-2]  # a refused key of a table (tags): the message names the key
        where = _location(loc, data)
        message = _plain(detail["type"], detail["msg"], detail["input"], loc)
        problems.append(f"{where}: {message}" if where else message)
    return problems


def _plain(error_type: str, message: str, value: object, loc: tuple[int | str, ...]) -> str:
    """The problem in this module's words, never pydantic's."""
    key = next((part for part in reversed(loc) if isinstance(part, str)), "")
    in_tags = len(loc) >= 2 and loc[-2] == "tags"
    if key == "stale_after_hours" and error_type != "extra_forbidden":
        return f"must be a number of hours above 0 and at most {MAX_STALE_AFTER_HOURS} (a year)"
    match error_type:
        case "extra_forbidden":
            return "unknown key"
        case "enum":
            return f"unknown action {value!r} (allowed: backup, list, status)"
        case "literal_error":
            return f"{value!r} is not allowed ({message.removeprefix('Input should be ')})"
        case "missing":
            return "required key is missing"
        case "too_short":
            return _EMPTY.get(key, "must not be empty")
        case "string_type" if in_tags:
            return 'must be a string, or "*" for any value'
        case "string_type":
            return "must be a string (in quotes)"
        case "tuple_type" | "list_type":
            return 'must be a list, like ["…"]'
        case "dict_type" | "model_type" | "model_attributes_type":
            return "must be a table"
    return message.removeprefix("Value error, ")


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


# --- warnings ------------------------------------------------------------------------------------
#
# A rule below another can lose to it: the first rule that matches decides. That is only worth a warning
# when it changes what happens (a ``self`` rule above a ``peer`` rule lets people skip the approval;
# another rule's approvers decide), or when the rule below never decides anything at all.


def policy_warnings(policy: Policy) -> list[str]:
    """What ``check-policy`` and start-up warn about: the policy is valid, but likely not what was meant."""
    warnings = []
    if not policy.admins and not policy.rules:
        warnings.append("the policy allows nothing: it has no admins and no rules")
    names = [rule.name for rule in policy.rules]

    def label(index: int) -> str:
        name = names[index]
        return f"rule {name!r} (rules[{index}])" if names.count(name) > 1 else f"rule {name!r}"

    for later_index, later in enumerate(policy.rules):
        if not later.groups and set(later.users) <= set(policy.admins):
            warnings.append(f"{label(later_index)} never decides: every user it names is an admin")
            continue
        for earlier_index, earlier in enumerate(policy.rules[:later_index]):
            warning = _shadowing(earlier, later, label(earlier_index), label(later_index))
            if warning is not None:
                warnings.append(warning)
    for name in dict.fromkeys(names):
        indexes = [f"rules[{i}]" for i, other in enumerate(names) if other == name]
        if len(indexes) > 1:
            warnings.append(
                f"rule name {name!r} is used by {', '.join(indexes[:-1])} and {indexes[-1]}; "
                "the audit trail cannot tell them apart"
            )
    return warnings


def _shadowing(earlier: Rule, later: Rule, earlier_label: str, later_label: str) -> str | None:
    example = _overlap(earlier, later)
    if example is None:
        return None
    if earlier.approval == "self" and later.approval == "peer":
        return (
            f'{later_label} (approval = "peer") can be skipped: {earlier_label} above it allows the same '
            f"without approval, e.g. {example}"
        )
    if (
        earlier.approval == "peer"
        and later.approval == "peer"
        and set(earlier.approvers) != set(later.approvers)
    ):
        return (
            f"{later_label} asks {', '.join(later.approvers)} to approve, but {earlier_label} above it "
            f"decides first and asks {', '.join(earlier.approvers)}, e.g. {example}"
        )
    if _covers(earlier, later):
        return f"{later_label} never decides: {earlier_label} above it already matches everything it matches"
    return None


def _covers(earlier: Rule, later: Rule) -> bool:
    """Whether ``earlier`` surely matches whatever ``later`` matches (a safe under-estimate)."""
    return (
        set(later.users) <= set(earlier.users)
        and set(later.groups) <= set(earlier.groups)
        and (
            earlier.channels is None
            or (later.channels is not None and set(later.channels) <= set(earlier.channels))
        )
        and set(later.actions) <= set(earlier.actions)
        and ("*" in earlier.instances or set(later.instances) <= set(earlier.instances))
    )


def _overlap(earlier: Rule, later: Rule) -> str | None:
    """A person, channel, action and instance both rules match, in words; None when there is none."""
    actions = [action for action in Action if action in later.actions and action in earlier.actions]
    who = _common_person(earlier, later)
    channel = _common_channel(earlier.channels, later.channels)
    instance = next(
        (
            found
            for later_pattern in later.instances
            for earlier_pattern in earlier.instances
            if (found := _common_instance(earlier_pattern, later_pattern)) is not None
        ),
        None,
    )
    if not actions or who is None or channel is None or instance is None:
        return None
    return f"{who} {channel} may {ACTION_VERBS[actions[0]]} {instance}"


def _common_person(earlier: Rule, later: Rule) -> str | None:
    for user in later.users:
        if user in earlier.users:
            return f"user {user}"
    for group in later.groups:
        if group in earlier.groups:
            return f"a member of {group}"
    # Membership is only known at run time, so these are possibilities.
    if later.users and earlier.groups:
        return f"user {later.users[0]}, if a member of {earlier.groups[0]},"
    if earlier.users and later.groups:
        return f"user {earlier.users[0]}, if a member of {later.groups[0]},"
    if earlier.groups and later.groups:
        return f"a member of both {earlier.groups[0]} and {later.groups[0]}"
    return None


def _common_channel(earlier: tuple[str, ...] | None, later: tuple[str, ...] | None) -> str | None:
    if earlier is None and later is None:
        return "in any channel"
    if earlier is None or later is None:
        return f"in channel {(later or earlier or ('',))[0]}"
    common = [channel for channel in later if channel in earlier]
    return f"in channel {common[0]}" if common else None


def _common_instance(earlier: str, later: str) -> str | None:
    if is_instance_id(earlier) and is_instance_id(later):
        return earlier if earlier == later else None
    if is_instance_id(earlier) or is_instance_id(later):
        instance_id, glob = (earlier, later) if is_instance_id(earlier) else (later, earlier)
        return instance_id if glob == "*" else f"{instance_id} if it is named like {glob}"
    return glob_example(earlier, later)


#: Characters of instance names, in the order examples prefer them.
_NAME_CHARACTERS = "xyzabcdefghijklmnopqrstuvw0123456789-_.XYZABCDEFGHIJKLMNOPQRSTUVW"
_STAR = None  # a token that matches any run of characters
_Token = frozenset[str] | None


def _tokens(pattern: str, *, star_takes_one: bool) -> list[_Token]:
    """The glob as tokens: the set of characters one position accepts, or ``_STAR``."""
    tokens: list[_Token] = []
    index = 0
    while index < len(pattern):
        if pattern[index] == "*":
            if star_takes_one:
                tokens.append(frozenset(_NAME_CHARACTERS))
            tokens.append(_STAR)
            index += 1
            continue
        end = pattern.index("]", index + 2) + 1 if pattern[index] == "[" else index + 1
        piece = pattern[index:end]
        tokens.append(frozenset(c for c in _NAME_CHARACTERS if fnmatchcase(c, piece)))
        index = end
    return tokens


def glob_example(first: str, second: str) -> str | None:
    """A name both globs match, or None when there is none. Prefers names where each ``*`` stands for
    something (``redis-prod-x`` rather than ``redis-prod-``)."""
    for star_takes_one in (True, False):
        found = _shortest_common(
            _tokens(first, star_takes_one=star_takes_one), _tokens(second, star_takes_one=star_takes_one)
        )
        if found is not None:
            return found
    return None


def _shortest_common(first: list[_Token], second: list[_Token]) -> str | None:
    """Breadth-first through pairs of positions in both globs (the product of the two automata)."""
    queue: deque[tuple[int, int, str]] = deque([(0, 0, "")])
    seen: set[tuple[int, int, bool]] = set()
    while queue:
        i, j, text = queue.popleft()
        if (i, j, bool(text)) in seen:
            continue
        seen.add((i, j, bool(text)))
        if i == len(first) and j == len(second) and text:
            return text
        if i < len(first) and first[i] is _STAR:
            queue.appendleft((i + 1, j, text))
        if j < len(second) and second[j] is _STAR:
            queue.appendleft((i, j + 1, text))
        for next_i, accepted in _steps(first, i):
            for next_j, also in _steps(second, j):
                common = accepted & also
                if common:
                    queue.append((next_i, next_j, text + min(common, key=_NAME_CHARACTERS.index)))
    return None


def _steps(tokens: list[_Token], index: int) -> list[tuple[int, frozenset[str]]]:
    """Where one more character leads from ``index``, and which characters may be it."""
    if index == len(tokens):
        return []
    token = tokens[index]
    if token is _STAR:
        return [(index, frozenset(_NAME_CHARACTERS))]
    return [(index + 1, token)]
