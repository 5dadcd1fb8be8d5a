"""The Home tab as a Block Kit ``home`` view — a pure function of a :class:`HomeSnapshot`, no I/O.

Whatever the estate, the view stays inside Block Kit's limits: at most :data:`MAX_BLOCKS` blocks, section
texts of at most 3000 characters, button labels of at most 75. Each part has a bound of its own (approvals
listed with buttons, instance lines, lines per section), the rest is counted ("and 460 more — …"), and a
last guard cuts the view to the block limit should the parts together still exceed it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.core.rules.backup_request import BackupRequest, RequestState
from bot.core.rules.home import HomeCloud, HomeInstance, HomeNote, HomeSnapshot, Where
from bot.core.rules.instances import BackupStatus
from bot.slack.blocks import (
    APPROVE_ACTION,
    REJECT_ACTION,
    Block,
    actions,
    button,
    code,
    context,
    escape,
    header,
    render_reply,
    section,
    slack_date,
    user,
)

View = dict[str, Any]

#: The Home tab's button that opens the backup form (INTERFACE §11).
NEW_BACKUP_ACTION = "backup_new"
#: Slack's limits for a Home view (docs.slack.dev/reference/views/home-tab-views, block reference).
MAX_BLOCKS = 100
SECTION_TEXT_LIMIT = 3000
BUTTON_TEXT_LIMIT = 75
#: Approval requests listed with their buttons at most; the rest are counted.
SHOWN_APPROVALS = 10
#: Running backups and recent requests listed at most.
SHOWN_RUNNING = 15
#: Channels named per instance at most.
SHOWN_CHANNELS = 4
#: Answers to Home-tab clicks shown, with at most this many blocks each.
NOTE_BLOCKS = 2

_STATES = {
    RequestState.PENDING: "Waiting for confirmation",
    RequestState.AWAITING_APPROVAL: "Waiting for approval",
    RequestState.SUBMITTING: "Starting",
    RequestState.SUBMITTED: "Running",
    RequestState.API_FAILED: "Refused by DCS",
    RequestState.CANCELLED: "Cancelled",
    RequestState.EXPIRED: "Expired",
    RequestState.REJECTED: "Rejected",
    RequestState.CHECKING: "Checking whether it started",
    RequestState.NOT_CREATED: "Not started",
    RequestState.UNKNOWN: "Outcome unknown",
    RequestState.FINISHED: "Finished",
    RequestState.ABANDONED: "No longer followed",
    RequestState.DRY_RUN: "Dry run, nothing started",
}
_BACKUP_STATUSES = {
    BackupStatus.WAITING: "Waiting",
    BackupStatus.BACKUPING: "Running",
    BackupStatus.SUCCEED: "Succeeded",
    BackupStatus.FAILED: "Failed",
    BackupStatus.EXPIRED: "Expired",
    BackupStatus.DELETED: "Deleted",
}


def home_view(home: HomeSnapshot) -> View:
    """The ``home`` view of ``home`` for ``views.publish``."""
    blocks: list[Block] = [
        header("DCS backups"),
        section(f"Hi {user(home.user_id)}. What you may back up, what is running, and what waits for you."),
        actions("home_new", _button(":floppy_disk: New backup", NEW_BACKUP_ACTION, "home", "primary")),
    ]
    for note in home.notes:
        blocks += _note(note, home.multi_cloud)
    blocks += _approvals(home)
    blocks += _running(home)
    blocks += _instances(home)
    blocks += _recent(home)
    blocks.append(context(*_footer(home)))
    return {"type": "home", "blocks": _fit(blocks)}


# --- parts -------------------------------------------------------------------------------------------


def _note(note: HomeNote, multi_cloud: bool) -> list[Block]:
    rendered = render_reply(note.reply, show_clouds=multi_cloud)
    kept = [b for b in rendered.blocks if b.get("type") not in ("actions", "header")][:NOTE_BLOCKS]
    return [context(f"Your last click here, {slack_date(note.at)}:"), *(kept or [section(rendered.text)])]


def _approvals(home: HomeSnapshot) -> list[Block]:
    if not home.awaiting:
        return []
    blocks: list[Block] = [{"type": "divider"}, header("Waiting for your approval")]
    for index, request in enumerate(home.awaiting[:SHOWN_APPROVALS]):
        remark = f" — “{escape(request.remark)}”" if request.remark else ""
        blocks.append(
            section(
                f"{_request_label(request, home.multi_cloud)}, {request.backup_format.upper()}{remark}\n"
                f"Requested by {user(request.requester_id)} in <#{request.channel_id}>"
                f" · expires {slack_date(request.expires_at)}"
            )
        )
        blocks.append(
            actions(
                f"home_approval_{index}",
                _button("Approve", APPROVE_ACTION, request.request_id, "primary"),
                _button("Reject", REJECT_ACTION, request.request_id, "danger"),
            )
        )
    more = len(home.awaiting) - SHOWN_APPROVALS
    if more > 0:
        blocks.append(context(f"And {more} more waiting for you — each is also in its channel."))
    return blocks


def _running(home: HomeSnapshot) -> list[Block]:
    lines = [
        f"• {_request_label(r, home.multi_cloud)} — {_progress(r)}, requested by {user(r.requester_id)}"
        f" · {slack_date(r.submitted_at or r.created_at)}"
        for r in home.running[:SHOWN_RUNNING]
    ]
    blocks: list[Block] = [{"type": "divider"}, header("Running now")]
    blocks += _packed(lines) if lines else [section("No backup of yours or of your instances is running.")]
    more = len(home.running) - SHOWN_RUNNING
    if more > 0:
        blocks.append(context(f"And {more} more."))
    return blocks


def _instances(home: HomeSnapshot) -> list[Block]:
    blocks: list[Block] = [{"type": "divider"}, header("Instances you may back up")]
    total = sum(cloud.total for cloud in home.clouds)
    if total == 0 and not any(cloud.unavailable for cloud in home.clouds):
        blocks.append(section("None yet — ask a bot admin to add you to the policy."))
        return blocks
    for cloud in home.clouds:
        blocks += _cloud(cloud, home.multi_cloud)
    return blocks


def _cloud(cloud: HomeCloud, multi_cloud: bool) -> list[Block]:
    title = f"*{escape(cloud.cloud)}*" if multi_cloud else None
    if cloud.unavailable is not None:
        where = f"in {escape(cloud.cloud)} " if multi_cloud else ""
        return [
            section(
                f"{title + ': ' if title else ''}:cloud: Could not list the instances {where}"
                f"({escape(cloud.unavailable)}). Try again in a minute."
            )
        ]
    if cloud.total == 0:
        return [section(f"{title}: none.")] if title else []
    lines = [_instance_line(item) for item in cloud.shown]
    if title:
        lines.insert(0, f"{title} — {cloud.total} instance{'s' if cloud.total != 1 else ''}")
    blocks = _packed(lines)
    more = cloud.total - len(cloud.shown)
    if more > 0:
        blocks.append(
            context(
                f"And {more} more — use `/dcs-backup list <instance>` for the backups of one of them, "
                "or *New backup* to pick any."
            )
        )
    return blocks


def _instance_line(item: HomeInstance) -> str:
    instance = item.instance
    line = f"• *{escape(instance.name)}* ({code(instance.instance_id)}) — "
    if not item.records_known:
        line += "last successful backup unknown (DCS did not answer)"
    elif item.last_success is None:
        line += "no successful backup on record"
    else:
        line += f"last successful backup {slack_date(item.last_success)}"
    if item.stale:
        line += " :warning: *stale*"
    line += f" · {_where(item.where)}"
    if instance.is_single_node:
        line += " · single-node: DCS cannot back it up"
    elif not instance.is_running:
        line += f" · Instance state: {escape(instance.status.capitalize())}"
    return line


def _where(where: Where) -> str:
    if where.anywhere:
        text = "in any channel"
    else:
        named = ", ".join(f"<#{channel}>" for channel in where.channels[:SHOWN_CHANNELS])
        more = len(where.channels) - SHOWN_CHANNELS
        text = f"in {named}" + (f" and {more} more" if more > 0 else "")
    return text + (", with a second person's approval" if where.approval else "")


def _recent(home: HomeSnapshot) -> list[Block]:
    blocks: list[Block] = [{"type": "divider"}, header("Your recent requests")]
    lines = [
        f"• {_request_label(r, home.multi_cloud)} — {_outcome(r)} · {slack_date(r.created_at)}"
        for r in home.recent[:SHOWN_RUNNING]
    ]
    blocks += _packed(lines) if lines else [section("None yet.")]
    return blocks


def _footer(home: HomeSnapshot) -> list[str]:
    notes = [
        "Times are shown in your own time zone. A stale instance has had no successful backup "
        "within the time its watch allows."
    ]
    if home.groups_unknown is not None:
        notes.append(
            f"Slack could not tell which user groups you are in ({escape(home.groups_unknown)}), so what "
            "rules grant through groups is not shown."
        )
    return notes


# --- helpers -----------------------------------------------------------------------------------------


def _request_label(request: BackupRequest, multi_cloud: bool) -> str:
    name = (
        f"{request.cloud}/{request.instance_name}" if multi_cloud and request.cloud else request.instance_name
    )
    return f"*{escape(name)}*"


def _progress(request: BackupRequest) -> str:
    if request.state == RequestState.SUBMITTED and request.backup_status in _BACKUP_STATUSES:
        return f"Backup status: {_BACKUP_STATUSES[BackupStatus(request.backup_status)]}"
    return _STATES[request.state]


def _outcome(request: BackupRequest) -> str:
    if request.state == RequestState.FINISHED and request.backup_status in _BACKUP_STATUSES:
        return _BACKUP_STATUSES[BackupStatus(request.backup_status)]
    return _STATES[request.state]


def _button(label: str, action_id: str, value: str, style: str | None = None) -> Block:
    return button(label[:BUTTON_TEXT_LIMIT], action_id, value, style)


def _packed(lines: Sequence[str]) -> list[Block]:
    """The lines in as few sections as fit, each under the section text limit."""
    blocks: list[Block] = []
    current = ""
    for line in lines:
        line = line[:SECTION_TEXT_LIMIT]
        if current and len(current) + 1 + len(line) > SECTION_TEXT_LIMIT:
            blocks.append(section(current))
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current:
        blocks.append(section(current))
    return blocks


def _fit(blocks: list[Block]) -> list[Block]:
    """At most :data:`MAX_BLOCKS` blocks: the last ones give way to a line saying so."""
    if len(blocks) <= MAX_BLOCKS:
        return blocks
    kept = blocks[: MAX_BLOCKS - 1]
    return [*kept, context("There is more than the Home tab can show; use `/dcs-backup help`.")]
