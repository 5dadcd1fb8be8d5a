"""What every step of the flow shares: the ports it talks through (:class:`Workflow`), its options, and
the helpers for auditing a request and describing a DCS failure."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.core.errors import DcsApiError, DcsError
from bot.core.ports import (
    AuditLog,
    Clock,
    DcsApi,
    DcsClouds,
    GroupDirectory,
    GroupLookupError,
    HomeAnswers,
    NoHomeTab,
    Notifier,
    RequestStore,
)
from bot.core.rules.audit import AuditEntry, AuditKind
from bot.core.rules.backup_request import BackupRequest
from bot.core.rules.instances import BackupFormat, BackupPage, BackupRecord, Instance, InstancePage
from bot.core.rules.messages import PlannedCall
from bot.core.rules.policy import Action, Actor, Decision, InstanceRef, Policy, groups_could_decide

log = logging.getLogger(__name__)

# How far back to look for a backup record that a submission may have created before a crash or timeout.
SUBMISSION_SKEW = timedelta(minutes=2)
LIST_LIMIT = 10


@dataclass(frozen=True)
class ServiceOptions:
    confirm_ttl: float
    approval_ttl: float
    default_format: BackupFormat


@dataclass(frozen=True)
class Workflow:
    clouds: DcsClouds
    requests: RequestStore
    audit: AuditLog
    groups: GroupDirectory
    notifier: Notifier
    policy: Callable[[], Policy]
    clock: Clock
    options: ServiceOptions
    #: Where answers to clicks made on a Home tab go (they have no message to answer through).
    home: HomeAnswers = field(default_factory=NoHomeTab)

    @property
    def multi_cloud(self) -> bool:
        """Whether more than one cloud is configured: only then do messages name the cloud."""
        return len(self.clouds.names) > 1

    def dcs_of(self, cloud: str | None) -> DcsApi:
        return client_of(self.clouds, cloud)

    async def actor(self, policy: Policy, user_id: str, channel_id: str) -> Actor:
        """The person, with the user groups the policy names that they belong to (:func:`actor_of`)."""
        return await actor_of(self.groups, policy, user_id, channel_id)

    @staticmethod
    def undecidable(policy: Policy, actor: Actor, action: Action, ref: InstanceRef | None) -> bool:
        """Whether no decision can be made for ``actor`` now: Slack could not tell their user groups
        just now, and those could change the decision."""
        return actor.groups_passing and groups_could_decide(policy, actor, action, ref)

    async def audit_decision(
        self, user_id: str, channel_id: str, decision: Decision, ref: InstanceRef | None
    ) -> None:
        await self.audit.record(
            AuditEntry(
                AuditKind.DECISION,
                user_id=user_id,
                channel_id=channel_id,
                instance_id=ref.instance_id if ref else None,
                instance_name=ref.name if ref else None,
                cloud=ref.cloud if ref else None,
                rule=decision.rule,
                outcome="allowed" if decision.allowed else "denied",
                detail={"action": str(decision.action), "reason": decision.reason},
            )
        )


async def actor_of(groups: GroupDirectory, policy: Policy, user_id: str, channel_id: str) -> Actor:
    """The person, with the user groups the policy names that they belong to. When Slack cannot tell,
    the person is in no group, and ``groups_unknown`` says why (``groups_passing``: for now)."""
    wanted = policy.referenced_groups()
    if not wanted:
        return Actor(user_id, channel_id)
    try:
        members = await groups.members(wanted)
    except GroupLookupError as error:
        if error.passing:
            log.warning("user groups of %s unknown for now: %s", user_id, error.reason)
        return Actor(user_id, channel_id, groups_unknown=error.reason, groups_passing=error.passing)
    mine = frozenset(group for group, users in members.items() if user_id in users)
    return Actor(user_id, channel_id, groups=mine)


def client_of(clouds: DcsClouds, cloud: str | None) -> DcsApi:
    """The client of ``cloud``; a request from before clouds were recorded (None) is the first's. A cloud
    no longer configured answers every call with a refusal (nothing is sent anywhere)."""
    name = cloud if cloud is not None else clouds.names[0]
    if name not in clouds.names:
        return _Unconfigured(name)
    return clouds.client(name)


class _Unconfigured:
    """The DCS of a cloud that is not configured (any more): every call is refused, none is made."""

    def __init__(self, name: str) -> None:
        self._name = name

    def _refusal(self) -> DcsApiError:
        return DcsApiError(
            400, None, f"the cloud {self._name} is not configured in this bot", hint="Ask a bot admin."
        )

    async def show_instance(self, instance_id: str) -> Instance:
        raise self._refusal()

    async def list_instances(
        self, *, name: str | None = None, exact: bool = False, limit: int = 100, offset: int = 0
    ) -> InstancePage:
        raise self._refusal()

    def planned_backup(self, instance_id: str, backup_format: BackupFormat, remark: str) -> PlannedCall:
        raise self._refusal()

    async def create_backup(self, instance_id: str, *, backup_format: BackupFormat, remark: str) -> str:
        raise self._refusal()

    async def list_backups(
        self,
        instance_id: str,
        *,
        begin_time: datetime | None = None,
        end_time: datetime | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> BackupPage:
        raise self._refusal()


def about(
    request: BackupRequest,
    kind: AuditKind,
    user_id: str | None,
    *,
    rule: str | None = None,
    outcome: str | None = None,
    detail: dict[str, object] | None = None,
) -> AuditEntry:
    """An audit entry about ``request``."""
    return AuditEntry(
        kind,
        user_id=user_id,
        channel_id=request.channel_id,
        request_id=request.request_id,
        instance_id=request.instance_id,
        instance_name=request.instance_name,
        backup_id=request.backup_id,
        rule=rule or request.rule,
        outcome=outcome or str(request.state),
        detail=dict(detail or {}),
        cloud=request.cloud,
    )


def describe(error: DcsError) -> str:
    if isinstance(error, DcsApiError):
        code = f" {error.error_code}" if error.error_code else ""
        return f"DCS answered HTTP {error.status}{code}: {error.error_msg}"
    # The transport detail (host, port, exception) is for the log, not for the channel.
    log.warning("DCS unreachable: %s", error)
    return "DCS could not be reached or did not answer in time"


def request_ref(request: BackupRequest) -> InstanceRef:
    """The request's instance as decisions see it: its cloud and the tags it had when it was asked for."""
    return InstanceRef(request.instance_id, request.instance_name, request.cloud, request.instance_tags)


def created(record: BackupRecord) -> float:
    return record.created_at.timestamp() if record.created_at else 0.0
