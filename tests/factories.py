"""One place that builds the values tests need: backup requests, instances, backup records, and the bodies
Slack sends (slash-command forms and ``block_actions`` payloads).

Every builder has defaults that make a valid value and takes keyword overrides for what a test cares
about, so a test names only what matters to it::

    make_request(remark=EVIL, approval="peer", approvers=("ULEAD1",))
    submitted_request(backup_id="b1", message_ts="1.2")
    command_body("redis-prod rdb", user_id=BOB)
    click_body("backup_confirm", request.request_id, user_id=ALICE)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from bot.core.rules.backup_request import BackupRequest, RequestState
from bot.core.rules.instances import BackupFormat, BackupRecord, Instance
from bot.standins.slack.payloads import (
    AppContext,
    Person,
    Place,
    block_actions_payload,
    slack_escape,
    slash_command_form,
)
from bot.standins.slack.timeline import Button

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

ALICE = "UALICE1"
BOB = "UBOB1"
LEAD = "ULEAD1"
OPS = "COPS1"
PROD_ID = "11111111-2222-3333-4444-555555555555"
PROD_NAME = "redis-prod"
RESPONSE_URL = "http://127.0.0.1:9/response/x"
COMMAND = "/dcs-backup"
APP = AppContext(team_id="T0TEST", team_domain="test", api_app_id="A0DCSBACKUP", verification_token="x")


class NamedInstance(Protocol):
    """Anything with an instance id and a name: a core Instance, the DCS stand-in's EmulatedInstance …"""

    @property
    def instance_id(self) -> str: ...

    @property
    def name(self) -> str: ...


# --- DCS values ----------------------------------------------------------------------------------------


def make_instance(
    name: str = PROD_NAME,
    instance_id: str = PROD_ID,
    *,
    status: str = "RUNNING",
    cache_mode: str | None = "ha",
    **fields: Any,
) -> Instance:
    """An instance as ShowInstance describes it (running master/standby unless told otherwise)."""
    values: dict[str, Any] = {"engine": "Redis", "engine_version": "6.0", "capacity": 1} | fields
    return Instance(instance_id=instance_id, name=name, status=status, cache_mode=cache_mode, **values)


def make_record(
    backup_id: str,
    status: str = "succeed",
    *,
    created_at: datetime | None = NOW,
    ended: datetime | None = None,
    **fields: Any,
) -> BackupRecord:
    """A backup record as ListBackupRecords returns it; ``ended`` sets ``updated_at``."""
    return BackupRecord(backup_id=backup_id, status=status, created_at=created_at, updated_at=ended, **fields)


# --- backup requests -----------------------------------------------------------------------------------


def make_request(
    *,
    request_id: str = "r1",
    instance: NamedInstance | None = None,
    now: datetime = NOW,
    ttl: float = 300,
    requester: str = ALICE,
    **fields: Any,
) -> BackupRequest:
    """A request as the bot stores it when it shows the confirmation card (``pending``, created ``now``,
    expiring ``ttl`` seconds later). Any field of :class:`BackupRequest` may be given."""
    target = instance or make_instance()
    values: dict[str, Any] = {
        "request_id": request_id,
        "requester_id": requester,
        "requester_name": requester.removeprefix("U").removesuffix("1").lower() or requester.lower(),
        "channel_id": OPS,
        "instance_id": target.instance_id,
        "instance_name": target.name,
        "backup_format": BackupFormat.AOF,
        "remark": "x",
        "rule": "sre-prod",
        "created_at": now,
        "expires_at": now + timedelta(seconds=ttl),
    }
    return BackupRequest(**(values | fields))


def confirmed_request(*, state: RequestState = RequestState.SUBMITTING, **fields: Any) -> BackupRequest:
    """A request its requester has confirmed (``submitting`` unless told otherwise): ``confirmed_by`` and
    ``submitted_at`` are set."""
    requester = fields.get("requester", ALICE)
    values: dict[str, Any] = {
        "state": state,
        "confirmed_by": requester,
        "submitted_at": fields.get("now", NOW),
    }
    return make_request(**(values | fields))


def submitted_request(*, backup_id: str = "b1", **fields: Any) -> BackupRequest:
    """A request DCS accepted: ``submitted`` with its ``backup_id``."""
    return confirmed_request(**({"state": RequestState.SUBMITTED, "backup_id": backup_id} | fields))


def awaiting_approval(*, approvers: tuple[str, ...] = (LEAD,), **fields: Any) -> BackupRequest:
    """A request under a peer rule that its requester has confirmed and an approver has still to answer."""
    values: dict[str, Any] = {
        "state": RequestState.AWAITING_APPROVAL,
        "approval": "peer",
        "approvers": approvers,
        "confirmed_by": fields.get("requester", ALICE),
    }
    return make_request(**(values | fields))


# --- what Slack sends ----------------------------------------------------------------------------------


def command_body(
    text: str = "",
    *,
    user_id: str = ALICE,
    user_name: str | None = None,
    channel_id: str = OPS,
    channel_name: str = "ops",
    response_url: str = RESPONSE_URL,
    escape: bool = True,
    **overrides: Any,
) -> dict[str, Any]:
    """The form fields Slack POSTs for ``/dcs-backup text`` (what a Bolt listener gets as ``body``).

    ``text`` is what the person typed; it is escaped as Slack does unless ``escape=False``. ``overrides``
    replace or add fields (any type, for malformed bodies)."""
    form: dict[str, Any] = dict(
        slash_command_form(
            APP,
            user=Person(id=user_id, name=user_name or user_id.lower()),
            channel=Place(id=channel_id, name=channel_name),
            command=COMMAND,
            text=slack_escape(text) if escape else text,
            response_url=response_url,
            trigger_id="1.2.3",
        )
    )
    return form | overrides


def click_body(
    action_id: str,
    value: str | None,
    *,
    user_id: str = ALICE,
    user_name: str | None = None,
    channel_id: str = OPS,
    channel_name: str = "ops",
    response_url: str = RESPONSE_URL,
    message_ts: str = "1700000000.000100",
    is_ephemeral: bool = True,
    message: dict[str, Any] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """A ``block_actions`` payload for a click on the button ``action_id`` carrying ``value`` (a request
    id). ``overrides`` replace or add top-level keys (any type, for malformed bodies)."""
    payload = block_actions_payload(
        APP,
        user=Person(id=user_id, name=user_name or user_id.lower()),
        channel=Place(id=channel_id, name=channel_name),
        message_ts=message_ts,
        is_ephemeral=is_ephemeral,
        message=message,
        button=Button(action_id=action_id, value=value, label=action_id, block_id="actions"),
        value=value,
        response_url=response_url,
        trigger_id="1.2.3",
        action_ts="1700000000.000200",
    )
    return payload | overrides
