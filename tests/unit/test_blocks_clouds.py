"""How answers name clouds: ambiguity with the qualified forms, the clouds that could not be asked."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from bot.core.rules.backup_request import BackupRequest
from bot.core.rules.instances import BackupFormat, BackupRecord, Instance
from bot.core.rules.messages import (
    BackupList,
    BackupsStale,
    BackupStarted,
    BackupStatus,
    CloudUnavailable,
    Confirmation,
    Help,
    InstanceAmbiguous,
    InstanceNotFound,
    Notice,
    Reply,
    UnaskedCloud,
    WatchedBackupEnded,
)
from bot.core.rules.policy import Action, Decision
from bot.slack.blocks import Message, render_notice, render_reply
from tests.factories import make_request

DE = Instance(instance_id="11111111-2222-3333-4444-555555555555", name="redis-prod", cloud="eu-de")
NL = Instance(instance_id="33333333-2222-3333-4444-555555555555", name="redis-prod", cloud="eu-nl")


def text_of(reply: Reply) -> str:
    message = render_reply(reply)
    return "\n".join(str(block) for block in message.blocks)


def test_ambiguity_across_clouds_offers_the_qualified_forms() -> None:
    shown = text_of(InstanceAmbiguous("redis-prod", (DE, NL), qualified=True))
    assert "`eu-de/redis-prod`" in shown and "`eu-nl/redis-prod`" in shown
    assert "more than one place" in shown


def test_ambiguity_in_one_cloud_keeps_asking_for_the_id() -> None:
    shown = text_of(InstanceAmbiguous("redis-prod", (DE, NL)))
    assert "use its instance ID" in shown and "eu-de/" not in shown
    assert DE.instance_id in shown and NL.instance_id in shown


def test_a_cloud_that_could_not_be_asked_is_named() -> None:
    shown = text_of(InstanceNotFound("redis-x", (), (UnaskedCloud("eu-nl", "it did not answer in time"),)))
    assert "Could not ask eu-nl (eu-nl: it did not answer in time)" in shown


def test_cloud_unavailable_names_the_cloud_when_given() -> None:
    assert "DCS in eu-nl" in text_of(CloudUnavailable("refused", "eu-nl"))
    assert "from DCS (refused)" in text_of(CloudUnavailable("refused"))


def test_not_found_for_a_qualified_id_says_with_id() -> None:
    assert "with ID" in text_of(InstanceNotFound(f"eu-nl/{DE.instance_id}"))


def _all_text(message: Message) -> str:
    return message.text + "\n" + "\n".join(str(block) for block in message.blocks)


def _submitted(request: BackupRequest) -> BackupRequest:
    return replace(request, backup_id="b1", submitted_at=request.created_at, message_ts="1.1")


def test_the_card_channel_message_list_status_and_watch_notices_name_the_cloud_only_with_several() -> None:
    request = make_request(cloud="eu-nl", instance=NL)
    record = BackupRecord(backup_id="b1", status="succeed", created_at=datetime(2026, 12, 1, tzinfo=UTC))
    decision = Decision(True, Action.BACKUP, "ok", rule="sre-prod")
    replies: list[Reply] = [
        Confirmation(request, NL, decision),
        BackupList(NL, (record,), 1),
        BackupStatus(_submitted(request), record),
    ]
    notices: list[Notice] = [
        BackupStarted(_submitted(request)),
        WatchedBackupEnded("redis-prod", record, cloud="eu-nl"),
        BackupsStale("redis-prod", NL.instance_id, 26, None, cloud="eu-nl"),
    ]
    for reply in replies:
        assert "eu-nl/redis-prod" in _all_text(render_reply(reply, show_clouds=True)), reply
        assert "eu-nl" not in _all_text(render_reply(reply)), reply
    for notice in notices:
        assert "eu-nl/redis-prod" in _all_text(render_notice(notice, show_clouds=True)), notice
        assert "eu-nl" not in _all_text(render_notice(notice)), notice


def test_help_explains_qualified_names_only_when_several_clouds_are_served() -> None:
    reply = Help(user_id="UALICE1", permissions=(), default_format=BackupFormat.RDB)
    assert "put its cloud first, like eu-nl/redis-prod" in _all_text(render_reply(reply, show_clouds=True))
    assert "eu-nl" not in _all_text(render_reply(reply))
