"""Block Kit messages for the core's replies and notices — pure functions, no I/O.

Every piece of text that a person typed (remarks, commands, names echoed back) goes through
:func:`escape`, so nothing a user writes can become ``<!channel>``, ``<!here>`` or a user mention.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.core.rules.backup_request import BackupRequest, RequestState
from bot.core.rules.grammar import is_instance_id, split_instance
from bot.core.rules.instances import BackupRecord, Instance
from bot.core.rules.living import percent
from bot.core.rules.messages import (
    ApprovalExpired,
    ApprovalRequested,
    BackupFinished,
    BackupList,
    BackupNotStarted,
    BackupsRecovered,
    BackupsStale,
    BackupStarted,
    BackupStatus,
    CardClosed,
    ClickRefused,
    CloudUnavailable,
    Confirmation,
    DryRun,
    GroupsUnavailable,
    Help,
    InstanceAmbiguous,
    InstanceNotFound,
    InternalError,
    NoBackupCreated,
    NotBackupable,
    Notice,
    NoticeCopy,
    OutcomeAmbiguous,
    OutcomeChecking,
    Refusal,
    Reply,
    TrackingAbandoned,
    UnaskedCloud,
    Usage,
    WatchedBackupEnded,
)
from bot.core.rules.policy import (
    ACTION_VERBS,
    ADMIN_RULE,
    Decision,
    InstanceRef,
    Permission,
    describe_scope,
    format_tags,
)

Block = dict[str, Any]

CONFIRM_ACTION = "backup_confirm"
CANCEL_ACTION = "backup_cancel"
APPROVE_ACTION = "backup_approve"
REJECT_ACTION = "backup_reject"
RETRY_ACTION = "backup_retry"
RUN_ACTION = "backup_run"
PICK_ACTION = "backup_pick"

_SECTION_TEXT_LIMIT = 3000


@dataclass(frozen=True)
class Message:
    text: str
    blocks: list[Block] = field(default_factory=list)


def escape(text: str) -> str:
    """Slack's own escaping for message text: only ``&``, ``<`` and ``>`` are control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_REFERENCE = re.compile(r"&lt;([#@][CGDUW][A-Z0-9]+|!subteam\^S[A-Z0-9]+)&gt;")


def escape_keeping_references(text: str) -> str:
    """For the bot's own sentences: escape everything, then let channel, user and user-group
    references (never ``<!channel>``/``<!here>``) through again."""
    return _REFERENCE.sub(r"<\1>", escape(text))


def user(user_id: str) -> str:
    return f"<@{user_id}>"


def principal(principal_id: str) -> str:
    return f"<!subteam^{principal_id}>" if principal_id.startswith("S") else user(principal_id)


def code(text: str) -> str:
    # Backticks cannot be escaped inside Slack code spans; swapping them keeps the span intact.
    return "`" + escape(text).replace("`", "ˋ") + "`"


def section(text: str) -> Block:
    if len(text) > _SECTION_TEXT_LIMIT:
        text = text[: _SECTION_TEXT_LIMIT - 1] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def fields(*pairs: tuple[str, str]) -> Block:
    return {
        "type": "section",
        "fields": [{"type": "mrkdwn", "text": f"*{label}*\n{value}"} for label, value in pairs[:10]],
    }


def context(*texts: str) -> Block:
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": t[:_SECTION_TEXT_LIMIT]} for t in texts[:10]],
    }


def header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": text[:150], "emoji": True}}


_BUTTON_LABEL_LIMIT = 75


def button(label: str, action_id: str, value: str, style: str | None = None) -> Block:
    if len(label) > _BUTTON_LABEL_LIMIT:
        label = label[: _BUTTON_LABEL_LIMIT - 1] + "…"
    element: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": label, "emoji": True},
        "action_id": action_id,
        "value": value,
    }
    if style:
        element["style"] = style
    return element


def actions(block_id: str, *buttons: Block) -> Block:
    return {"type": "actions", "block_id": block_id, "elements": list(buttons)}


def simple(text: str) -> Message:
    return Message(text=text, blocks=[section(text)])


# --- formatting helpers ------------------------------------------------------------------------------


