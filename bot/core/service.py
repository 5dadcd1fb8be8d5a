"""The backup workflow: from a parsed command to a confirmed, submitted backup.

Everything here talks to the outside world only through the protocols of :mod:`bot.core.ports`.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from bot.core.audit import AuditEntry, AuditKind
from bot.core.command import (
    BackupCommand,
    Command,
    HelpCommand,
    ListCommand,
    StatusCommand,
    is_instance_id,
)
from bot.core.errors import DcsApiError, DcsError
from bot.core.explain import api_error_hint
from bot.core.instances import BackupFormat, BackupRecord, Instance
from bot.core.policy import (
    Action,
    Actor,
    Decision,
    InstanceRef,
    Policy,
    decide,
    may_act_somewhere,
    may_approve,
    permissions_of,
)
from bot.core.ports import AuditLog, Clock, DcsApi, GroupDirectory, GroupLookupError, Notifier, RequestStore
from bot.core.replies import (
    ApiFailure,
    ApprovalRequested,
    BackupList,
    BackupNotStarted,
    BackupStarted,
    BackupStatus,
    CardClosed,
    ClickRefused,
    CloudUnavailable,
    Confirmation,
    DryRun,
    Help,
    InstanceAmbiguous,
    InstanceNotFound,
    NotBackupable,
    OutcomeUnknown,
    PlannedCall,
    Refusal,
    Reply,
    Usage,
)
from bot.core.requests import BackupRequest, RequestEvent, RequestState, expiry, new_request_id

log = logging.getLogger(__name__)

# How far back to look for a backup record that a submission may have created before a crash or timeout.
_SUBMISSION_SKEW = timedelta(minutes=2)
_LIST_LIMIT = 10
# States a request reaches only through a confirmation (and, under a peer rule, an approval).
_STARTED_STATES = frozenset(
    {
        RequestState.SUBMITTING,
        RequestState.SUBMITTED,
        RequestState.API_FAILED,
        RequestState.UNKNOWN,
        RequestState.FINISHED,
        RequestState.ABANDONED,
    }
)
_PAST_TENSE = {"confirm": "confirmed", "cancel": "cancelled", "approve": "approved", "reject": "rejected"}


@dataclass(frozen=True)
class Invocation:
    """Who typed a command, where, and how to answer them."""

    user_id: str
    user_name: str
    channel_id: str
    response_url: str
    text: str = ""


@dataclass(frozen=True)
class Click:
    """A button press on a card; ``request_id`` is the button's opaque value."""

    user_id: str
    request_id: str
    response_url: str
    channel_id: str | None = None


@dataclass(frozen=True)
class ServiceOptions:
    project_id: str
    confirm_ttl: float
    approval_ttl: float
    default_format: BackupFormat


@dataclass(frozen=True)
class Resolved:
    instance: Instance


Resolution = Resolved | InstanceNotFound | InstanceAmbiguous | CloudUnavailable


