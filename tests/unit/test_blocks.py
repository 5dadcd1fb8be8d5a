"""Rendering: user text is always escaped, and every message is valid Block Kit (checked by slack_sdk)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from bot.core.rules.backup_request import RequestState
from bot.core.rules.instances import BackupFormat, BackupRecord, Instance
from bot.core.rules.messages import (
    ApiFailure,
    ApprovalExpired,
    ApprovalRequested,
    BackupFinished,
    BackupList,
    BackupNotStarted,
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
    PlannedCall,
    Refusal,
    Reply,
    TrackingAbandoned,
    Usage,
)
from bot.core.rules.policy import Action, Decision, InstanceRef, Permission
from bot.slack.blocks import (
    CANCEL_ACTION,
    CONFIRM_ACTION,
    Message,
    backup_status,
    escape,
    escape_keeping_references,
    human_duration,
    human_size,
    instance_state,
    render_notice,
    render_reply,
)
from tests.factories import make_request

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
EVIL = "<!channel> <!here> <@U0BOSS> &amp; `code` *bold*"

INSTANCE = Instance(
    instance_id="11111111-2222-3333-4444-555555555555",
    name="redis-prod",
    status="RUNNING",
    cache_mode="ha",
    engine_version="6.0",
)
REQUEST = make_request(
    request_id="req-123",
    instance=INSTANCE,
    now=NOW,
    remark=EVIL,
    backup_id="b-1",
    approvers=("SLEADS1", "ULEAD1"),
    approval="peer",
)
RECORD = BackupRecord(
    backup_id="b-1",
    status="failed",
    error_code="dcs.08.0002",
    error_meaning="the backup timed out",
    remark=EVIL,
    size=1536,
    created_at=NOW,
    backup_type="manual",
    backup_format="aof",
)
ALLOWED = Decision(True, Action.BACKUP, "Rule 'sre-prod' allows it.", rule="sre-prod")

REPLIES: list[Reply] = [
    Usage(f"'{EVIL}' is not a backup format."),
    Help(
        "UALICE1",
        (Permission("sre-prod", (Action.BACKUP,), ("redis-*",), ("COPS1",), "peer"),),
        BackupFormat.RDB,
    ),
    Help("UEVE1", (), BackupFormat.AOF, groups_unknown="plan_upgrade_required"),
    Help("UEVE1", (), BackupFormat.AOF, groups_unknown=EVIL, groups_passing=True),
    GroupsUnavailable(EVIL),
    Refusal(
        Decision(False, Action.BACKUP, "You may back up only in <#COPS1>."), InstanceRef("i", "redis-prod")
    ),
    InstanceNotFound(EVIL, ("redis-prod",)),
    InstanceAmbiguous("redis-prod", (INSTANCE, INSTANCE)),
    NotBackupable(INSTANCE, "Single-node instances cannot be backed up."),
    CloudUnavailable(EVIL),
    DryRun(
        INSTANCE,
        ALLOWED,
        PlannedCall("POST", "/v2/{project_id}/instances/x/backups", {"remark": EVIL}),
        ("x",),
    ),
    Confirmation(REQUEST, INSTANCE, ALLOWED),
    *(
        CardClosed(REQUEST, outcome, "UBOB1", reason="r")
        for outcome in (
            "confirmed",
            "cancelled",
            "expired",
            "revoked",
            "awaiting_approval",
            "approved",
            "rejected",
            "started",
            "not_started",
            "checking",
            "undetermined",
        )
    ),
    CardClosed(replace(REQUEST, confirmed_by="UBOB1"), "expired", "UBOB1"),
    CardClosed(REQUEST.with_state(RequestState.NOT_CREATED), "not_started", "UBOB1"),
    InstanceNotFound("redis-prd", ("redis-prod",), picks=(INSTANCE.instance_id,)),
    InstanceAmbiguous(
        "redis-prod", (replace(INSTANCE, cloud="eu-de"), replace(INSTANCE, cloud="eu-nl")), True
    ),
    InstanceAmbiguous(
        "redis-prod",
        tuple(replace(INSTANCE, instance_id=f"{n:08d}-2222-3333-4444-555555555555") for n in range(40)),
    ),
    DryRun(
        INSTANCE, ALLOWED, PlannedCall("POST", "/v2/p/instances/x/backups", {"remark": "r"}), run_id="req-9"
    ),
    ClickRefused("Only {person} can confirm {instance}.", person="UALICE1", instance="redis-prod"),
    BackupList(INSTANCE, (RECORD, replace(RECORD, status="backuping", progress="50.00")), 2),
    BackupList(INSTANCE, (), 0),
    BackupStatus(REQUEST, RECORD),
    BackupStatus(REQUEST, None),
    InternalError("abcd1234"),
    NoticeCopy(BackupStarted(REQUEST), "COPS1"),
    NoticeCopy(ApprovalRequested(REQUEST), "COPS1"),
]

NOTICES: list[Notice] = [
    BackupStarted(REQUEST),
    BackupNotStarted(REQUEST, ApiFailure(400, "DCS.4096", EVIL, "Try later.", "req-id")),
    BackupFinished(REQUEST, RECORD, 75.0),
    BackupFinished(REQUEST, replace(RECORD, status="succeed", error_code=None, error_meaning=None), 3600.0),
    TrackingAbandoned(REQUEST, 7200.0),
    ApprovalRequested(REQUEST),
    BackupStarted(REQUEST, adopted=True),
    OutcomeChecking(REQUEST, EVIL, NOW),
    OutcomeChecking(REQUEST, "the bot restarted while submitting it", NOW, restarted=True),
    NoBackupCreated(REQUEST, 300.0),
    OutcomeAmbiguous(REQUEST, (RECORD, replace(RECORD, backup_id="b2", created_at=None))),
    BackupStarted(REQUEST, status="waiting"),
    BackupStarted(REQUEST, status="backuping", progress="42.57"),
    BackupStarted(REQUEST, status="backuping", progress="not a number"),
    BackupStarted(REQUEST, status="odd_status"),
    BackupStarted(REQUEST, final=RECORD, duration_seconds=75.0),
    BackupStarted(REQUEST, final=replace(RECORD, status="succeed"), duration_seconds=5.0),
    BackupStarted(REQUEST, final=replace(RECORD, status="expired")),
    BackupStarted(REQUEST, abandoned_after=7200.0),
    ApprovalExpired(REQUEST),
]

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_MARKUP = re.compile(r"[*`_~]|<[@#!]|:[a-z_]+:")


def _assert_plain_fallback(message: Message, *, sentences: int = 1) -> None:
    """A notification shows only the ``text``: one short plain sentence, no markup, no UUID (what a person
    typed is echoed as typed, escaped)."""
    text = message.text.replace(escape(EVIL), "what they typed")
    assert text and len(text) <= 150, text
    assert not _MARKUP.search(text), text
    assert not _UUID.search(text), text
    assert text.rstrip(".?!").count(". ") < sentences, text


@pytest.mark.parametrize("reply", REPLIES, ids=lambda r: type(r).__name__)
def test_every_reply_has_a_short_plain_fallback(reply: Reply) -> None:
    # A usage error may take a second sentence to say what to type instead.
    _assert_plain_fallback(render_reply(reply), sentences=2 if isinstance(reply, Usage) else 1)


@pytest.mark.parametrize("notice", NOTICES, ids=lambda n: type(n).__name__)
def test_every_notice_has_a_short_plain_fallback(notice: Notice) -> None:
    _assert_plain_fallback(render_notice(notice))


def test_uuids_and_rule_names_sit_in_the_context_line() -> None:
    for message in (
        render_reply(Confirmation(REQUEST, INSTANCE, ALLOWED)),
        render_notice(BackupStarted(REQUEST)),
    ):
        head = [b for b in message.blocks if b["type"] != "context"]
        notes = str([b for b in message.blocks if b["type"] == "context"])
        assert not _UUID.search(str(head))
        assert INSTANCE.instance_id in notes or "backup_id" in notes
    card = render_reply(Confirmation(REQUEST, INSTANCE, ALLOWED))
    assert "Rule `sre-prod`" in str(card.blocks[-1]) and "sre-prod" not in str(card.blocks[:-1])


def test_the_living_message_shows_each_phase_in_words() -> None:
    def shown(notice: BackupStarted) -> str:
        return str(render_notice(notice).blocks[0])

    assert "*Waiting* to start" in shown(BackupStarted(REQUEST))
    assert "*Running*: 42 %" in shown(BackupStarted(REQUEST, status="backuping", progress="42.57"))
    assert "*Succeeded* in 5 s: 1.5 KiB" in shown(
        BackupStarted(REQUEST, final=replace(RECORD, status="succeed"), duration_seconds=5)
    )
    failed = shown(BackupStarted(REQUEST, final=RECORD, duration_seconds=75.0))
    assert "*Failed* in 1 min 15 s: `dcs.08.0002` — the backup timed out" in failed
    assert "I stopped following it" in shown(BackupStarted(REQUEST, abandoned_after=7200.0))


def test_ways_forward_carry_only_opaque_ids() -> None:
    def buttons(message: Message) -> list[tuple[str, str]]:
        return [
            (e["action_id"], e["value"])
            for b in message.blocks
            if b["type"] == "actions"
            for e in b["elements"]
        ]

    refused = render_notice(BackupNotStarted(REQUEST, ApiFailure(400, "DCS.4096", "busy", "", None)))
    assert buttons(refused) == [("backup_retry", "req-123")]
    assert buttons(render_notice(BackupFinished(REQUEST, RECORD))) == [("backup_retry", "req-123")]
    dry = DryRun(INSTANCE, ALLOWED, PlannedCall("POST", "/x", {}), run_id="req-9")
    assert buttons(render_reply(dry)) == [("backup_run", "req-9")]
    picks = InstanceNotFound("redis-prd", ("redis-prod",), picks=(INSTANCE.instance_id,))
    assert buttons(render_reply(picks)) == [("backup_pick", INSTANCE.instance_id)]
    expired = CardClosed(REQUEST, "expired", "UBOB1")
    assert buttons(render_reply(expired)) == [("backup_retry", "req-123")]
    # An approval request in the channel that expired keeps no button; its thread reply offers Start over.
    assert buttons(render_reply(CardClosed(replace(REQUEST, confirmed_by="UBOB1"), "expired", "UBOB1"))) == []
    assert buttons(render_notice(ApprovalExpired(REQUEST))) == [("backup_retry", "req-123")]


def test_instance_state_and_backup_status_read_as_words() -> None:
    assert instance_state("RUNNING") == "Running" and instance_state("CREATEFAILED") == "Createfailed"
    assert backup_status("succeed") == "Succeeded" and backup_status("backuping") == "Running"
    assert backup_status("odd_one") == "Odd one"


def test_cancelled_names_the_instance() -> None:
    cancelled = render_reply(CardClosed(REQUEST, "cancelled", "UBOB1"))
    assert "Cancelled by <@UBOB1>" in str(cancelled.blocks) and "*redis-prod*" in str(cancelled.blocks)
    assert cancelled.text == "The backup of redis-prod was cancelled."


def _all_text(message: Message) -> str:
    return message.text + repr(message.blocks)


def _assert_valid(message: Message) -> None:
    assert message.text
    assert len(message.blocks) <= 50
    for block in message.blocks:
        parsed = Block.parse(block)
        assert parsed is not None
        parsed.validate_json()


@pytest.mark.parametrize("reply", REPLIES, ids=lambda r: type(r).__name__)
def test_replies_are_valid_block_kit_and_never_mention(reply: Reply) -> None:
    message = render_reply(reply)
    _assert_valid(message)
    text = _all_text(message)
    assert "<!channel>" not in text
    assert "<!here>" not in text
    assert "<@U0BOSS>" not in text


@pytest.mark.parametrize("notice", NOTICES, ids=lambda n: type(n).__name__)
def test_notices_are_valid_block_kit_and_never_mention(notice: Notice) -> None:
    message = render_notice(notice)
    _assert_valid(message)
    text = _all_text(message)
    assert "<!channel>" not in text
    assert "<!here>" not in text
    assert "<@U0BOSS>" not in text


def test_a_passing_group_failure_asks_to_try_again_and_refuses_nothing() -> None:
    answer = render_reply(GroupsUnavailable("no answer in time"))
    assert _all_text(answer).count(
        ":hourglass: Slack could not tell which user groups you are in (no answer in time), and the answer "
        "depends on them. Nothing was changed; please try again in a moment."
    )
    assert answer.text == "Slack could not tell your user groups; please try again."
    help_text = str(render_reply(Help("UEVE1", (), BackupFormat.AOF, "timeout", groups_passing=True)).blocks)
    assert "Slack could not tell just now which user groups you are in (timeout)" in help_text
    assert "Try again in a moment." in help_text and "do not apply" not in help_text


def test_confirmation_card_has_the_two_buttons_with_the_request_id() -> None:
    message = render_reply(Confirmation(REQUEST, INSTANCE, ALLOWED))
    actions = next(b for b in message.blocks if b["type"] == "actions")["elements"]
    assert [(a["action_id"], a["value"]) for a in actions] == [
        (CONFIRM_ACTION, "req-123"),
        (CANCEL_ACTION, "req-123"),
    ]
    text = _all_text(message)
    for expected in (
        "redis-prod",
        INSTANCE.instance_id,
        "master/standby",
        "Instance state",
        "Running",
        "AOF",
    ):
        assert expected in text
    context = next(b for b in message.blocks if b["type"] == "context")
    assert INSTANCE.instance_id in str(context), "the UUID is in the small context line"
    assert INSTANCE.instance_id not in str(message.blocks[0])


def test_failure_notice_carries_code_message_and_hint() -> None:
    text = _all_text(render_notice(NOTICES[1]))
    assert "DCS.4096" in text
    assert "Try later." in text
    assert "&lt;!channel&gt;" in text


def test_record_failure_is_explained() -> None:
    assert "timed out" in _all_text(render_notice(NOTICES[2]))


@given(st.text())
def test_escaped_text_has_no_control_characters(text: str) -> None:
    escaped = escape(text)
    assert "<" not in escaped
    assert ">" not in escaped
    assert escaped.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") == text


@given(st.text())
def test_references_survive_but_broadcasts_do_not(text: str) -> None:
    rendered = escape_keeping_references(text + " <#C0OPS> <@U0X> <!channel> <!here> <!subteam^S0X>")
    assert "<#C0OPS>" in rendered
    assert "<@U0X>" in rendered
    assert "<!subteam^S0X>" in rendered
    assert "<!channel>" not in rendered
    assert "<!here>" not in rendered


@pytest.mark.parametrize(
    ("size", "text"),
    [(None, "unknown size"), (0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 * 1024**3, "5.0 GiB")],
)
def test_human_size(size: int | None, text: str) -> None:
    assert human_size(size) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (59.6, "1 min"), (300, "5 min"), (75, "1 min 15 s"), (7260, "2 h 1 min")],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


@pytest.mark.parametrize(
    "notice",
    [
        OutcomeChecking(REQUEST, "DCS answered HTTP 504 DCS.5000: Gateway timeout.", NOW),
        OutcomeChecking(REQUEST, "the bot restarted while submitting it", NOW, restarted=True),
        NoBackupCreated(REQUEST, 300.0),
        OutcomeAmbiguous(REQUEST, (RECORD,)),
    ],
    ids=lambda n: type(n).__name__,
)
def test_an_unknown_outcome_never_says_not_started(notice: Notice) -> None:
    text = _all_text(render_notice(notice)).lower()
    assert "not started" not in text and "not* started" not in text


def test_the_checking_notice_says_outcome_unknown_and_why() -> None:
    message = render_notice(OutcomeChecking(REQUEST, "DCS answered HTTP 504 DCS.5000: Gateway timeout.", NOW))
    assert message.blocks[0]["text"]["text"].startswith(
        ":hourglass_flowing_sand: *Outcome unknown, checking.*"
    )
    assert "HTTP 504" in _all_text(message)
    assert message.text == "Outcome unknown for the backup of redis-prod; checking."
    assert "never sent twice" in _all_text(message)


def test_a_notice_copy_has_no_buttons_and_names_the_channel() -> None:
    message = render_reply(NoticeCopy(ApprovalRequested(REQUEST), "COPS1"))
    assert all(block["type"] != "actions" for block in message.blocks)
    assert "<#COPS1>" in _all_text(message)
