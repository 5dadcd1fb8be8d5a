"""Answering a parsed command: help, the confirmation card (or a dry run), list and status — after the
policy pre-check, the instance's resolution and the decision, in that order."""

from __future__ import annotations

import difflib

from bot.core.errors import DcsError, InstanceNotFoundError
from bot.core.flow.context import (
    LIST_LIMIT,
    SUBMISSION_SKEW,
    Workflow,
    about,
    created,
    describe,
    request_ref,
)
from bot.core.flow.inputs import Invocation
from bot.core.flow.instance_cache import InstanceCache
from bot.core.rules.audit import AuditEntry, AuditKind
from bot.core.rules.backup_request import BackupRequest, expiry, new_request_id
from bot.core.rules.grammar import (
    BackupCommand,
    Command,
    HelpCommand,
    ListCommand,
    StatusCommand,
    is_instance_id,
)
from bot.core.rules.instances import BackupRecord, Instance, backup_blocker
from bot.core.rules.messages import (
    BackupList,
    BackupStatus,
    CloudUnavailable,
    Confirmation,
    DryRun,
    GroupsUnavailable,
    Help,
    InstanceAmbiguous,
    InstanceNotFound,
    NotBackupable,
    Refusal,
    Reply,
    Usage,
)
from bot.core.rules.policy import Action, Decision, decide, may_act_somewhere, permissions_of, ref_of


