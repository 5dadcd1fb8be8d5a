"""Settling submissions a crash interrupted: requests a previous process left in ``submitting``,
between the confirmation and DCS's answer. Each is settled without ever being submitted again — the
backup DCS shows for it is adopted, or the channel is told plainly that none exists — and those DCS
cannot tell about yet are tried again until the bot stops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from bot.core.errors import DcsError
from bot.core.flow.context import Workflow, about
from bot.core.flow.submission import Submission
from bot.core.rules.audit import AuditKind
from bot.core.rules.backup_request import BackupRequest, RequestEvent
from bot.core.rules.messages import OutcomeUnknown

log = logging.getLogger(__name__)


class Recovery:
    def __init__(self, workflow: Workflow, submission: Submission) -> None:
        self._w = workflow
        self._submission = submission

    async def settle(
        self, requests: Sequence[BackupRequest], retry_every: float, stop: asyncio.Event
    ) -> None:
        """Settles ``requests``, trying those DCS cannot tell about again every ``retry_every`` seconds
        until all are settled or ``stop`` is set."""
        pending = list(requests)
        while pending and not stop.is_set():
            pending = [request for request in pending if not await self.recover(request)]
            if pending:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=retry_every)

    async def recover(self, request: BackupRequest) -> bool:
        """Settles one interrupted request: adopt the backup DCS shows for it, or say plainly that none
        exists. Returns False when DCS could not be asked (try again later)."""
        backup_id = request.backup_id
        if backup_id is None:
            try:
                record = await self._submission.find_submission(request)
            except DcsError as error:
                log.warning("cannot settle interrupted request %s yet: %s", request.request_id, error)
                return False
            backup_id = record.backup_id if record else None
        await self._w.audit.record(
            about(
                request,
                AuditKind.RECOVERY,
                None,
                outcome="adopted" if backup_id else "lost",
                detail={"backup_id": backup_id},
            )
        )
        if backup_id is not None:
            await self._submission.accepted(request, backup_id)
            return True
        lost = await self._w.requests.transition(
            request.request_id, RequestEvent.LOST, now=self._w.clock.now()
        )
        if lost is not None:
            await self._w.notifier.announce(
                lost.channel_id, OutcomeUnknown(lost), fallback_response_url=lost.response_url
            )
        return True
