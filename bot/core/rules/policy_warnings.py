"""Warnings about a valid policy that is likely not what was meant (INTERFACE §4): rules that lose to a
rule above them, duplicate rule names, a policy that allows nothing. ``check-policy`` prints them and the
server logs them; they are never fatal.

A rule below another can lose to it: the first rule that matches decides. That is only worth a warning
when it changes what happens (a ``self`` rule above a ``peer`` rule lets people skip the approval;
another rule's approvers decide), or when the rule below never decides anything at all. Each warning
gives an example: a person, a channel, an action and an instance both rules match.
"""

from __future__ import annotations

from collections import deque
from fnmatch import fnmatchcase

from bot.core.rules.grammar import is_instance_id
from bot.core.rules.policy import ACTION_VERBS, Action, Policy, Rule, Tags


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
        and (
            earlier.clouds is None or (later.clouds is not None and set(later.clouds) <= set(earlier.clouds))
        )
        and _tags_imply(later.tags, earlier.tags)
    )


def _tags_imply(later: Tags | None, earlier: Tags | None) -> bool:
    """Whether every instance with ``later``'s tags surely has ``earlier``'s."""
    if earlier is None:
        return True
    required = dict(later or ())
    return all(key in required and value in ("*", required[key]) for key, value in earlier)


def _common_clouds(earlier: tuple[str, ...] | None, later: tuple[str, ...] | None) -> str | None:
    """Where an instance both rules cover can be: ``""`` anywhere, else ``" in cloud …"``; None: nowhere."""
    if earlier is None and later is None:
        return ""
    common = [cloud for cloud in later or earlier or () if earlier is None or cloud in earlier]
    return f" in cloud {common[0]}" if common else None


def _common_tags(earlier: Tags | None, later: Tags | None) -> str | None:
    """Tags an instance both rules cover would carry, in words; None when no instance can have both (one
    key, two different values)."""
    wanted: dict[str, str] = {}
    for key, value in (*(earlier or ()), *(later or ())):
        known = wanted.get(key)
        if known is not None and "*" not in (known, value) and known != value:
            return None
        if known is None or known == "*":
            wanted[key] = value
    return "".join(f" tagged {key}={value}" for key, value in wanted.items())


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
    clouds = _common_clouds(earlier.clouds, later.clouds)
    tags = _common_tags(earlier.tags, later.tags)
    if not actions or who is None or channel is None or instance is None or clouds is None or tags is None:
        return None
    return f"{who} {channel} may {ACTION_VERBS[actions[0]]} {instance}{clouds}{tags}"


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
