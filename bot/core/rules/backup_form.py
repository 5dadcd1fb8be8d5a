"""The backup form (INTERFACE §11) as plain rules: which instances its picker offers a person, and what a
submitted form asks for. Pure functions, no I/O; the Slack adapter builds the modal and reads it.

- The picker lists only instances the policy lets the person back up in the form's channel (each one
  decided as a typed command would be; user groups Slack could not tell grant nothing) — or, for a form
  opened where there is no channel (the Home tab), in at least one channel, the channel being chosen in
  the form and the policy decided for it on submission — that match what
  they typed (case-insensitive, anywhere in the shown name or in the ID), at most :data:`MAX_OPTIONS`:
  an exact match first, then names starting with the text, then the rest, each by name and then by cloud.
- An option's value is the instance ID, after its cloud when several clouds are served (``eu-nl/<id>``),
  so a submission names exactly the instance picked, whatever its name; its label is the name (qualified
  the same way), cut to :data:`MAX_OPTION_LABEL` characters.
- A submission becomes the :class:`~bot.core.rules.grammar.BackupCommand` the typed command would be, so it
  runs the same path; the remark is counted as a typed one (code points, as DCS counts).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from bot.core.rules.grammar import (
    BackupCommand,
    UsageError,
    canonical_instance,
    check_remark,
)
from bot.core.rules.home import backup_channels
from bot.core.rules.instances import BackupFormat, Instance
from bot.core.rules.policy import Action, Actor, Policy, decide, ref_of

#: Block Kit: a block_suggestion answer lists at most 100 options.
MAX_OPTIONS: Final = 100
#: Block Kit: an option's text has at most 75 characters.
MAX_OPTION_LABEL: Final = 75
#: The instance picker's queries are cut to this (a name and its cloud are shorter).
MAX_QUERY_CHARS: Final = 100

# The form's fields: each input's block_id and action_id (INTERFACE §11, binding).
INSTANCE_FIELD: Final = "instance"
FORMAT_FIELD: Final = "format"
REMARK_FIELD: Final = "remark"
DRY_RUN_FIELD: Final = "dry_run"
#: Only in a form opened without a channel (from the Home tab): where the card goes.
CHANNEL_FIELD: Final = "channel"


@dataclass(frozen=True)
class InstanceOption:
    value: str
    label: str


def option_value(instance: Instance, *, qualified: bool) -> str:
    return (
        f"{instance.cloud}/{instance.instance_id}" if qualified and instance.cloud else instance.instance_id
    )


def shown_name(instance: Instance, *, qualified: bool) -> str:
    return f"{instance.cloud}/{instance.name}" if qualified and instance.cloud else instance.name


def option_label(instance: Instance, *, qualified: bool) -> str:
    label = shown_name(instance, qualified=qualified)
    return label if len(label) <= MAX_OPTION_LABEL else label[: MAX_OPTION_LABEL - 1] + "…"


def may_back_up(policy: Policy, actor: Actor, instance: Instance) -> bool:
    return decide(policy, actor, Action.BACKUP, ref_of(instance)).allowed


def may_back_up_somewhere(policy: Policy, actor: Actor, instance: Instance) -> bool:
    """Whether some channel lets ``actor`` back ``instance`` up (``actor.channel_id`` is not used)."""
    return backup_channels(policy, actor, ref_of(instance)) is not None


def instance_options(
    instances: Iterable[Instance],
    policy: Policy,
    actor: Actor,
    typed: str,
    *,
    qualified: bool,
    anywhere: bool = False,
    limit: int = MAX_OPTIONS,
) -> list[InstanceOption]:
    """The picker's options for ``actor`` having typed ``typed`` (see the module doc); ``anywhere``: in
    any channel, not just ``actor.channel_id``."""
    allowed = may_back_up_somewhere if anywhere else may_back_up
    query = typed.strip()[:MAX_QUERY_CHARS].casefold()
    ranked: list[tuple[int, str, str, Instance]] = []
    for instance in instances:
        name = shown_name(instance, qualified=qualified).casefold()
        bare = instance.name.casefold()
        if query and query not in name and query not in instance.instance_id.lower():
            continue
        if not allowed(policy, actor, instance):
            continue
        rank = 0 if query in (bare, name) else 1 if bare.startswith(query) or name.startswith(query) else 2
        ranked.append((rank, bare, instance.cloud or "", instance))
    ranked.sort(key=lambda entry: entry[:3])
    seen: set[str] = set()
    options: list[InstanceOption] = []
    for *_, instance in ranked:
        value = option_value(instance, qualified=qualified)
        if value in seen:
            continue
        seen.add(value)
        options.append(InstanceOption(value, option_label(instance, qualified=qualified)))
        if len(options) == limit:
            break
    return options


@dataclass(frozen=True)
class FormInput:
    """What a person entered in the form: the picked option's value (None: nothing picked), the format's
    value, the remark as typed, whether the dry run is ticked, and the channel chosen (only a form opened
    without one asks)."""

    instance: str | None
    backup_format: str | None
    remark: str | None
    dry_run: bool = False
    channel: str | None = None


@dataclass(frozen=True)
class FormErrors:
    """Messages for the fields that cannot be taken as they are, by field (block_id)."""

    errors: dict[str, str] = field(default_factory=dict)


_FORMATS: Final = {f.value: f for f in BackupFormat}


def read_form(entered: FormInput) -> BackupCommand | FormErrors:
    """The command a submitted form asks for, or what is wrong with its fields."""
    errors: dict[str, str] = {}
    instance = canonical_instance(entered.instance) if entered.instance else None
    if instance is None:
        errors[INSTANCE_FIELD] = (
            "Please pick an instance from the list."
            if not entered.instance
            else "That is not an instance this form offers. Please pick one from the list."
        )
    backup_format: BackupFormat | None = None
    if entered.backup_format:
        backup_format = _FORMATS.get(entered.backup_format.lower())
        if backup_format is None:
            errors[FORMAT_FIELD] = f"Choose {' or '.join(f.upper() for f in _FORMATS)}."
    remark = check_remark(entered.remark or "")
    if isinstance(remark, UsageError):
        errors[REMARK_FIELD] = remark.message
        remark = None
    if errors or instance is None:
        return FormErrors(errors)
    return BackupCommand(instance, backup_format, remark, entered.dry_run)
