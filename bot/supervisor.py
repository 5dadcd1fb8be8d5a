"""Owns every background task, so none is garbage-collected mid-flight or orphaned at shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class Supervisor:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._accepting = True

    @property
    def accepting(self) -> bool:
        return self._accepting

    @property
    def running(self) -> int:
        return len(self._tasks)

    def spawn(self, work: Coroutine[Any, Any, None], *, name: str) -> bool:
        """Starts ``work`` unless shutdown has begun (then the coroutine is closed unstarted)."""
        if not self._accepting:
            work.close()
            return False
        task = asyncio.create_task(self._guarded(work, name), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    @staticmethod
    async def _guarded(work: Coroutine[Any, Any, None], name: str) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background task %s failed", name)

    async def drain(self, timeout: float) -> None:
        """Stops taking work, waits up to ``timeout`` for running tasks, then cancels what is left."""
        self._accepting = False
        pending = set(self._tasks)
        if pending:
            log.info(
                "taking no new work; waiting up to %.0f s for %d task(s) to finish", timeout, len(pending)
            )
            _, pending = await asyncio.wait(pending, timeout=timeout)
        for task in pending:
            log.warning("cancelling %s at shutdown", task.get_name())
            task.cancel()
        if pending:
            await asyncio.wait(pending)
