"""Runs the work behind a listener after the ack, under the supervisor, and never lets a traceback
reach a person: unexpected errors are logged with a reference and answered politely."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.core.flow.inputs import Click, Invocation
from bot.core.flow.service import BackupService
from bot.core.ports import AuditLog, Notifier
from bot.core.rules.audit import AuditEntry, AuditKind
from bot.core.rules.grammar import Command, UsageError
from bot.core.rules.messages import InternalError, Reply
from bot.supervisor import Supervisor

log = logging.getLogger(__name__)


def _internal_error() -> InternalError:
    reference = secrets.token_hex(4)
    log.exception("unexpected error (reference %s)", reference)
    return InternalError(reference)


@dataclass(frozen=True)
class Runner:
    service: BackupService
    notifier: Notifier
    audit: AuditLog
    supervisor: Supervisor

    @property
    def accepting(self) -> bool:
        return self.supervisor.accepting

    def command(self, command: Command, invocation: Invocation) -> bool:
        async def work() -> None:
            reply: Reply
            try:
                reply = await self.service.handle(command, invocation)
            except Exception:
                reply = _internal_error()
            await self.notifier.reply(invocation.response_url, reply)

        return self.supervisor.spawn(work(), name=f"command {type(command).__name__}")

    def usage_error(self, error: UsageError, invocation: Invocation) -> bool:
        entry = AuditEntry(
            AuditKind.COMMAND,
            user_id=invocation.user_id,
            channel_id=invocation.channel_id,
            outcome="usage_error",
            detail={"text": invocation.text, "error": error.message},
        )
        return self.supervisor.spawn(self.audit.record(entry), name="audit usage error")

    def click(self, handler: Callable[[Click], Awaitable[None]], click: Click) -> bool:
        async def work() -> None:
            try:
                await handler(click)
            except Exception:
                await self.notifier.reply(click.response_url, _internal_error())

        return self.supervisor.spawn(work(), name=f"click {click.request_id[:8]}")
