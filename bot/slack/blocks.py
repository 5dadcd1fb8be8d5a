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

from bot.core.rules.backup_request import BackupRequest
from bot.core.rules.grammar import is_instance_id, split_instance
from bot.core.rules.instances import BackupRecord, Instance
from bot.core.rules.messages import (
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
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": t} for t in texts[:10]]}


def header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": text[:150], "emoji": True}}


def button(label: str, action_id: str, value: str, style: str | None = None) -> Block:
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


def instance_label(name: str, instance_id: str, cloud: str | None = None) -> str:
    return f"*{escape(shown_name(name, cloud))}* ({code(instance_id)})"


def label_of(instance: Instance | InstanceRef) -> str:
    return instance_label(instance.name, instance.instance_id, instance.cloud)


def request_label(request: BackupRequest) -> str:
    return instance_label(request.instance_name, request.instance_id, request.cloud)


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
            return Message(text=escape(message), blocks=[section(escape(message))])
        case Help():
            return _help(reply)
        case Refusal(decision, instance):
            what = f" {label_of(instance)}" if instance else " instances"
            verb = ACTION_VERBS[decision.action]
            text = f":no_entry: You may not {verb}{what}. {escape_keeping_references(decision.reason)}"
            return Message(text=text, blocks=[section(text), context("Ask a bot admin if you need this.")])
        case InstanceNotFound(query, suggestions, unasked):
            how = "with ID" if is_instance_id(split_instance(query).target) else "named"
            text = f":mag: I could not find a DCS instance {how} *{escape(query)}*."
            if suggestions:
                text += " Did you mean " + ", ".join(f"*{escape(s)}*" for s in suggestions) + "?"
            return _with_unasked(simple(text), unasked)
        case InstanceAmbiguous(query, candidates, qualified, unasked):
            if qualified:
                lines = "\n".join(
                    f"• {code(form)} — {escape(i.type_label)}, {escape(i.status)} ({code(i.instance_id)})"
                    for i, form in zip(candidates, reply.forms(), strict=True)
                )
                text = f"*{escape(query)}* is in more than one place. Please say which one:\n{lines}"
            else:
                lines = "\n".join(f"• {label_of(i)} — {escape(i.status)}" for i in candidates)
                text = (
                    f"Several instances are named *{escape(query)}*. "
                    f"Please use the instance ID instead:\n{lines}"
                )
            return _with_unasked(simple(text), unasked)
        case NotBackupable(instance, reason):
            target = label_of(instance)
            text = f":warning: {target} cannot be backed up. {escape(reason)}"
            return simple(text)
        case GroupsUnavailable(reason):
            text = (
                f":hourglass: Slack could not tell which user groups you are in ({escape(reason)}), "
                "and the answer depends on them. Nothing was changed; please try again in a moment."
            )
            return simple(text)
        case CloudUnavailable(detail, cloud):
            where = f"DCS in {escape(cloud)}" if cloud is not None else "DCS"
            text = (
                f":cloud: I could not get an answer from {where} ({escape(detail)}). "
                "Nothing was changed; please try again in a minute."
            )
            return simple(text)
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
            return simple(text)
        case BackupList():
            return _backup_list(reply)
        case BackupStatus():
            return _backup_status(reply)
        case InternalError(reference):
            text = (
                ":warning: Sorry, something went wrong on the bot's side and I stopped. "
                f"(reference `{escape(reference)}` for the bot's operators)"
            )
            return simple(text)
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
    return Message(text="DCS backup bot: usage and your permissions", blocks=blocks)


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
    return f":white_check_mark: allowed by rule {code(decision.rule or '')}{scope}{approval}"


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
    message = Message(text=f"Dry run for {escape(reply.instance.name)}: nothing was sent.", blocks=blocks)
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
            ("Status", escape(instance.status)),
            ("Format", _fmt(request)),
            ("Remark", escape(request.remark)),
        ),
        actions(
            "backup_request",
            button("Confirm", CONFIRM_ACTION, request.request_id, style="primary"),
            button("Cancel", CANCEL_ACTION, request.request_id),
        ),
        context(f"Allowed by rule {code(request.rule)} · expires in {ttl} · only you can confirm"),
    ]
    message = Message(text=f"Back up {escape(instance.name)}? Confirm or cancel.", blocks=blocks)
    return _with_unasked(message, reply.unasked)


