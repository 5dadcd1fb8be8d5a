"""Answering a parsed command: help, the confirmation card (or a dry run), list and status — after the
policy pre-check, the instance's resolution and the decision, in that order."""

from __future__ import annotations

import asyncio
import difflib
import logging
from dataclasses import dataclass, replace

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
from bot.core.rules.backup_request import (
    BackupRequest,
    RequestState,
    default_remark,
    expiry,
    new_request_id,
)
from bot.core.rules.grammar import (
    BackupCommand,
    Command,
    HelpCommand,
    ListCommand,
    StatusCommand,
    is_instance_id,
    split_instance,
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
    UnaskedCloud,
    Usage,
    pick_value,
)
from bot.core.rules.pick_offer import OfferedCommand, PickOffer
from bot.core.rules.policy import (
    Action,
    Decision,
    decide,
    may_act_somewhere,
    permissions_of,
    ref_of,
)

log = logging.getLogger(__name__)


class CommandAnswers:
    def __init__(self, workflow: Workflow) -> None:
        self._w = workflow
        # Resolution only: the card may show a status up to its TTL old; submission asks DCS itself.
        self._instances: dict[str, InstanceCache] = {}  # one per cloud

    async def handle(self, command: Command, invocation: Invocation) -> Reply:
        """The answer to ``command``, returned once its audit rows are committed. The command's own row
        is recorded first and goes in with the next row awaited (the decision's, as a rule), so that the
        two are one write."""
        committed = self._w.audit.record(
            AuditEntry(
                AuditKind.COMMAND,
                user_id=invocation.user_id,
                channel_id=invocation.channel_id,
                detail={"text": invocation.text, "command": type(command).__name__},
            )
        )
        try:
            return await self._answer(command, invocation)
        finally:
            # Nobody is told anything (an answer, or an error) before the command's row is committed.
            await committed

    async def _answer(self, command: Command, invocation: Invocation) -> Reply:
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
    ) -> tuple[Resolved, Decision] | Reply:
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
        if not isinstance(resolution, Resolved):
            return resolution
        ref = ref_of(resolution.instance)
        if self._w.undecidable(policy, actor, action, ref):
            return GroupsUnavailable(actor.groups_unknown or "")
        decision = decide(policy, actor, action, ref)
        await self._w.audit_decision(invocation.user_id, invocation.channel_id, decision, ref)
        if not decision.allowed:
            return Refusal(decision, ref)
        return resolution, decision

    async def _offer_picks(self, command: OfferedCommand, invocation: Invocation, reply: Reply) -> Reply:
        """``reply``; when it offers picks, the command typed is kept for them first (the buttons name
        only the instance: :mod:`bot.core.rules.pick_offer`)."""
        match reply:
            case InstanceNotFound(picks=picks):
                pass
            case InstanceAmbiguous():
                picks = reply.picks()
            case _:
                return reply
        offer = PickOffer(invocation.user_id, invocation.channel_id, command, self._w.clock.now())
        await self._w.requests.offer_picks(offer, picks)
        return reply

    async def _prepare_backup(self, command: BackupCommand, invocation: Invocation) -> Reply:
        authorized = await self._authorize(invocation, Action.BACKUP, command.instance)
        if not isinstance(authorized, tuple):
            return await self._offer_picks(command, invocation, authorized)
        resolved, decision = authorized
        instance, unasked = resolved.instance, resolved.unasked
        options = self._w.options
        backup_format = command.backup_format or options.default_format
        remark = command.remark or default_remark(invocation.user_name)
        blocker = backup_blocker(instance)
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
        if command.dry_run:
            call = self._w.dcs_of(instance.cloud).planned_backup(instance.instance_id, backup_format, remark)
            await self._w.audit.record(
                AuditEntry(
                    AuditKind.DRY_RUN,
                    user_id=invocation.user_id,
                    channel_id=invocation.channel_id,
                    instance_id=instance.instance_id,
                    instance_name=instance.name,
                    cloud=instance.cloud,
                    rule=decision.rule,
                    detail={"format": str(backup_format), "remark": remark, "blocker": blocker},
                )
            )
            run_id = None
            if blocker is None:
                # Kept (and never confirmable) so that the dry run's backup_run button can make the card.
                await self._w.requests.add(request.with_state(RequestState.DRY_RUN))
                run_id = request.request_id
            return DryRun(
                instance,
                decision,
                call,
                blockers=(blocker,) if blocker else (),
                unasked=unasked,
                run_id=run_id,
            )
        if blocker is not None:
            return NotBackupable(instance, blocker)
        await self._w.requests.add(request)
        await self._w.audit.record(
            about(request, AuditKind.CONFIRMATION_SHOWN, request.requester_id, detail={"remark": remark})
        )
        return Confirmation(request, instance, decision, unasked)

    async def _list(self, command: ListCommand, invocation: Invocation) -> Reply:
        authorized = await self._authorize(invocation, Action.LIST, command.instance)
        if not isinstance(authorized, tuple):
            return await self._offer_picks(command, invocation, authorized)
        resolved, _ = authorized
        instance = resolved.instance
        try:
            page = await self._w.dcs_of(instance.cloud).list_backups(instance.instance_id, limit=LIST_LIMIT)
        except DcsError as error:
            return CloudUnavailable(describe(error), instance.cloud if self._w.multi_cloud else None)
        records = sorted(page.records, key=created, reverse=True)
        return BackupList(instance, tuple(records), page.total, resolved.unasked)

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
            page = await self._w.dcs_of(request.cloud).list_backups(
                request.instance_id, begin_time=request.submitted_at - SUBMISSION_SKEW, limit=100
            )
        except DcsError:
            return None
        return next((r for r in page.records if r.backup_id == request.backup_id), None)

    async def _resolve(
        self, query: str
    ) -> Resolved | InstanceNotFound | InstanceAmbiguous | CloudUnavailable | Usage:
        """The one instance ``query`` names, asking its cloud, or every cloud at once for a bare name; a
        cloud that fails or takes longer than its bound is left out, and the answer says so."""
        address = split_instance(query)
        names = list(self._w.clouds.names)
        if address.cloud is not None:
            if address.cloud not in names:
                return Usage(
                    f"There is no cloud {address.cloud} here. The clouds are {', '.join(names)}; "
                    f"write the instance as {names[0]}/{address.target}, or without a cloud."
                )
            names = [address.cloud]
        if len(names) == 1:
            answers = [await self._look_up(names[0], address.target)]  # no task to wait for one cloud
        else:
            answers = await asyncio.gather(*(self._look_up(name, address.target) for name in names))
        found = [instance for answer in answers if isinstance(answer, list) for instance in answer]
        unasked = tuple(answer for answer in answers if isinstance(answer, UnaskedCloud))
        if len(found) == 1:
            return Resolved(found[0], unasked)
        if found:
            return InstanceAmbiguous(query, tuple(found), qualified=self._w.multi_cloud, unasked=unasked)
        if len(unasked) == len(names):
            first = unasked[0]
            return CloudUnavailable(first.detail, first.cloud if self._w.multi_cloud else None)
        answered = [name for name, answer in zip(names, answers, strict=True) if isinstance(answer, list)]
        close = await self._suggestions(address.target, answered)
        qualify = self._w.multi_cloud
        return InstanceNotFound(
            query,
            tuple(f"{i.cloud}/{i.name}" if qualify else i.name for i in close),
            unasked,
            picks=tuple(pick_value(i, qualified=qualify) for i in close),
        )

    async def _look_up(self, cloud: str, target: str) -> list[Instance] | UnaskedCloud:
        try:
            async with asyncio.timeout(self._w.clouds.bound(cloud)):
                found = await self._look_up_in(cloud, target)
        except DcsError as error:
            return UnaskedCloud(cloud, describe(error))
        except TimeoutError:
            log.warning("cloud %s did not answer a look-up of %r in time", cloud, target)
            return UnaskedCloud(cloud, "it did not answer in time")
        return [replace(instance, cloud=cloud) for instance in found]

    async def _look_up_in(self, cloud: str, target: str) -> list[Instance]:
        cache = self._cache(cloud)
        try:
            if is_instance_id(target):
                return [await cache.show_instance(target)]
            known = cache.id_of(target)
            if known is not None:
                instance = await cache.show_instance(known)
                if instance.name == target:
                    return [instance]
                cache.forget(known)  # renamed since: resolve the name afresh
            page = await self._w.dcs_of(cloud).list_instances(name=target, exact=True, limit=LIST_LIMIT)
            exact = [i for i in page.instances if i.name == target]
            if len(exact) != 1:
                return exact
            cache.named(target, exact[0].instance_id)
            return [await cache.show_instance(exact[0].instance_id)]
        except InstanceNotFoundError:
            return []

    def _cache(self, cloud: str) -> InstanceCache:
        cache = self._instances.get(cloud)
        if cache is None:
            cache = self._instances[cloud] = InstanceCache(self._w.dcs_of(cloud), self._w.clock)
        return cache

    async def _suggestions(self, target: str, clouds: list[str]) -> list[Instance]:
        """Instances with close names in the clouds that answered, each name (per cloud) once, at most 5."""
        found = await asyncio.gather(*(self._suggestions_in(cloud, target) for cloud in clouds))
        unique: dict[tuple[str | None, str], Instance] = {}
        for cloud, instances in zip(clouds, found, strict=True):
            for instance in instances:
                unique.setdefault((cloud, instance.name), replace(instance, cloud=cloud))
        return list(unique.values())[:5]

    async def _suggestions_in(self, cloud: str, target: str) -> list[Instance]:
        dcs = self._w.dcs_of(cloud)
        try:
            async with asyncio.timeout(self._w.clouds.bound(cloud)):
                fuzzy = await dcs.list_instances(name=target, exact=False, limit=LIST_LIMIT)
                instances = list(fuzzy.instances)
                if not instances:
                    everything = await dcs.list_instances(limit=1000)
                    by_name = {i.name: i for i in everything.instances}
                    close = difflib.get_close_matches(target, list(by_name), n=5, cutoff=0.6)
                    instances = [by_name[name] for name in close]
        except (DcsError, TimeoutError):
            return []
        return instances[:5]


@dataclass(frozen=True)
class Resolved:
    instance: Instance
    unasked: tuple[UnaskedCloud, ...] = ()