class BackupService:
    def __init__(
        self,
        *,
        dcs: DcsApi,
        requests: RequestStore,
        audit: AuditLog,
        groups: GroupDirectory,
        notifier: Notifier,
        policy: Callable[[], Policy],
        clock: Clock,
        options: ServiceOptions,
    ) -> None:
        self._dcs = dcs
        self._requests = requests
        self._audit = audit
        self._groups = groups
        self._notifier = notifier
        self._policy = policy
        self._clock = clock
        self._options = options

    # --- commands ---------------------------------------------------------------------------------------

    async def handle(self, command: Command, invocation: Invocation) -> Reply:
        await self._audit.record(
            AuditEntry(
                AuditKind.COMMAND,
                user_id=invocation.user_id,
                channel_id=invocation.channel_id,
                detail={"text": invocation.text, "command": type(command).__name__},
            )
        )
        match command:
            case HelpCommand():
                return await self._help(invocation)
            case BackupCommand():
                return await self._prepare_backup(command, invocation)
            case ListCommand():
                return await self._list(command, invocation)
            case StatusCommand():
                return await self._status(command, invocation)

    async def _help(self, invocation: Invocation) -> Help:
        policy = self._policy()
        actor = await self._actor(policy, invocation.user_id, invocation.channel_id)
        return Help(
            user_id=invocation.user_id,
            permissions=tuple(permissions_of(policy, actor)),
            default_format=self._options.default_format,
            groups_unknown=actor.groups_unknown,
        )

    async def _authorize(
        self, invocation: Invocation, action: Action, query: str
    ) -> tuple[Instance, Decision] | Reply:
        """Policy pre-check, instance resolution, then the decision — in that order, so that a person
        with no rights at all never causes a cloud call."""
        policy = self._policy()
        actor = await self._actor(policy, invocation.user_id, invocation.channel_id)
        if not may_act_somewhere(policy, actor, action):
            decision = decide(policy, actor, action, None)
            await self._audit_decision(invocation, decision, None)
            return Refusal(decision)
        resolution = await self._resolve(query)
        if not isinstance(resolution, Resolved):
            return resolution
        instance = resolution.instance
        ref = InstanceRef(instance.instance_id, instance.name)
        decision = decide(policy, actor, action, ref)
        await self._audit_decision(invocation, decision, ref)
        if not decision.allowed:
            return Refusal(decision, ref)
        return instance, decision

    async def _prepare_backup(self, command: BackupCommand, invocation: Invocation) -> Reply:
        authorized = await self._authorize(invocation, Action.BACKUP, command.instance)
        if not isinstance(authorized, tuple):
            return authorized
        instance, decision = authorized
        backup_format = command.backup_format or self._options.default_format
        remark = command.remark or f"Slack backup by @{invocation.user_name}"
        blocker = backup_blocker(instance)
        if command.dry_run:
            call = PlannedCall(
                "POST",
                f"/v2/{self._options.project_id}/instances/{instance.instance_id}/backups",
                {"remark": remark, "backup_format": str(backup_format)},
            )
            await self._audit.record(
                AuditEntry(
                    AuditKind.DRY_RUN,
                    user_id=invocation.user_id,
                    channel_id=invocation.channel_id,
                    instance_id=instance.instance_id,
                    instance_name=instance.name,
                    rule=decision.rule,
                    detail={"format": str(backup_format), "remark": remark, "blocker": blocker},
                )
            )
            return DryRun(instance, decision, call, blockers=(blocker,) if blocker else ())
        if blocker is not None:
            return NotBackupable(instance, blocker)
        now = self._clock.now()
        request = BackupRequest(
            request_id=new_request_id(),
            requester_id=invocation.user_id,
            requester_name=invocation.user_name,
            channel_id=invocation.channel_id,
            instance_id=instance.instance_id,
            instance_name=instance.name,
            backup_format=backup_format,
            remark=remark,
            rule=decision.rule or "",
            created_at=now,
            expires_at=expiry(now, self._options.confirm_ttl),
            response_url=invocation.response_url,
            approval=decision.approval,
            approvers=decision.approvers,
        )
        await self._requests.add(request)
        await self._audit.record(
            _about(request, AuditKind.CONFIRMATION_SHOWN, request.requester_id, detail={"remark": remark})
        )
        return Confirmation(request, instance, decision)

    async def _list(self, command: ListCommand, invocation: Invocation) -> Reply:
        authorized = await self._authorize(invocation, Action.LIST, command.instance)
        if not isinstance(authorized, tuple):
            return authorized
        instance, _ = authorized
        try:
            page = await self._dcs.list_backups(instance.instance_id, limit=_LIST_LIMIT)
        except DcsError as error:
            return CloudUnavailable(_describe(error))
        records = sorted(page.records, key=_created, reverse=True)
        return BackupList(instance, tuple(records), page.total)

    async def _status(self, command: StatusCommand, invocation: Invocation) -> Reply:
        request = await self._requests.by_backup_id(command.backup_id)
        policy = self._policy()
        actor = await self._actor(policy, invocation.user_id, invocation.channel_id)
        ref = None if request is None else InstanceRef(request.instance_id, request.instance_name)
        decision = decide(policy, actor, Action.STATUS, ref)
        await self._audit_decision(invocation, decision, ref)
        if not decision.allowed:
            return Refusal(decision, ref)
        if request is None:
            return Usage(
                f"No backup with ID {command.backup_id} was started through this bot. "
                "Use /dcs-backup list <instance> to see all backups of an instance."
            )
        record = await self._find_record(request)
        return BackupStatus(request, record)

    # --- clicks -----------------------------------------------------------------------------------------

    async def confirm(self, click: Click) -> None:
        request = await self._clicked_request(click, "confirm")
        if request is None:
            return
        now = self._clock.now()
        if request.is_expired(now):
            await self._expire(request, click)
            return
        policy = self._policy()
        actor = await self._actor(policy, click.user_id, request.channel_id)
        ref = InstanceRef(request.instance_id, request.instance_name)
        decision = decide(policy, actor, Action.BACKUP, ref)
        if not decision.allowed:
            revoked = await self._requests.transition(
                request.request_id, RequestEvent.CANCEL, now=now, error_msg=decision.reason
            )
            if revoked is not None:
                await self._audit.record(
                    _about(
                        revoked,
                        AuditKind.CANCELLED,
                        click.user_id,
                        outcome="revoked",
                        detail={"reason": decision.reason},
                    )
                )
                await self._notifier.reply(
                    click.response_url,
                    CardClosed(revoked, "revoked", click.user_id, reason=decision.reason),
                    replace_original=True,
                )
            return
        if decision.approval == "peer":
            await self._ask_approval(request, click)
            return
        confirmed = await self._requests.transition(
            request.request_id,
            RequestEvent.CONFIRM,
            now=now,
            unexpired=True,
            confirmed_by=click.user_id,
            submitted_at=now,
            response_url=click.response_url,
        )
        if confirmed is None:
            await self._lost_race(click, "confirm")
            return
        await self._audit.record(_about(confirmed, AuditKind.CONFIRMED, click.user_id, rule=decision.rule))
        await self._notifier.reply(
            click.response_url, CardClosed(confirmed, "confirmed", click.user_id), replace_original=True
        )
        await self.submit(confirmed)

    async def cancel(self, click: Click) -> None:
        request = await self._clicked_request(click, "cancel")
        if request is None:
            return
        cancelled = await self._requests.transition(
            request.request_id, RequestEvent.CANCEL, now=self._clock.now()
        )
        if cancelled is None:
            await self._lost_race(click, "cancel")
            return
        await self._audit.record(_about(cancelled, AuditKind.CANCELLED, click.user_id))
        await self._notifier.reply(
            click.response_url, CardClosed(cancelled, "cancelled", click.user_id), replace_original=True
        )

    async def _ask_approval(self, request: BackupRequest, click: Click) -> None:
        now = self._clock.now()
        waiting = await self._requests.transition(
            request.request_id,
            RequestEvent.ASK_APPROVAL,
            now=now,
            unexpired=True,
            confirmed_by=click.user_id,
            expires_at=expiry(now, self._options.approval_ttl),
            response_url=click.response_url,
        )
        if waiting is None:
            await self._lost_race(click, "confirm")
            return
        await self._audit.record(
            _about(
                waiting,
                AuditKind.APPROVAL_REQUESTED,
                click.user_id,
                detail={"approvers": list(waiting.approvers)},
            )
        )
        await self._notifier.reply(
            click.response_url, CardClosed(waiting, "awaiting_approval", click.user_id), replace_original=True
        )
        delivered = await self._notifier.announce(
            waiting.channel_id, ApprovalRequested(waiting), fallback_response_url=waiting.response_url
        )
        if delivered is not None and delivered.ts is not None:
            await self._requests.update(waiting.request_id, approval_message_ts=delivered.ts)

    async def approve(self, click: Click) -> None:
        request = await self._approval_target(click, "approve")
        if request is None:
            return
        now = self._clock.now()
        if request.is_expired(now):
            await self._expire(request, click)
            return
        approved = await self._requests.transition(
            request.request_id,
            RequestEvent.APPROVE,
            now=now,
            unexpired=True,
            approved_by=click.user_id,
            submitted_at=now,
            response_url=click.response_url,
        )
        if approved is None:
            await self._lost_race(click, "approve")
            return
        await self._audit.record(_about(approved, AuditKind.APPROVED, click.user_id))
        await self._notifier.reply(
            click.response_url, CardClosed(approved, "approved", click.user_id), replace_original=True
        )
        await self.submit(approved)

    async def reject(self, click: Click) -> None:
        request = await self._approval_target(click, "reject")
        if request is None:
            return
        rejected = await self._requests.transition(
            request.request_id, RequestEvent.REJECT, now=self._clock.now(), approved_by=click.user_id
        )
        if rejected is None:
            await self._lost_race(click, "reject")
            return
        await self._audit.record(_about(rejected, AuditKind.REJECTED, click.user_id))
        await self._notifier.reply(
            click.response_url, CardClosed(rejected, "rejected", click.user_id), replace_original=True
        )

    async def _approval_target(self, click: Click, verb: str) -> BackupRequest | None:
        """The request an approver's click may act on, or None after telling the clicker why not."""
        request = await self._requests.get(click.request_id)
        await self._audit_click(click, request, verb)
        if request is None:
            await self._refuse_click(click, "This backup request is unknown to the bot. Nothing was changed.")
            return None
        if request.state != RequestState.AWAITING_APPROVAL:
            await self._lost_race(click, verb)
            return None
        if click.user_id == request.requester_id:
            await self._refuse_click(
                click,
                f"You cannot {verb} your own request; another approver has to. Nothing was changed.",
                request,
            )
            return None
        policy = self._policy()
        actor = await self._actor(policy, click.user_id, request.channel_id)
        if not may_approve(request.approvers, click.user_id, actor.groups):
            note = f" ({actor.groups_unknown})" if actor.groups_unknown else ""
            await self._refuse_click(
                click,
                f"Only the approvers of rule {request.rule!r} can {verb} this request{note}. "
                "Nothing was changed.",
                request,
            )
            return None
        return request

    async def _clicked_request(self, click: Click, verb: str) -> BackupRequest | None:
        """The request a click may act on, or None after telling the clicker why not."""
        request = await self._requests.get(click.request_id)
        await self._audit_click(click, request, verb)
        if request is None:
            await self._refuse_click(click, "This backup request is unknown to the bot. Nothing was changed.")
            return None
        if click.user_id != request.requester_id:
            await self._refuse_click(
                click,
                f"Only <@{request.requester_id}> can {verb} this backup request. Nothing was changed.",
                request,
            )
            return None
        return request

    async def _audit_click(self, click: Click, request: BackupRequest | None, verb: str) -> None:
        await self._audit.record(
            AuditEntry(
                AuditKind.CLICK,
                user_id=click.user_id,
                channel_id=click.channel_id,
                request_id=click.request_id,
                instance_id=request.instance_id if request else None,
                instance_name=request.instance_name if request else None,
                detail={"button": verb},
            )
        )

    async def _refuse_click(self, click: Click, message: str, request: BackupRequest | None = None) -> None:
        await self._audit.record(
            AuditEntry(
                AuditKind.CLICK_REFUSED,
                user_id=click.user_id,
                channel_id=click.channel_id,
                request_id=click.request_id,
                instance_id=request.instance_id if request else None,
                instance_name=request.instance_name if request else None,
                outcome=message,
            )
        )
        await self._notifier.reply(click.response_url, ClickRefused(message))

    async def _expire(self, request: BackupRequest, click: Click) -> None:
        expired = await self._requests.transition(
            request.request_id, RequestEvent.EXPIRE, now=self._clock.now()
        )
        if expired is None:
            await self._lost_race(click, "confirm")
            return
        await self._audit.record(_about(expired, AuditKind.EXPIRED, click.user_id))
        await self._notifier.reply(
            click.response_url, CardClosed(expired, "expired", click.user_id), replace_original=True
        )

    async def _lost_race(self, click: Click, verb: str) -> None:
        """Another click (or the clock) changed the request first; say what it is now."""
        current = await self._requests.get(click.request_id)
        state = current.state if current else None
        if state in _STARTED_STATES:
            done = "approved" if current is not None and current.approved_by else "confirmed"
            message = f"This backup request was already {done}; it runs only once."
        elif state == RequestState.AWAITING_APPROVAL:
            message = "This backup request was already confirmed and is waiting for approval."
        elif state == RequestState.CANCELLED:
            message = "This backup request was already cancelled."
        elif state == RequestState.REJECTED:
            message = "This backup request was already rejected."
        elif state == RequestState.EXPIRED or (current is not None and current.is_expired(self._clock.now())):
            message = "This confirmation has expired. Run the command again to start over."
        else:
            message = f"This backup request can no longer be {_PAST_TENSE[verb]}."
        await self._refuse_click(click, message, current)

    # --- submission -------------------------------------------------------------------------------------

    async def submit(self, request: BackupRequest) -> None:
        """Calls CreateBackup for a request in ``submitting`` and announces the result in the channel."""
        await self._audit.record(
            _about(
                request,
                AuditKind.API_CALL,
                request.confirmed_by,
                detail={
                    "call": "create_backup",
                    "format": str(request.backup_format),
                    "remark": request.remark,
                },
            )
        )
        try:
            backup_id = await self._dcs.create_backup(
                request.instance_id, backup_format=request.backup_format, remark=request.remark
            )
        except DcsApiError as error:
            await self._refused(request, error)
            return
        except DcsError as error:
            # The call may or may not have reached DCS; look before concluding anything.
            try:
                record = await self._find_submission(request)
            except DcsError:
                record = None
            if record is None:
                await self._refused(request, DcsApiError(0, None, _describe(error)))
                return
            backup_id = record.backup_id
        await self._accepted(request, backup_id)

    async def _accepted(self, request: BackupRequest, backup_id: str) -> None:
        started = request.with_state(request.state, backup_id=backup_id)
        await self._audit.record(
            _about(started, AuditKind.API_RESULT, started.confirmed_by, outcome="accepted")
        )
        # Announce before the request becomes "submitted": the tracker follows only submitted requests, and
        # must find the channel message's ts to answer in its thread.
        delivered = await self._notifier.announce(
            started.channel_id, BackupStarted(started), fallback_response_url=started.response_url
        )
        ts = delivered.ts if delivered is not None else None
        await self._requests.transition(
            request.request_id,
            RequestEvent.ACCEPTED,
            now=self._clock.now(),
            backup_id=backup_id,
            message_ts=ts,
        )

    async def _refused(self, request: BackupRequest, error: DcsApiError) -> None:
        failed = await self._requests.transition(
            request.request_id,
            RequestEvent.REFUSED,
            now=self._clock.now(),
            error_code=error.error_code,
            error_msg=error.error_msg,
        )
        if failed is None:
            return
        failure = ApiFailure(
            status=error.status,
            error_code=error.error_code,
            error_msg=error.error_msg,
            hint=api_error_hint(error.error_code, error.status),
            request_id=error.request_id,
        )
        await self._audit.record(
            _about(
                failed,
                AuditKind.API_RESULT,
                failed.confirmed_by,
                outcome="refused",
                detail={
                    "status": error.status,
                    "error_code": error.error_code,
                    "error_msg": error.error_msg,
                    "dcs_request_id": error.request_id,
                },
            )
        )
        await self._notifier.announce(
            failed.channel_id, BackupNotStarted(failed, failure), fallback_response_url=failed.response_url
        )

    async def _find_submission(self, request: BackupRequest) -> BackupRecord | None:
        """A manual backup with this request's remark, created since it was submitted and not claimed by
        another request, if DCS shows one. Raises :class:`DcsError` when DCS cannot tell."""
        if request.submitted_at is None:
            return None
        page = await self._dcs.list_backups(
            request.instance_id, begin_time=request.submitted_at - _SUBMISSION_SKEW, limit=_LIST_LIMIT
        )
        matches = [
            r for r in page.records if r.remark == request.remark and r.backup_type in (None, "manual")
        ]
        for record in sorted(matches, key=_created):
            if await self._requests.by_backup_id(record.backup_id) is None:
                return record
        return None

    async def recover(self, request: BackupRequest) -> bool:
        """Settles a request that a crash left between confirmation and DCS's answer, without ever
        submitting it again: adopt the backup DCS shows for it, or say plainly that none exists.
        Returns False when DCS could not be asked (try again later)."""
        try:
            record = await self._find_submission(request)
        except DcsError as error:
            log.warning("cannot settle interrupted request %s yet: %s", request.request_id, error)
            return False
        await self._audit.record(
            _about(
                request,
                AuditKind.RECOVERY,
                None,
                outcome="adopted" if record else "lost",
                detail={"backup_id": record.backup_id if record else None},
            )
        )
        if record is not None:
            await self._accepted(request, record.backup_id)
            return True
        lost = await self._requests.transition(request.request_id, RequestEvent.LOST, now=self._clock.now())
        if lost is not None:
            await self._notifier.announce(
                lost.channel_id, OutcomeUnknown(lost), fallback_response_url=lost.response_url
            )
        return True

    async def _find_record(self, request: BackupRequest) -> BackupRecord | None:
        if request.backup_id is None or request.submitted_at is None:
            return None
        try:
            page = await self._dcs.list_backups(
                request.instance_id, begin_time=request.submitted_at - _SUBMISSION_SKEW, limit=100
            )
        except DcsError:
            return None
        return next((r for r in page.records if r.backup_id == request.backup_id), None)

    # --- helpers ----------------------------------------------------------------------------------------

    async def _actor(self, policy: Policy, user_id: str, channel_id: str) -> Actor:
        wanted = policy.referenced_groups()
        if not wanted:
            return Actor(user_id, channel_id)
        try:
            members = await self._groups.members(wanted)
        except GroupLookupError as error:
            return Actor(user_id, channel_id, groups_unknown=str(error))
        mine = frozenset(group for group, users in members.items() if user_id in users)
        return Actor(user_id, channel_id, groups=mine)

    async def _resolve(self, query: str) -> Resolution:
        try:
            if is_instance_id(query):
                return Resolved(await self._dcs.show_instance(query))
            page = await self._dcs.list_instances(name=query, exact=True, limit=_LIST_LIMIT)
            exact = [i for i in page.instances if i.name == query]
            if len(exact) > 1:
                return InstanceAmbiguous(query, tuple(exact))
            if exact:
                return Resolved(await self._dcs.show_instance(exact[0].instance_id))
            return InstanceNotFound(query, await self._suggestions(query))
        except DcsApiError as error:
            if error.status == 404 or error.error_code in ("DCS.3022", "DCS.4061"):
                return InstanceNotFound(query)
            return CloudUnavailable(_describe(error))
        except DcsError as error:
            return CloudUnavailable(_describe(error))

    async def _suggestions(self, query: str) -> tuple[str, ...]:
        fuzzy = await self._dcs.list_instances(name=query, exact=False, limit=_LIST_LIMIT)
        names = [i.name for i in fuzzy.instances]
        if not names:
            everything = await self._dcs.list_instances(limit=1000)
            names = difflib.get_close_matches(query, [i.name for i in everything.instances], n=5, cutoff=0.6)
        return tuple(names[:5])

    async def _audit_decision(
        self, invocation: Invocation, decision: Decision, ref: InstanceRef | None
    ) -> None:
        await self._audit.record(
            AuditEntry(
                AuditKind.DECISION,
                user_id=invocation.user_id,
                channel_id=invocation.channel_id,
                instance_id=ref.instance_id if ref else None,
                instance_name=ref.name if ref else None,
                rule=decision.rule,
                outcome="allowed" if decision.allowed else "denied",
                detail={"action": str(decision.action), "reason": decision.reason},
            )
        )


def backup_blocker(instance: Instance) -> str | None:
    """Why DCS would refuse to back this instance up, known before calling it."""
    if instance.is_single_node:
        return (
            "Single-node instances cannot be backed up; "
            "DCS backs up master/standby and cluster instances only."
        )
    if not instance.is_running:
        return f"The instance is {instance.status}; it can be backed up only while RUNNING."
    return None


def _created(record: BackupRecord) -> float:
    return record.created_at.timestamp() if record.created_at else 0.0


def _describe(error: DcsError) -> str:
    if isinstance(error, DcsApiError):
        code = f" {error.error_code}" if error.error_code else ""
        return f"DCS answered HTTP {error.status}{code}: {error.error_msg}"
    # The transport detail (host, port, exception) is for the log, not for the channel.
    log.warning("DCS unreachable: %s", error)
    return "DCS could not be reached or did not answer in time"


def _about(
    request: BackupRequest,
    kind: AuditKind,
    user_id: str | None,
    *,
    rule: str | None = None,
    outcome: str | None = None,
    detail: dict[str, object] | None = None,
) -> AuditEntry:
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
    )