class CommandAnswers:
    def __init__(self, workflow: Workflow) -> None:
        self._w = workflow
        # Resolution only: the card may show a status up to its TTL old; submission asks DCS itself.
        self._instances = InstanceCache(workflow.dcs, workflow.clock)

    async def handle(self, command: Command, invocation: Invocation) -> Reply:
        await self._w.audit.record(
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
        policy = self._w.policy()
        actor = await self._w.actor(policy, invocation.user_id, invocation.channel_id)
        return Help(
            user_id=invocation.user_id,
            permissions=tuple(permissions_of(policy, actor)),
            default_format=self._w.options.default_format,
            groups_unknown=actor.groups_unknown,
            groups_passing=actor.groups_passing,
        )

    async def _authorize(
        self, invocation: Invocation, action: Action, query: str
    ) -> tuple[Instance, Decision] | Reply:
        """Policy pre-check, instance resolution, then the decision — in that order, so that a person
        with no rights at all never causes a cloud call. When the answer would turn on user groups Slack
        could not tell just now, nothing is decided (or audited as a decision): the person is asked to
        try again."""
        policy = self._w.policy()
        actor = await self._w.actor(policy, invocation.user_id, invocation.channel_id)
        if not may_act_somewhere(policy, actor, action):
            if self._w.undecidable(policy, actor, action, None):
                return GroupsUnavailable(actor.groups_unknown or "")
            decision = decide(policy, actor, action, None)
            await self._w.audit_decision(invocation.user_id, invocation.channel_id, decision, None)
            return Refusal(decision)
        resolution = await self._resolve(query)
        if not isinstance(resolution, Instance):
            return resolution
        ref = ref_of(resolution)
        if self._w.undecidable(policy, actor, action, ref):
            return GroupsUnavailable(actor.groups_unknown or "")
        decision = decide(policy, actor, action, ref)
        await self._w.audit_decision(invocation.user_id, invocation.channel_id, decision, ref)
        if not decision.allowed:
            return Refusal(decision, ref)
        return resolution, decision

    async def _prepare_backup(self, command: BackupCommand, invocation: Invocation) -> Reply:
        authorized = await self._authorize(invocation, Action.BACKUP, command.instance)
        if not isinstance(authorized, tuple):
            return authorized
        instance, decision = authorized
        options = self._w.options
        backup_format = command.backup_format or options.default_format
        remark = command.remark or f"Slack backup by @{invocation.user_name}"
        blocker = backup_blocker(instance)
        if command.dry_run:
            call = self._w.dcs.planned_backup(instance.instance_id, backup_format, remark)
            await self._w.audit.record(
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
        now = self._w.clock.now()
        request = BackupRequest(
            request_id=new_request_id(),
            requester_id=invocation.user_id,
            requester_name=invocation.user_name,
            channel_id=invocation.channel_id,
            instance_id=instance.instance_id,
            instance_name=instance.name,
            cloud=instance.cloud,
            instance_tags=instance.tags,
            backup_format=backup_format,
            remark=remark,
            rule=decision.rule or "",
            created_at=now,
            expires_at=expiry(now, options.confirm_ttl),
            response_url=invocation.response_url,
            approval=decision.approval,
            approvers=decision.approvers,
        )
        await self._w.requests.add(request)
        await self._w.audit.record(
            about(request, AuditKind.CONFIRMATION_SHOWN, request.requester_id, detail={"remark": remark})
        )
        return Confirmation(request, instance, decision)

    async def _list(self, command: ListCommand, invocation: Invocation) -> Reply:
        authorized = await self._authorize(invocation, Action.LIST, command.instance)
        if not isinstance(authorized, tuple):
            return authorized
        instance, _ = authorized
        try:
            page = await self._w.dcs.list_backups(instance.instance_id, limit=LIST_LIMIT)
        except DcsError as error:
            return CloudUnavailable(describe(error))
        records = sorted(page.records, key=created, reverse=True)
        return BackupList(instance, tuple(records), page.total)

    async def _status(self, command: StatusCommand, invocation: Invocation) -> Reply:
        request = await self._w.requests.by_backup_id(command.backup_id)
        policy = self._w.policy()
        actor = await self._w.actor(policy, invocation.user_id, invocation.channel_id)
        ref = None if request is None else request_ref(request)
        if self._w.undecidable(policy, actor, Action.STATUS, ref):
            return GroupsUnavailable(actor.groups_unknown or "")
        decision = decide(policy, actor, Action.STATUS, ref)
        await self._w.audit_decision(invocation.user_id, invocation.channel_id, decision, ref)
        if not decision.allowed:
            return Refusal(decision, ref)
        if request is None:
            return Usage(
                f"No backup with ID {command.backup_id} was started through this bot. "
                "Use /dcs-backup list <instance> to see all backups of an instance."
            )
        return BackupStatus(request, await self._record_of(request))

    async def _record_of(self, request: BackupRequest) -> BackupRecord | None:
        if request.backup_id is None or request.submitted_at is None:
            return None
        try:
            page = await self._w.dcs.list_backups(
                request.instance_id, begin_time=request.submitted_at - SUBMISSION_SKEW, limit=100
            )
        except DcsError:
            return None
        return next((r for r in page.records if r.backup_id == request.backup_id), None)

    async def _resolve(
        self, query: str
    ) -> Instance | InstanceNotFound | InstanceAmbiguous | CloudUnavailable:
        cache = self._instances
        try:
            if is_instance_id(query):
                return await cache.show_instance(query)
            known = cache.id_of(query)
            if known is not None:
                instance = await cache.show_instance(known)
                if instance.name == query:
                    return instance
                cache.forget(known)  # renamed since: resolve the name afresh
            page = await self._w.dcs.list_instances(name=query, exact=True, limit=LIST_LIMIT)
            exact = [i for i in page.instances if i.name == query]
            if len(exact) > 1:
                return InstanceAmbiguous(query, tuple(exact))
            if exact:
                cache.named(query, exact[0].instance_id)
                return await cache.show_instance(exact[0].instance_id)
            return InstanceNotFound(query, await self._suggestions(query))
        except InstanceNotFoundError:
            return InstanceNotFound(query)
        except DcsError as error:
            return CloudUnavailable(describe(error))

    async def _suggestions(self, query: str) -> tuple[str, ...]:
        fuzzy = await self._w.dcs.list_instances(name=query, exact=False, limit=LIST_LIMIT)
        names = [i.name for i in fuzzy.instances]
        if not names:
            everything = await self._w.dcs.list_instances(limit=1000)
            names = difflib.get_close_matches(query, [i.name for i in everything.instances], n=5, cutoff=0.6)
        return tuple(names[:5])
