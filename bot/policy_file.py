"""The policy file (INTERFACE §4): its TOML schema and how each mistake in it is named (every problem in
one run, cloud names optionally checked against a clouds file), reading it into the rules'
:class:`~bot.core.rules.policy.Policy`, logging its warnings, and keeping the last good policy across
reloads (SIGHUP)."""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo

from bot.clouds_file import CloudsFileError, cloud_names
from bot.core.rules.grammar import is_instance_id
from bot.core.rules.policy import Action, Policy, Rule, Watch, is_group_id
from bot.core.rules.policy_warnings import policy_warnings
from bot.file_locations import location

log = logging.getLogger(__name__)

_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
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
    if not is_group_id(value):
        raise ValueError(f"{value!r} is not a Slack user-group ID (like S0123ABCD)")
    return value


def _channel_id(value: str) -> str:
    if not _CHANNEL_ID.match(value):
        raise ValueError(f"{value!r} is not a Slack channel ID (like C0123ABCD)")
    return value


def _principal(value: str) -> str:
    if not (_USER_ID.match(value) or is_group_id(value)):
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


def _pairs(tags: dict[str, str] | None) -> tuple[tuple[str, str], ...] | None:
    return None if tags is None else tuple(tags.items())


class _RuleSchema(_Strict):
    """One ``[[rules]]`` table. Checks across its keys (users or groups, approval and approvers) run on
    the raw table in :func:`parse_policy`, so that they are reported together with the keys' own."""

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

    def to_rule(self) -> Rule:
        return Rule(
            name=self.name,
            users=self.users,
            groups=self.groups,
            channels=self.channels,
            clouds=self.clouds,
            tags=_pairs(self.tags),
            instances=self.instances,
            actions=self.actions,
            approval=self.approval,
            approvers=self.approvers,
        )


class _WatchSchema(_Strict):
    instances: tuple[InstancePattern, ...] = Field(min_length=1)
    clouds: tuple[CloudName, ...] | None = Field(default=None, min_length=1)
    tags: dict[TagKey, TagValue] | None = Field(default=None, min_length=1)
    channel: ChannelId
    events: tuple[Literal["failed", "succeed"], ...] = ("failed",)
    stale_after_hours: float | None = Field(default=None, gt=0, le=MAX_STALE_AFTER_HOURS, allow_inf_nan=False)

    def to_watch(self) -> Watch:
        return Watch(
            instances=self.instances,
            clouds=self.clouds,
            tags=_pairs(self.tags),
            channel=self.channel,
            events=self.events,
            stale_after_hours=self.stale_after_hours,
        )


class _PolicySchema(_Strict):
    admins: tuple[UserId, ...] = ()
    rules: tuple[_RuleSchema, ...] = ()
    watch: tuple[_WatchSchema, ...] = ()

    def to_policy(self) -> Policy:
        return Policy(
            admins=self.admins,
            rules=tuple(rule.to_rule() for rule in self.rules),
            watch=tuple(watch.to_watch() for watch in self.watch),
        )


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
        policy = _PolicySchema.model_validate(data, context={"known_clouds": known_clouds}).to_policy()
    except ValidationError as error:
        problems += _describe(error, data)
    # Checks across the keys of a rule run on the raw table, so that they are reported together with the
    # problems of the keys themselves rather than in a second round.
    rules = data.get("rules")
    for index, rule in enumerate(rules if isinstance(rules, list) else []):
        if isinstance(rule, dict):
            where = location(("rules", index), data)
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
        where = location(loc, data)
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


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise PolicyError(str(path), [f"cannot read the file ({error.strerror or error})"]) from None
    except UnicodeDecodeError:
        raise PolicyError(str(path), ["the file is not UTF-8 text"]) from None


def read_policy(path: Path, known_clouds: frozenset[str] | None = None) -> Policy:
    return parse_policy(_read_text(path), str(path), known_clouds)


def read_cloud_names(path: Path) -> frozenset[str]:
    """The names of the clouds of a clouds file (INTERFACE §8), for checking a policy.

    The whole file is checked (:mod:`bot.clouds_file`), except that the environment variables it names are
    not read: ``check-policy`` may run where the secrets are not.
    """
    try:
        return cloud_names(path)
    except CloudsFileError as error:
        raise PolicyError(error.source, error.problems) from None


def log_warnings(policy: Policy, path: Path) -> None:
    for warning in policy_warnings(policy):
        log.warning("policy %s: %s", path, warning)


class PolicyHolder:
    """The policy in force. A reload that fails keeps the last good policy and logs why.

    Warnings (see :func:`policy_warnings`) are never fatal: the server logs them once it has started
    (:meth:`log_warnings`), and a reload logs those of the new policy.
    """

    def __init__(self, path: Path, known_clouds: frozenset[str] | None = None) -> None:
        self.path = path
        self.known_clouds = known_clouds
        self._policy = read_policy(path, known_clouds)
        self.reloads = 0
        self.failed_reloads = 0

    def __call__(self) -> Policy:
        return self._policy

    def log_warnings(self) -> None:
        log_warnings(self._policy, self.path)

    def reload(self) -> bool:
        try:
            policy = read_policy(self.path, self.known_clouds)
        except PolicyError as error:
            self.failed_reloads += 1
            log.error("policy reload failed, keeping the previous policy: %s", error)
            return False
        self._policy = policy
        self.reloads += 1
        log.info(
            "policy reloaded from %s: %d rules, %d admins", self.path, len(policy.rules), len(policy.admins)
        )
        log_warnings(policy, self.path)
        return True