def human_size(size: int | None) -> str:
    if size is None:
        return "unknown size"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def slack_date(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    stamp = int(moment.timestamp())
    fallback = moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{stamp}^{{date_short_pretty}} {{time}}|{fallback}>"


#: Whether the message being rendered names clouds: only when more than one is configured (INTERFACE §8).
_SHOW_CLOUDS: ContextVar[bool] = ContextVar("show_clouds", default=False)


def shown_name(name: str, cloud: str | None) -> str:
    """The instance's name as messages show it: ``eu-nl/redis-prod`` when clouds are named. Not escaped."""
    return f"{cloud}/{name}" if cloud is not None and _SHOW_CLOUDS.get() else name


def instance_label(name: str, cloud: str | None = None) -> str:
    """The instance as sentences name it (in bold); its ID goes in the context line (:func:`id_note`)."""
    return f"*{escape(shown_name(name, cloud))}*"


def label_of(instance: Instance | InstanceRef) -> str:
    return instance_label(instance.name, instance.cloud)


def request_label(request: BackupRequest) -> str:
    return instance_label(request.instance_name, request.cloud)


def id_note(instance_id: str) -> str:
    return f"Instance ID {code(instance_id)}"


def plain_name(name: str, cloud: str | None = None) -> str:
    """The instance's name for a ``text`` fallback: no markup, only Slack's escaping."""
    return escape(shown_name(name, cloud))


def first_sentence(text: str) -> str:
    """The first sentence of a plain text, for a fallback."""
    head, dot, _ = text.partition(". ")
    return head + "." if dot else text


def instance_state(status: str) -> str:
    """DCS's instance status as people read it: ``RUNNING`` → ``Running``."""
    return escape(status.replace("_", " ").capitalize()) if status else "Unknown"


_BACKUP_STATUS_WORDS = {
    "succeed": "Succeeded",
    "failed": "Failed",
    "backuping": "Running",
    "waiting": "Waiting",
    "expired": "Expired",
    "deleted": "Deleted",
    "deleting": "Being deleted",
    "restoring": "Restoring",
}


def backup_status(status: str) -> str:
    """A backup record's status as people read it: ``succeed`` → ``Succeeded``."""
    return _BACKUP_STATUS_WORDS.get(status) or escape(status.replace("_", " ").capitalize() or "Unknown")


def request_name(request: BackupRequest) -> str:
    """The request's instance name, escaped, with its cloud when clouds are named."""
    return escape(shown_name(request.instance_name, request.cloud))


def _fmt(request: BackupRequest) -> str:
    return request.backup_format.upper()


# --- replies -------------------------------------------------------------------------------------------

_USAGE = (
    '`/dcs-backup <instance> [aof|rdb] ["remark"] [--dry-run]` back up (asks you to confirm)\n'
    "`/dcs-backup list <instance>` recent backups of an instance\n"
    "`/dcs-backup status <backup_id>` a backup started through this bot\n"
    "`/dcs-backup help` this help"
)


def render_reply(reply: Reply, *, show_clouds: bool = False) -> Message:
    """The Slack message of ``reply``; with ``show_clouds`` (several clouds configured) instances are named
    with their cloud."""
    token = _SHOW_CLOUDS.set(show_clouds)
    try:
        return _render_reply(reply)
    finally:
        _SHOW_CLOUDS.reset(token)


def _render_reply(reply: Reply) -> Message:
    match reply:
        case Usage(message):
            # A usage error is short and plain already, and its second sentence says what to type.
            return Message(text=escape(message), blocks=[section(escape(message))])
        case Help():
            return _help(reply)
        case Refusal(decision, instance):
            what = f" {label_of(instance)}" if instance else " instances"
            verb = ACTION_VERBS[decision.action]
            shown = f" {plain_name(instance.name, instance.cloud)}" if instance else " instances"
            text = f":no_entry: You may not {verb}{what}. {escape_keeping_references(decision.reason)}"
            notes = [id_note(instance.instance_id)] if instance else []
            return Message(
                text=f"You may not {verb}{shown}.",
                blocks=[section(text), context(*notes, "Ask a bot admin if you need this.")],
            )
        case InstanceNotFound():
            return _with_unasked(_not_found(reply), reply.unasked)
        case InstanceAmbiguous():
            return _with_unasked(_ambiguous_instance(reply), reply.unasked)
        case NotBackupable(instance, reason):
            text = f":warning: {label_of(instance)} cannot be backed up. {escape(reason)}"
            return Message(
                text=f"{plain_name(instance.name, instance.cloud)} cannot be backed up now.",
                blocks=[section(text), context(id_note(instance.instance_id))],
            )
        case GroupsUnavailable(reason):
            text = (
                f":hourglass: Slack could not tell which user groups you are in ({escape(reason)}), "
                "and the answer depends on them. Nothing was changed; please try again in a moment."
            )
            return Message(
                text="Slack could not tell your user groups; please try again.", blocks=[section(text)]
            )
        case CloudUnavailable(detail, cloud):
            where = f"DCS in {escape(cloud)}" if cloud is not None else "DCS"
            text = (
                f":cloud: I could not get an answer from {where} ({escape(detail)}). "
                "Nothing was changed; please try again in a minute."
            )
            return Message(text=f"{where} did not answer; nothing was changed.", blocks=[section(text)])
        case DryRun():
            return _dry_run(reply)
        case Confirmation():
            return _confirmation(reply)
        case CardClosed():
            return _card_closed(reply)
        case ClickRefused(message, person, instance):
            text = escape_keeping_references(message)
            if person is not None:
                text = text.replace("{person}", user(escape(person)))
            if instance is not None:
                text = text.replace("{instance}", f"*{escape(instance)}*")
            return Message(text=first_sentence(escape(reply.plain)), blocks=[section(text)])
        case BackupList():
            return _backup_list(reply)
        case BackupStatus():
            return _backup_status(reply)
        case InternalError(reference):
            text = ":warning: Sorry, something went wrong on the bot's side and I stopped."
            return Message(
                text="Sorry, something went wrong on the bot's side.",
                blocks=[section(text), context(f"Reference {code(reference)} for the bot's operators")],
            )
        case NoticeCopy(notice, channel_id):
            copy = _render_notice(notice)
            note = context(
                f"I could not post this in <#{channel_id}>: Slack kept refusing it, so it comes to you here."
            )
            blocks = [block for block in copy.blocks if block.get("type") != "actions"] or [
                section(copy.text)
            ]
            return Message(text=copy.text, blocks=[*blocks, note])


def _with_unasked(message: Message, unasked: Sequence[UnaskedCloud]) -> Message:
    """The message, with a note naming the clouds that could not be asked."""
    if not unasked:
        return message
    names = ", ".join(escape(u.cloud) for u in unasked)
    details = "; ".join(f"{escape(u.cloud)}: {escape(u.detail)}" for u in unasked)
    note = context(
        f":cloud: Could not ask {names} ({details}); this answer comes from the other clouds. "
        "To address an instance there, write its cloud, like eu-nl/redis-prod."
    )
    return Message(text=message.text, blocks=[*message.blocks, note])


def _not_found(reply: InstanceNotFound) -> Message:
    by_id = is_instance_id(split_instance(reply.query).target)
    how = "with ID" if by_id else "named"
    text = f":mag: I could not find a DCS instance {how} *{escape(reply.query)}*."
    fallback = "I could not find that instance." if by_id else f"I could not find {escape(reply.query)}."
    blocks = [section(text)]
    if reply.suggestions:
        text += " Did you mean " + ", ".join(f"*{escape(s)}*" for s in reply.suggestions) + "?"
        blocks = [section(text)]
        picks = list(zip(reply.suggestions, reply.picks, strict=False))
        if picks:
            blocks.append(
                actions("backup_pick", *(button(label, PICK_ACTION, value) for label, value in picks))
            )
    return Message(text=fallback, blocks=blocks)


def _ambiguous_instance(reply: InstanceAmbiguous) -> Message:
    query = escape(reply.query)
    forms = reply.forms()
    if reply.qualified:
        lines = "\n".join(
            f"• {code(form)} — {escape(i.type_label)}, Instance state: {instance_state(i.status)}"
            for i, form in zip(reply.candidates, forms, strict=True)
        )
        text = f"*{query}* is in more than one place. Pick one, or say which:\n{lines}"
        labels = list(forms)
    else:
        lines = "\n".join(
            f"• {number}. {label_of(i)} — {escape(i.type_label)}, Instance state: {instance_state(i.status)}"
            for number, i in enumerate(reply.candidates, start=1)
        )
        text = f"Several instances are named *{query}*. Pick one, or use its instance ID:\n{lines}"
        labels = [f"{number}. {i.name}" for number, i in enumerate(reply.candidates, start=1)]
    ids = " · ".join(
        f"{number}: {code(i.instance_id)}" for number, i in enumerate(reply.candidates[:25], start=1)
    )
    picks = [button(label, PICK_ACTION, value) for label, value in zip(labels, reply.picks(), strict=True)]
    return Message(
        text=f"Several instances answer to {query}; please pick one.",
        blocks=[section(text), actions("backup_pick", *picks[:25]), context(f"Instance IDs {ids}")],
    )


def _permission_line(permission: Permission) -> str:
    verbs = ", ".join(str(action) for action in permission.actions)
    instances = ", ".join(code(p) for p in permission.instances)
    where = (
        "in any channel"
        if permission.channels is None
        else "in " + ", ".join(f"<#{c}>" for c in permission.channels)
    )
    approval = ", with a second person's approval" if permission.approval == "peer" else ""
    if permission.clouds is not None or permission.tags is not None:
        instances += " " + escape(describe_scope(permission.clouds, permission.tags))
    rule = "you are a bot admin" if permission.rule == ADMIN_RULE else f"rule {code(permission.rule)}"
    return f"• {verbs} on {instances} {where}{approval} ({rule})"


def _help(reply: Help) -> Message:
    # Slack reads "<…>" as a link or mention even inside code spans, so the placeholders need escaping.
    blocks: list[Block] = [header("DCS backup bot"), section(escape(_USAGE))]
    if reply.permissions:
        lines = "\n".join(_permission_line(p) for p in reply.permissions)
        blocks.append(section(f"*What you may do*\n{lines}"))
    else:
        blocks.append(section("*What you may do*\nNothing yet — ask a bot admin to add you to the policy."))
    notes = [
        f"Without a format the bot makes an {reply.default_format.upper()} backup. "
        "Remarks: up to 128 characters, in quotes or as the rest of the line. "
        "An instance named list, status or help must be given by its ID."
    ]
    if _SHOW_CLOUDS.get():
        notes.append(
            "Several clouds are served: a name is looked up in all of them; to pick one, put its cloud "
            "first, like eu-nl/redis-prod or eu-nl/<instance ID>."
        )
    if reply.groups_unknown and reply.groups_passing:
        notes.append(
            f"Slack could not tell just now which user groups you are in ({escape(reply.groups_unknown)}), "
            "so rules granted through groups are not listed. Try again in a moment."
        )
    elif reply.groups_unknown:
        notes.append(
            f"Your user-group membership could not be read ({escape(reply.groups_unknown)}), "
            "so rules granted through groups do not apply right now."
        )
    blocks.append(context(*notes))
    return Message(text="DCS backup bot: usage and your permissions.", blocks=blocks)


def _decision_text(decision: Decision) -> str:
    if not decision.allowed:
        return f":no_entry: denied — {escape_keeping_references(decision.reason)}"
    approval = ""
    if decision.approval == "peer":
        approvers = ", ".join(principal(p) for p in decision.approvers)
        approval = f"; needs approval by one of {approvers} after you confirm"
    scope = ""
    if decision.clouds is not None or decision.tags is not None:
        scope = f" (for instances {escape(describe_scope(decision.clouds, decision.tags))})"
    return f":white_check_mark: allowed{scope}{approval}"


def _rule_note(rule: str | None) -> str:
    return "You are a bot admin" if rule == ADMIN_RULE else f"Rule {code(rule or '?')}"


def _dry_run(reply: DryRun) -> Message:
    call = reply.call
    # Backticks cannot be escaped inside a Slack code block; swapping them keeps the block intact.
    body = escape(json.dumps(call.body, ensure_ascii=False)).replace("`", "ˋ")
    blocks = [
        section(
            ":test_tube: *Dry run* — nothing was sent to DCS.\n"
            f"*Instance* {label_of(reply.instance)}"
            f"{_cloud_and_tags(reply.instance)}"
        ),
        section(f"*Policy decision* {_decision_text(reply.decision)}"),
        section(f"*The call that would be made*\n```{escape(call.method)} {escape(call.path)}\n{body}```"),
    ]
    if reply.blockers:
        blocks.append(section(":warning: " + " ".join(escape(b) for b in reply.blockers)))
    if reply.run_id is not None:
        blocks.append(
            actions("backup_dry_run", button("Back up for real", RUN_ACTION, reply.run_id, "primary"))
        )
    blocks.append(context(id_note(reply.instance.instance_id), _rule_note(reply.decision.rule)))
    name = plain_name(reply.instance.name, reply.instance.cloud)
    message = Message(text=f"Dry run for {name}: nothing was sent.", blocks=blocks)
    return _with_unasked(message, reply.unasked)


def _cloud_and_tags(instance: Instance) -> str:
    shown = instance.cloud is not None and _SHOW_CLOUDS.get()
    cloud = f"\n*Cloud* {escape(instance.cloud or '')}" if shown else ""
    tags = format_tags(instance.tags) if instance.tags else "none"
    return f"{cloud}\n*Tags* {escape(tags)}"


def _instance_type(instance: Instance) -> str:
    version = f" · Redis {instance.engine_version}" if instance.engine_version else ""
    return escape(instance.type_label) + escape(version)


def _confirmation(reply: Confirmation) -> Message:
    request, instance = reply.request, reply.instance
    ttl = human_duration((request.expires_at - request.created_at).total_seconds())
    approval = ""
    if request.approval == "peer":
        approval = (
            " After you confirm, one of "
            + ", ".join(principal(p) for p in request.approvers)
            + " must approve."
        )
    blocks = [
        section(f"Back up {label_of(instance)}?{approval}"),
        fields(
            ("Type", _instance_type(instance)),
            ("Instance state", instance_state(instance.status)),
            ("Format", _fmt(request)),
            ("Remark", escape(request.remark)),
        ),
        actions(
            "backup_request",
            button("Confirm", CONFIRM_ACTION, request.request_id, style="primary"),
            button("Cancel", CANCEL_ACTION, request.request_id),
        ),
        context(
            id_note(instance.instance_id),
            f"{_rule_note(request.rule)} · expires in {ttl} · only you can confirm",
        ),
    ]
    name = plain_name(instance.name, instance.cloud)
    message = Message(text=f"Back up {name}? Confirm or cancel.", blocks=blocks)
    return _with_unasked(message, reply.unasked)


def _retry(request: BackupRequest, label: str = "Try again") -> Block:
    return actions("backup_next", button(label, RETRY_ACTION, request.request_id))


def _card_closed(reply: CardClosed) -> Message:
    request, by = reply.request, user(reply.by_user)
    target = request_label(request)
    name = plain_name(request.instance_name, request.cloud)
    requested = f"requested by {user(request.requester_id)}"
    notes = [id_note(request.instance_id)]
    extra: list[Block] = []
    match reply.outcome:
        case "confirmed":
            text = f":white_check_mark: Confirmed by {by}. Starting the {_fmt(request)} backup of {target}…"
            fallback = f"Starting the backup of {name}."
        case "cancelled":
            text = f"Cancelled by {by}: the backup of {target} was not started. Nothing was backed up."
            fallback = f"The backup of {name} was cancelled."
        case "expired":
            fallback = f"The request to back up {name} expired."
            if request.confirmed_by is not None and request.approval == "peer":
                # An approval request, in the channel: no buttons stay; its thread tells the requester,
                # with a way to start over.
                text = (
                    f":hourglass: This request expired: nobody approved the {_fmt(request)} backup of "
                    f"{target} ({requested}) in time. Nothing was backed up."
                )
            else:
                text = f":hourglass: This request to back up {target} expired. Nothing was backed up."
                extra.append(_retry(request, "Start over"))
        case "revoked":
            reason = escape_keeping_references(reply.reason or "")
            text = f":no_entry: Not started, because you may no longer back up {target}. {reason}"
            fallback = f"The backup of {name} was not started."
        case "awaiting_approval":
            approvers = ", ".join(principal(p) for p in request.approvers)
            text = (
                f":hourglass_flowing_sand: Confirmed by {by}. "
                f"Waiting for approval by one of {approvers} in the channel."
            )
            fallback = f"Waiting for approval to back up {name}."
        case "approved":
            text = (
                f":white_check_mark: Approved by {by} ({requested}). "
                f"Starting the {_fmt(request)} backup of {target}…"
            )
            fallback = f"Approved; starting the backup of {name}."
        case "rejected":
            text = f":no_entry_sign: Rejected by {by} ({requested}). The backup of {target} was not started."
            fallback = f"The backup of {name} was rejected."
        case "started":
            how = f"Approved by {by} ({requested})" if request.approved_by else f"Confirmed by {by}"
            text = (
                f":floppy_disk: {how}. Started: the {_fmt(request)} backup of {target} is under way; "
                f"its progress and outcome are in <#{request.channel_id}>."
            )
            fallback = f"The backup of {name} started."
            notes.insert(0, f"backup_id {code(request.backup_id or '?')}")
        case "not_started" if request.state == RequestState.NOT_CREATED:
            # The outcome was unknown for a while: what checking found is told as such, never as a refusal.
            text = (
                f":x: *No backup was created* for {target}: DCS's answer was lost, and its records show none "
                "from this request. Nothing was sent twice."
            )
            fallback = f"No backup of {name} was created."
            extra.append(_retry(request))
        case "not_started":
            answered = (
                code(request.error_code) if request.error_code else f"HTTP {request.error_status or '?'}"
            )
            reason = escape(request.error_msg or "no reason given")
            text = f":x: Not started, because DCS answered {answered}: {reason}"
            fallback = f"The backup of {name} was not started."
            extra.append(_retry(request))
        case "checking":
            text = (
                f":hourglass_flowing_sand: The {_fmt(request)} backup of {target} was sent to DCS, but its "
                "answer was lost. I am checking whether it started and will say so here and in the channel."
            )
            fallback = f"Checking whether the backup of {name} started."
        case "undetermined":
            text = (
                f":warning: I could not tell whether the {_fmt(request)} backup of {target} started: "
                f"several backups could be it. See <#{request.channel_id}>."
            )
            fallback = f"Could not tell whether the backup of {name} started."
    return Message(text=fallback, blocks=[section(text), *extra, context(*notes)])


def _meaning(record: BackupRecord) -> str:
    return record.error_meaning or "DCS gave no reason"


def _record_fields(record: BackupRecord) -> list[tuple[str, str]]:
    kind = f"{escape(record.backup_type or '?')} · {escape((record.backup_format or '?').upper())}"
    status = backup_status(record.status)
    shown = percent(record.progress)
    if record.status == "backuping" and shown is not None:
        status += f" ({shown} %)"
    if record.status == "failed":
        status += f" — {code(record.error_code or '?')} {escape(_meaning(record))}"
    return [
        ("Type", kind),
        ("Status", status),
        ("Size", human_size(record.size) if record.size else "—"),
        ("Created", slack_date(record.created_at)),
        ("Remark", escape(record.remark or "—")),
    ]


def _backup_list(reply: BackupList) -> Message:
    target = label_of(reply.instance)
    name = plain_name(reply.instance.name, reply.instance.cloud)
    note = context(id_note(reply.instance.instance_id))
    if not reply.records:
        message = Message(
            text=f"{name} has no backups yet.", blocks=[section(f"{target} has no backups yet."), note]
        )
        return _with_unasked(message, reply.unasked)
    blocks: list[Block] = [
        section(f"Recent backups of {target} (newest first, {len(reply.records)} of {reply.total}):"),
        note,
    ]
    for record in reply.records[:15]:
        blocks.append({"type": "divider"})
        blocks.append(fields(*_record_fields(record)))
        blocks.append(context(f"backup_id {code(record.backup_id)}"))
    message = Message(text=f"Recent backups of {name}.", blocks=blocks[:50])
    return _with_unasked(message, reply.unasked)


def _backup_status(reply: BackupStatus) -> Message:
    request = reply.request
    target = request_label(request)
    intro = f"Backup of {target} requested by {user(request.requester_id)}."
    notes = [f"backup_id {code(request.backup_id or '?')}", id_note(request.instance_id)]
    name = plain_name(request.instance_name, request.cloud)
    if reply.record is None:
        text = f"{intro} DCS shows no record of it (any more)."
        return Message(text=f"Backup of {name}.", blocks=[section(text), context(*notes)])
    return Message(
        text=f"Backup of {name}: {backup_status(reply.record.status)}.",
        blocks=[section(intro), fields(*_record_fields(reply.record)), context(*notes)],
    )


# --- notices ------------------------------------------------------------------------------------------


_RUNNING_WORDS = {"waiting": "waiting to start", "backuping": "running"}


def render_notice(notice: Notice, *, show_clouds: bool = False) -> Message:
    """The Slack message of ``notice``, naming clouds with ``show_clouds`` (see :func:`render_reply`)."""
    token = _SHOW_CLOUDS.set(show_clouds)
    try:
        return _render_notice(notice)
    finally:
        _SHOW_CLOUDS.reset(token)


def _render_notice(notice: Notice) -> Message:
    match notice:
        case BackupStarted():
            return _living(notice)
        case BackupNotStarted(request, failure):
            target = request_label(request)
            code_text = code(failure.error_code) if failure.error_code else f"HTTP {failure.status}"
            text = (
                f":x: The {_fmt(request)} backup of {target} requested by {user(request.requester_id)} "
                f"was *not* started. DCS answered {code_text}: {escape(failure.error_msg)}"
            )
            extra = [escape(failure.hint)] if failure.hint else []
            if failure.request_id:
                extra.append(f"DCS request ID {code(failure.request_id)}")
            extra.append(id_note(request.instance_id))
            return Message(
                text=f"The backup of {request_name(request)} was not started.",
                blocks=[section(text), _retry(request), context(*extra)],
            )
        case BackupFinished():
            return _finished(notice)
        case TrackingAbandoned(request, followed):
            state = (
                f"is still {escape(_RUNNING_WORDS.get(request.backup_status, request.backup_status))}"
                if request.backup_status
                else "has not been listed by DCS"
            )
            text = (
                f":hourglass: The backup of {request_label(request)} {state} after "
                f"{human_duration(followed)}; I stopped following it. "
                f"Check later with `/dcs-backup status {escape(request.backup_id or '')}`."
            )
            return Message(
                text=f"I stopped following the backup of {request_name(request)}.",
                blocks=[section(text), context(f"backup_id {code(request.backup_id or '?')}")],
            )
        case ApprovalRequested(request):
            return _approval_request(request)
        case ApprovalExpired(request):
            text = (
                f":hourglass: {user(request.requester_id)}, nobody approved your {_fmt(request)} backup of "
                f"{request_label(request)} in time, so nothing was backed up."
            )
            return Message(
                text=f"Nobody approved the backup of {request_name(request)} in time.",
                blocks=[section(text), _retry(request, "Start over")],
            )
        case WatchedBackupEnded():
            return _watched(notice)
        case BackupsStale(name, instance_id, hours, latest, cloud):
            since = f"the last one ended {slack_date(latest)}" if latest else "none is on record"
            text = (
                f":rotating_light: {instance_label(name, cloud)} has had no successful backup "
                f"in the last {hours:g} h ({since})."
            )
            return Message(
                text=f"{plain_name(name, cloud)} has no fresh successful backup.",
                blocks=[
                    section(text),
                    context(id_note(instance_id), "I will say so here when one succeeds again."),
                ],
            )
        case BackupsRecovered(name, instance_id, latest, cloud):
            text = (
                f":white_check_mark: {instance_label(name, cloud)} has a fresh successful "
                f"backup again ({slack_date(latest)})."
            )
            return Message(
                text=f"{plain_name(name, cloud)} has a fresh successful backup again.",
                blocks=[section(text), context(id_note(instance_id))],
            )
        case OutcomeChecking():
            return _checking(notice)
        case NoBackupCreated(request, checked):
            target = request_label(request)
            text = (
                f":x: *No backup was created* for the {_fmt(request)} backup of {target} requested by "
                f"{user(request.requester_id)}: DCS's backup records of the instance show none from it, "
                f"checked for {human_duration(checked)} after its answer was lost. It was never sent twice; "
                f"see `/dcs-backup list {request_name(request)}`, or try again."
            )
            return Message(
                text=f"No backup of {request_name(request)} was created.",
                blocks=[section(text), _retry(request), context(id_note(request.instance_id))],
            )
        case OutcomeAmbiguous(request, candidates):
            return _ambiguous(request, candidates)


def _checking(notice: OutcomeChecking) -> Message:
    request = notice.request
    target = request_label(request)
    if notice.restarted:
        why = (
            f"The bot restarted while submitting the {_fmt(request)} backup of {target} requested by "
            f"{user(request.requester_id)}, before DCS's answer arrived"
        )
    else:
        why = (
            f"The {_fmt(request)} backup of {target} requested by {user(request.requester_id)} was sent to "
            f"DCS, but its answer was lost ({escape(notice.reason)})"
        )
    text = (
        f":hourglass_flowing_sand: *Outcome unknown, checking.* {why}, so I cannot tell yet whether it "
        "started. I am looking for it in the instance's backup records and will post here what I find."
    )
    return Message(
        text=f"Outcome unknown for the backup of {request_name(request)}; checking.",
        blocks=[
            section(text),
            context(
                f"Checking until {slack_date(notice.until)}. The request is never sent twice; another "
                "backup of this instance waits until this one is settled.",
                id_note(request.instance_id),
            ),
        ],
    )


def _ambiguous(request: BackupRequest, candidates: tuple[BackupRecord, ...]) -> Message:
    target = request_label(request)
    listed = ", ".join(
        f"{code(record.backup_id)} (created {slack_date(record.created_at)}, {backup_status(record.status)})"
        for record in candidates[:10]
    )
    text = (
        f":warning: *Outcome still unknown* for the {_fmt(request)} backup of {target} requested by "
        f"{user(request.requester_id)}: DCS shows {len(candidates)} backup(s) that could be this one — "
        f"{listed} — and I cannot tell which, so I follow none of them. Check them with "
        f"`/dcs-backup list {request_name(request)}`."
    )
    return Message(
        text=f"Outcome still unknown for the backup of {request_name(request)}.", blocks=[section(text)]
    )


def _who(request: BackupRequest) -> str:
    who = user(request.requester_id)
    if request.approved_by:
        who += f" (approved by {user(request.approved_by)})"
    return who


def _living(notice: BackupStarted) -> Message:
    """The channel message of a backup, as it stands (updated in place as the backup goes on)."""
    request = notice.request
    target, name = request_label(request), request_name(request)
    intro = f"{_who(request)} started an {_fmt(request)} backup of {target}."
    notes = [f"backup_id {code(request.backup_id or '?')}", f"Remark: {escape(request.remark)}"]
    final = notice.final
    if final is not None:
        took = f" in {human_duration(notice.duration_seconds)}" if notice.duration_seconds is not None else ""
        if final.status == "succeed":
            text = f":white_check_mark: {intro} *Succeeded*{took}: {human_size(final.size)}."
            fallback = f"The backup of {name} succeeded."
        elif final.status == "failed":
            text = f":x: {intro} *Failed*{took}: {code(final.error_code or '?')} — {escape(_meaning(final))}."
            fallback = f"The backup of {name} failed."
        else:
            text = f"{intro} Ended as {backup_status(final.status)}."
            fallback = f"The backup of {name} ended."
        notes.append("Details are in this thread.")
    elif notice.abandoned_after is not None:
        text = (
            f":hourglass: {intro} Still not finished after {human_duration(notice.abandoned_after)}; "
            "I stopped following it."
        )
        fallback = f"I stopped following the backup of {name}."
    elif notice.status == "backuping":
        shown = percent(notice.progress)
        progress = f": {shown} %" if shown is not None else ""
        text = f":floppy_disk: {intro} *Running*{progress}."
        fallback = f"The backup of {name} is running."
    elif notice.status in (None, "waiting"):
        text = f":floppy_disk: {intro} *Waiting* to start."
        fallback = f"The backup of {name} started."
        notes.append("I will post the outcome in this thread.")
    else:
        text = f":floppy_disk: {intro} Status: {backup_status(notice.status)}."
        fallback = f"The backup of {name} is under way."
    if notice.adopted:
        notes.insert(2, "DCS's answer was lost; I found the backup in the instance's backup records.")
    return Message(text=fallback, blocks=[section(text), context(*notes)])


def _finished(notice: BackupFinished) -> Message:
    request, record = notice.request, notice.record
    name = request_name(request)
    took = f" in {human_duration(notice.duration_seconds)}" if notice.duration_seconds is not None else ""
    note = context(f"backup_id {code(record.backup_id)}")
    if record.status == "succeed":
        text = f":white_check_mark: The backup of *{name}* succeeded{took}: {human_size(record.size)}."
        return Message(text=f"The backup of {name} succeeded.", blocks=[section(text), note])
    if record.status == "failed":
        text = (
            f":x: The backup of *{name}* requested by {user(request.requester_id)} failed{took}: "
            f"{code(record.error_code or '?')} — {escape(_meaning(record))}."
        )
        return Message(text=f"The backup of {name} failed.", blocks=[section(text), _retry(request), note])
    text = f"The backup of *{name}* ended as {backup_status(record.status)}."
    return Message(text=f"The backup of {name} ended.", blocks=[section(text), note])


def _watched(notice: WatchedBackupEnded) -> Message:
    record = notice.record
    kind = "Automatic" if record.backup_type == "auto" else "Manual"
    by = f" (started through the bot by {user(notice.requester_id)})" if notice.requester_id else ""
    took = f" in {human_duration(notice.duration_seconds)}" if notice.duration_seconds is not None else ""
    name = escape(shown_name(notice.instance_name, notice.cloud))
    subject = f"{kind} backup of *{name}*{by}"
    if record.status == "succeed":
        text = f":white_check_mark: {subject} succeeded{took}: {human_size(record.size)}."
        fallback = f"{kind} backup of {name} succeeded."
    elif record.status == "failed":
        meaning = escape(_meaning(record))
        text = f":x: {subject} failed{took}: {code(record.error_code or '?')} — {meaning}."
        fallback = f"{kind} backup of {name} failed."
    else:
        text = f"{subject} ended as {backup_status(record.status)}."
        fallback = f"{kind} backup of {name} ended."
    return Message(text=fallback, blocks=[section(text), context(f"backup_id {code(record.backup_id)}")])


def _approval_request(request: BackupRequest) -> Message:
    target = request_label(request)
    approvers = ", ".join(principal(p) for p in request.approvers)
    text = (
        f":raised_hand: {user(request.requester_id)} asks to back up {target} ({_fmt(request)}). "
        f"Approvers: {approvers}."
    )
    return Message(
        text=f"{escape(request.requester_name)} asks to back up {request_name(request)}; approval needed.",
        blocks=[
            section(text),
            context(
                f"Remark: {escape(request.remark)}",
                f"Rule {code(request.rule)} requires a second person.",
                id_note(request.instance_id),
            ),
            actions(
                "backup_approval",
                button("Approve", APPROVE_ACTION, request.request_id, style="primary"),
                button("Reject", REJECT_ACTION, request.request_id, style="danger"),
            ),
        ],
    )
