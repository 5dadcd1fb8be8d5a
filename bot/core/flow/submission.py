"""Submitting a confirmed request to DCS — at most once — and announcing whether the backup started."""

from __future__ import annotations

import logging

from bot.core.errors import DcsApiError, DcsError
from bot.core.flow.context import LIST_LIMIT, SUBMISSION_SKEW, Workflow, about, created, describe
from bot.core.rules.audit import AuditKind
from bot.core.rules.backup_request import BackupRequest, RequestEvent
from bot.core.rules.instances import BackupRecord
from bot.core.rules.messages import ApiFailure, BackupNotStarted, BackupStarted

log = logging.getLogger(__name__)

# What a person is told when DCS could not be reached and shows no backup from the call.
_NOT_STARTED_HINT = "DCS could not handle the request right now. Try again in a few minutes."


class Submission:
    def __init__(self, workflow: Workflow) -> None:
        self._w = workflow

    async def submit(self, request: BackupRequest) -> None:
        """Calls CreateBackup for a request in ``submitting`` and announces the result in the channel."""
        await self._w.audit.record(
            about(
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
            backup_id = await self._w.dcs.create_backup(
                request.instance_id, backup_format=request.backup_format, remark=request.remark
            )
        except DcsApiError as error:
            await self._refused(request, error)
            return
        except DcsError as error:
            # The call may or may not have reached DCS; look before concluding anything.
            try:
                record = await self.find_submission(request)
            except DcsError:
                record = None
            if record is None:
                await self._refused(request, DcsApiError(0, None, describe(error), hint=_NOT_STARTED_HINT))
                return
            backup_id = record.backup_id
        await self.accepted(request, backup_id)

    async def accepted(self, request: BackupRequest, backup_id: str) -> None:
        """Keeps the ``backup_id`` DCS gave, announces the start and marks the request submitted."""
        # Kept at once, so that a crash from here on leaves a request whose backup is known exactly.
        await self._w.requests.update(request.request_id, backup_id=backup_id)
        started = request.with_state(request.state, backup_id=backup_id)
        await self._w.audit.record(
            about(started, AuditKind.API_RESULT, started.confirmed_by, outcome="accepted")
        )
        # Announce before the request becomes "submitted": the tracker follows only submitted requests, and
        # must find the channel message's ts to answer in its thread.
        delivered = await self._w.notifier.announce(
            started.channel_id, BackupStarted(started), fallback_response_url=started.response_url
        )
        await self._w.requests.transition(
            request.request_id,
            RequestEvent.ACCEPTED,
            now=self._w.clock.now(),
            backup_id=backup_id,
            message_ts=delivered.ts if delivered is not None else None,
        )

    async def _refused(self, request: BackupRequest, error: DcsApiError) -> None:
        failed = await self._w.requests.transition(
            request.request_id,
            RequestEvent.REFUSED,
            now=self._w.clock.now(),
            error_code=error.error_code,
            error_msg=error.error_msg,
        )
        if failed is None:
            return
        failure = ApiFailure(
            status=error.status,
            error_code=error.error_code,
            error_msg=error.error_msg,
            hint=error.hint,
            request_id=error.request_id,
        )
        await self._w.audit.record(
            about(
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
        await self._w.notifier.announce(
            failed.channel_id, BackupNotStarted(failed, failure), fallback_response_url=failed.response_url
        )

    async def find_submission(self, request: BackupRequest) -> BackupRecord | None:
        """A manual backup with this request's remark, created since it was submitted and not claimed by
        another request, if DCS shows one. Raises :class:`DcsError` when DCS cannot tell."""
        if request.submitted_at is None:
            return None
        page = await self._w.dcs.list_backups(
            request.instance_id, begin_time=request.submitted_at - SUBMISSION_SKEW, limit=LIST_LIMIT
        )
        matches = [
            r for r in page.records if r.remark == request.remark and r.backup_type in (None, "manual")
        ]
        for record in sorted(matches, key=created):
            if await self._w.requests.by_backup_id(record.backup_id) is None:
                return record
        return None
