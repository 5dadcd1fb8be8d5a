"""Runs the work behind a listener after the ack, under the supervisor, and never lets a traceback
reach a person: unexpected errors are logged with a reference and answered politely.

Commands go through a small worker pool: at most :data:`COMMAND_WORKERS` at a time, in arrival order,
with at most :data:`COMMAND_QUEUE` waiting. When the queue stays full for :data:`ADMISSION_WAIT` seconds
the command is not taken, and the ack says so (:data:`BUSY`), so a burst cannot pile up work without bound
and starve the acks of later commands."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.core.flow.home_refresh import HomeRefresh
from bot.core.flow.inputs import Click, Invocation
from bot.core.flow.service import BackupService
from bot.core.ports import AuditLog, Notifier
from bot.core.rules.audit import AuditEntry, AuditKind
from bot.core.rules.grammar import Command, UsageError
from bot.core.rules.messages import InternalError, Reply
from bot.supervisor import Admission, Supervisor, WorkerPool

log = logging.getLogger(__name__)

#: Commands worked on at once after their acks. Each mostly waits for DCS, SQLite and Slack.
COMMAND_WORKERS = 32
#: Commands that may wait for a worker; beyond, a command is answered with :data:`BUSY`.
COMMAND_QUEUE = 96
#: Seconds a command may wait for room in the queue before its ack (inside Slack's 3 s): a passing stall
#: of the workers is not overload.
ADMISSION_WAIT = 2.0

BUSY = (
    "The bot has too many commands in hand right now and could not take this one. "
    "Nothing was done; please try again in a minute."
)


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
    #: Shows a reply to one person in a channel without a response_url (``chat.postEphemeral``): for a
    #: form submitted with none to answer through. None: such a form's answer cannot be delivered.
    whisper: Callable[[str, str, Reply], Awaitable[bool]] | None = None
    workers: int = COMMAND_WORKERS
    capacity: int = COMMAND_QUEUE
    admission_wait: float = ADMISSION_WAIT
    #: The Home tabs, when served: opened by the ``app_home_opened`` listener, told of Home-tab clicks.
    home: HomeRefresh | None = None
    _commands: WorkerPool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pool = self.supervisor.pool("command", workers=self.workers, capacity=self.capacity)
        object.__setattr__(self, "_commands", pool)

    @property
    def accepting(self) -> bool:
        return self.supervisor.accepting

    async def command(
        self, command: Command, invocation: Invocation, *, replace_ack: bool = False
    ) -> Admission:
        """Queues the command's work; waits (before the ack) only while the queue is full. The answer goes
        through the invocation's response_url (replacing the command's ack when ``replace_ack``), or, with
        none, to the person alone in the invocation's channel."""

        async def work() -> None:
            reply: Reply
            try:
                reply = await self.service.handle(command, invocation)
            except Exception:
                reply = _internal_error()
            if invocation.response_url:
                await self.notifier.reply(invocation.response_url, reply, replace_original=replace_ack)
            elif self.whisper is not None:
                await self.whisper(invocation.channel_id, invocation.user_id, reply)
            else:
                log.error("no way to answer %s's command in %s", invocation.user_id, invocation.channel_id)

        admission = await self._commands.offer(
            work, name=f"command {type(command).__name__}", wait=self.admission_wait
        )
        if admission is Admission.FULL:
            log.warning("too many commands in hand; %s's command was not taken", invocation.user_id)
            self._record_command(invocation, "busy", {"text": invocation.text})
        return admission

    def usage_error(self, error: UsageError, invocation: Invocation) -> bool:
        return self._record_command(
            invocation, "usage_error", {"text": invocation.text, "error": error.message}
        )

    def _record_command(self, invocation: Invocation, outcome: str, detail: dict[str, object]) -> bool:
        entry = AuditEntry(
            AuditKind.COMMAND,
            user_id=invocation.user_id,
            channel_id=invocation.channel_id,
            outcome=outcome,
            detail=detail,
        )

        async def write() -> None:
            await self.audit.record(entry)

        return self.supervisor.spawn(write(), name=f"audit {outcome}")

    def home_opened(self, user_id: str) -> None:
        if self.home is not None:
            self.home.opened(user_id)

    def click(self, handler: Callable[[Click], Awaitable[None]], click: Click) -> bool:
        async def work() -> None:
            try:
                await handler(click)
            except Exception:
                error = _internal_error()
                if click.response_url is not None:
                    await self.notifier.reply(click.response_url, error)
                elif self.home is not None:
                    self.home.answer(click.user_id, error)

        return self.supervisor.spawn(work(), name=f"click {click.request_id[:8]}")