def _card_closed(reply: CardClosed) -> Message:
    request, by = reply.request, user(reply.by_user)
    target = request_label(request)
    match reply.outcome:
        case "confirmed":
            text = f":white_check_mark: Confirmed by {by}. Starting the {_fmt(request)} backup of {target}…"
        case "cancelled":
            text = f"Cancelled by {by}. Nothing was backed up."
        case "expired":
            text = (
                f":hourglass: This request for {target} expired. "
                "Nothing was backed up; run the command again."
            )
        case "revoked":
            reason = escape_keeping_references(reply.reason or "")
            text = f":no_entry: Not started: you may no longer back up {target}. {reason}"
        case "awaiting_approval":
            approvers = ", ".join(principal(p) for p in request.approvers)
            text = (
                f":hourglass_flowing_sand: Confirmed by {by}. "
                f"Waiting for approval by one of {approvers} in the channel."
            )
        case "approved":
            text = (
                f":white_check_mark: Approved by {by} (requested by {user(request.requester_id)}). "
                f"Starting the {_fmt(request)} backup of {target}…"
            )
        case "rejected":
            text = (
                f":no_entry_sign: Rejected by {by} (requested by {user(request.requester_id)}). "
                "Nothing was backed up."
            )
    return simple(text)


def _meaning(record: BackupRecord) -> str:
    return record.error_meaning or "DCS gave no reason"


def _record_fields(record: BackupRecord) -> list[tuple[str, str]]:
    kind = f"{escape(record.backup_type or '?')} · {escape((record.backup_format or '?').upper())}"
    status = escape(record.status)
    if record.status == "backuping" and record.progress:
        status += f" ({escape(record.progress)} %)"
    if record.status == "failed":
        status += f" — {code(record.error_code or '?')} {escape(_meaning(record))}"
    return [
        ("Backup", code(record.backup_id)),
        ("Type", kind),
        ("Status", status),
        ("Size", human_size(record.size) if record.size else "—"),
        ("Created", slack_date(record.created_at)),
        ("Remark", escape(record.remark or "—")),
    ]


def _backup_list(reply: BackupList) -> Message:
    target = label_of(reply.instance)
    if not reply.records:
        return _with_unasked(simple(f"{target} has no backups yet."), reply.unasked)
    blocks: list[Block] = [
        section(f"Recent backups of {target} (newest first, {len(reply.records)} of {reply.total}):")
    ]
    for record in reply.records:
        blocks.append({"type": "divider"})
        blocks.append(fields(*_record_fields(record)))
    message = Message(text=f"Recent backups of {escape(reply.instance.name)}", blocks=blocks[:49])
    return _with_unasked(message, reply.unasked)


def _backup_status(reply: BackupStatus) -> Message:
    request = reply.request
    target = request_label(request)
    intro = f"Backup of {target} requested by {user(request.requester_id)}."
    if reply.record is None:
        return simple(f"{intro} DCS shows no record of `{escape(request.backup_id or '?')}` (any more).")
    return Message(text=intro, blocks=[section(intro), fields(*_record_fields(reply.record))])


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
        case BackupStarted(request, adopted):
            return _started(request, adopted)
        case BackupNotStarted(request, failure):
            target = request_label(request)
            code_text = code(failure.error_code) if failure.error_code else f"HTTP {failure.status}"
            text = (
                f":x: The {_fmt(request)} backup of {target} requested by {user(request.requester_id)} "
                f"was *not* started. DCS answered {code_text}: {escape(failure.error_msg)}"
            )
            extra = [escape(failure.hint)]
            if failure.request_id:
                extra.append(f"DCS request ID {code(failure.request_id)}")
            return Message(text=text, blocks=[section(text), context(*extra)])
        case BackupFinished():
            return _finished(notice)
        case TrackingAbandoned(request, followed):
            state = (
                f"is still {escape(_RUNNING_WORDS.get(request.backup_status, request.backup_status))}"
                if request.backup_status
                else "has not been listed by DCS"
            )
            text = (
                f":hourglass: Backup {code(request.backup_id or '?')} {state} after "
                f"{human_duration(followed)}; I stopped following it. "
                f"Check later with `/dcs-backup status {escape(request.backup_id or '')}`."
            )
            return simple(text)
        case ApprovalRequested(request):
            return _approval_request(request)
        case WatchedBackupEnded():
            return _watched(notice)
        case BackupsStale(name, instance_id, hours, latest, cloud):
            since = f"the last one ended {slack_date(latest)}" if latest else "none is on record"
            text = (
                f":rotating_light: {instance_label(name, instance_id, cloud)} has had no successful backup "
                f"in the last {hours:g} h ({since})."
            )
            return Message(
                text=text, blocks=[section(text), context("I will say so here when one succeeds again.")]
            )
        case BackupsRecovered(name, instance_id, latest, cloud):
            text = (
                f":white_check_mark: {instance_label(name, instance_id, cloud)} has a fresh successful "
                f"backup again ({slack_date(latest)})."
            )
            return simple(text)
        case OutcomeChecking():
            return _checking(notice)
        case NoBackupCreated(request, checked):
            target = request_label(request)
            text = (
                f":x: *No backup was created* for the {_fmt(request)} backup of {target} requested by "
                f"{user(request.requester_id)}: DCS's backup records of the instance show none from it, "
                f"checked for {human_duration(checked)} after its answer was lost. It was never sent twice; "
                f"see `/dcs-backup list {request_name(request)}`, and run the command again if you "
                "still need it."
            )
            return simple(text)
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
        text=text,
        blocks=[
            section(text),
            context(
                f"Checking until {slack_date(notice.until)}. The request is never sent twice; another "
                "backup of this instance waits until this one is settled."
            ),
        ],
    )


