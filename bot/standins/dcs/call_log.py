"""The DCS stand-in's record of the calls it answered, and waiting for calls to arrive."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from bot.standins.faults import Fault


class Endpoint(StrEnum):
    """Names of the emulated operations, as used in the call log and as fault targets."""

    LIST_INSTANCES = "list_instances"
    SHOW_INSTANCE = "show_instance"
    CREATE_BACKUP = "create_backup"
    LIST_BACKUPS = "list_backups"
    IAM_TOKEN = "iam_token"


DCS_ENDPOINTS: frozenset[Endpoint] = frozenset(Endpoint) - {Endpoint.IAM_TOKEN}


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One request the emulator received, with the status it answered (0: the connection was closed
    without an answer) and the injected fault that shaped the answer, if any."""

    at: float
    method: str
    path: str
    endpoint: Endpoint | None
    instance_id: str | None
    status: int
    request_id: str
    query: Mapping[str, str] = field(default_factory=dict)
    fault: Fault | None = None


class CallLog:
    """Every answered call, oldest first; waiters wake after each one, so waiting never polls."""

    def __init__(self) -> None:
        self.calls: list[CallRecord] = []
        self._answered = asyncio.Event()

    def record(self, call: CallRecord) -> None:
        self.calls.append(call)
        self._answered.set()
        self._answered = asyncio.Event()

    def to(self, endpoint: Endpoint | str, *, instance_id: str | None = None) -> list[CallRecord]:
        """Received calls of one endpoint, optionally for one instance (any response status)."""
        wanted = Endpoint(endpoint)
        return [
            call
            for call in self.calls
            if call.endpoint == wanted and (instance_id is None or call.instance_id == instance_id)
        ]

    async def wait_until(self, predicate: Callable[[], bool], *, timeout: float) -> None:
        """Returns once ``predicate()`` holds; raises ``TimeoutError`` naming the last calls answered."""
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    await self._answered.wait()
        except TimeoutError:
            seen = ", ".join(f"{call.endpoint or call.path} {call.status}" for call in self.calls[-10:])
            raise TimeoutError(
                f"DCS emulator: gave up after {timeout}s; last calls answered: {seen or 'none'}"
            ) from None
