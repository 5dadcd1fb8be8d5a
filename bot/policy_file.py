"""The policy file (INTERFACE §4): its TOML schema and how each mistake in it is named, reading it into
the rules' :class:`~bot.core.rules.policy.Policy`, and keeping the last good policy across reloads
(SIGHUP)."""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from bot.core.rules.grammar import is_instance_id
from bot.core.rules.policy import Action, Policy, Rule, Watch, is_group_id

log = logging.getLogger(__name__)

_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_GLOB = re.compile(r"^(?:[A-Za-z0-9_.*?-]|\[!?[A-Za-z0-9_.-]+\])+$")
_PARTIAL_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F-]*$")


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


UserId = Annotated[str, AfterValidator(_user_id)]
GroupId = Annotated[str, AfterValidator(_group_id)]
ChannelId = Annotated[str, AfterValidator(_channel_id)]
Principal = Annotated[str, AfterValidator(_principal)]
InstancePattern = Annotated[str, AfterValidator(_instance_pattern)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _RuleSchema(_Strict):
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

    def to_rule(self) -> Rule:
        return Rule(
            name=self.name,
            users=self.users,
            groups=self.groups,
            channels=self.channels,
            instances=self.instances,
            actions=self.actions,
            approval=self.approval,
            approvers=self.approvers,
        )


class _WatchSchema(_Strict):
    instances: tuple[InstancePattern, ...] = Field(min_length=1)
    channel: ChannelId
    events: tuple[Literal["failed", "succeed"], ...] = ("failed",)
    stale_after_hours: float | None = Field(default=None, gt=0)

    def to_watch(self) -> Watch:
        return Watch(
            instances=self.instances,
            channel=self.channel,
            events=self.events,
            stale_after_hours=self.stale_after_hours,
        )


class _PolicySchema(_Strict):
    admins: tuple[UserId, ...] = ()
    rules: tuple[_RuleSchema, ...] = ()
    watch: tuple[_WatchSchema, ...] = ()

    @model_validator(mode="after")
    def _unique_rule_names(self) -> Self:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"rule name {rule.name!r} is used twice; names identify rules in the audit")
            seen.add(rule.name)
        return self

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


def parse_policy(text: str, source: str = "policy") -> Policy:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(source, [f"not valid TOML: {error}"]) from None
    try:
        return _PolicySchema.model_validate(data).to_policy()
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


def read_policy(path: Path) -> Policy:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise PolicyError(str(path), [f"cannot read the file ({error.strerror or error})"]) from None
    except UnicodeDecodeError:
        raise PolicyError(str(path), ["the file is not UTF-8 text"]) from None
    return parse_policy(text, str(path))


class PolicyHolder:
    """The policy in force. A reload that fails keeps the last good policy and logs why."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._policy = read_policy(path)
        self.reloads = 0
        self.failed_reloads = 0

    def __call__(self) -> Policy:
        return self._policy

    def reload(self) -> bool:
        try:
            policy = read_policy(self.path)
        except PolicyError as error:
            self.failed_reloads += 1
            log.error("policy reload failed, keeping the previous policy: %s", error)
            return False
        self._policy = policy
        self.reloads += 1
        log.info(
            "policy reloaded from %s: %d rules, %d admins", self.path, len(policy.rules), len(policy.admins)
        )
        return True