def _ambiguous(request: BackupRequest, candidates: tuple[BackupRecord, ...]) -> Message:
    target = request_label(request)
    listed = ", ".join(
        f"{code(record.backup_id)} (created {slack_date(record.created_at)}, {escape(record.status)})"
        for record in candidates[:10]
    )
    text = (
        f":warning: *Outcome still unknown* for the {_fmt(request)} backup of {target} requested by "
        f"{user(request.requester_id)}: DCS shows {len(candidates)} backup(s) that could be this one — "
        f"{listed} — and I cannot tell which, so I follow none of them. Check them with "
        f"`/dcs-backup list {request_name(request)}`."
    )
    return simple(text)


def _who(request: BackupRequest) -> str:
    who = user(request.requester_id)
    if request.approved_by:
        who += f" (approved by {user(request.approved_by)})"
    return who


def _started(request: BackupRequest, adopted: bool) -> Message:
    target = request_label(request)
    text = (
        f":floppy_disk: {_who(request)} started an {_fmt(request)} backup of {target}. "
        f"backup_id {code(request.backup_id or '?')}"
    )
    notes = [f"Remark: {escape(request.remark)}", "I will post the outcome in this thread."]
    if adopted:
        notes.insert(1, "DCS's answer was lost; I found the backup in the instance's backup records.")
    return Message(text=text, blocks=[section(text), context(*notes)])


def _finished(notice: BackupFinished) -> Message:
    request, record = notice.request, notice.record
    took = f" in {human_duration(notice.duration_seconds)}" if notice.duration_seconds is not None else ""
    if record.status == "succeed":
        text = (
            f":white_check_mark: Backup {code(record.backup_id)} of *{request_name(request)}* "
            f"succeeded{took}: {human_size(record.size)}."
        )
    elif record.status == "failed":
        text = (
            f":x: Backup {code(record.backup_id)} of *{request_name(request)}* failed{took}: "
            f"{code(record.error_code or '?')} — {escape(_meaning(record))}."
        )
    else:
        name = request_name(request)
        text = f"Backup {code(record.backup_id)} of *{name}* ended as {escape(record.status)}."
    return simple(text)


def _watched(notice: WatchedBackupEnded) -> Message:
    record = notice.record
    kind = "Automatic" if record.backup_type == "auto" else "Manual"
    by = f" (started through the bot by {user(notice.requester_id)})" if notice.requester_id else ""
    took = f" in {human_duration(notice.duration_seconds)}" if notice.duration_seconds is not None else ""
    name = escape(shown_name(notice.instance_name, notice.cloud))
    subject = f"{kind} backup {code(record.backup_id)} of *{name}*{by}"
    if record.status == "succeed":
        text = f":white_check_mark: {subject} succeeded{took}: {human_size(record.size)}."
    elif record.status == "failed":
        meaning = escape(_meaning(record))
        text = f":x: {subject} failed{took}: {code(record.error_code or '?')} — {meaning}."
    else:
        text = f"{subject} ended as {escape(record.status)}."
    return simple(text)


def _approval_request(request: BackupRequest) -> Message:
    target = request_label(request)
    approvers = ", ".join(principal(p) for p in request.approvers)
    text = (
        f":raised_hand: {user(request.requester_id)} asks to back up {target} ({_fmt(request)}). "
        f"Approvers: {approvers}."
    )
    return Message(
        text=text,
        blocks=[
            section(text),
            context(
                f"Remark: {escape(request.remark)}", f"Rule {code(request.rule)} requires a second person."
            ),
            actions(
                "backup_approval",
                button("Approve", APPROVE_ACTION, request.request_id, style="primary"),
                button("Reject", REJECT_ACTION, request.request_id, style="danger"),
            ),
        ],
    )
