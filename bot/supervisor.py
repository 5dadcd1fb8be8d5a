"""Owns every background task, so none is garbage-collected mid-flight or orphaned at shutdown, and runs
the work after a command's ack through a bounded pool of workers (:class:`WorkerPool`)."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

Work = Callable[[], Coroutine[Any, Any, None]]


class Admission(enum.Enum):
    """What became of work offered to a :class:`WorkerPool`."""

    QUEUED = "queued"
    #: The queue stayed full for as long as the caller would wait: the work was not taken.
    FULL = "full"
    #: Shutdown has begun: the work was not taken.
    CLOSED = "closed"


class Supervisor:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._pools: list[WorkerPool] = []
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

    def pool(self, name: str, *, workers: int, capacity: int) -> WorkerPool:
        """A pool of ``workers`` tasks under this supervisor, taking work in arrival order from a queue
        of at most ``capacity`` waiting items; :meth:`drain` lets it finish its queue."""
        pool = WorkerPool(self, name, workers=workers, capacity=capacity)
        self._pools.append(pool)
        return pool

    @staticmethod
    async def _guarded(work: Coroutine[Any, Any, None], name: str) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background task %s failed", name)

    async def drain(self, timeout: float) -> None:
        """Stops taking work, waits up to ``timeout`` for running tasks and the pools' queued work, then
        cancels what is left."""
        self._accepting = False
        queued = 0
        for pool in self._pools:
            queued += pool.queued
            pool.close()
        pending = set(self._tasks)
        if pending:
            log.info(
                "taking no new work; waiting up to %.0f s for %d task(s) and %d queued item(s) to finish",
                timeout,
                len(pending),
                queued,
            )
            _, pending = await asyncio.wait(pending, timeout=timeout)
        for task in pending:
            log.warning("cancelling %s at shutdown", task.get_name())
            task.cancel()
        if pending:
            await asyncio.wait(pending)


@dataclass(frozen=True)
class _Item:
    work: Work
    name: str


class WorkerPool:
    """A bounded queue and a fixed number of workers: the work runs in the order it was offered, at most
    ``workers`` at a time, and no more than ``capacity`` items wait. The workers start with the first
    offer; at shutdown they finish what is queued (within the supervisor's drain timeout) and stop."""

    def __init__(self, supervisor: Supervisor, name: str, *, workers: int, capacity: int) -> None:
        if workers < 1 or capacity < 1:
            raise ValueError("a worker pool needs at least one worker and room for one item")
        self._supervisor = supervisor
        self._name = name
        self._workers = workers
        self._queue: asyncio.Queue[_Item | None] = asyncio.Queue()
        # One slot per waiting item: taken on admission, given back when a worker picks the item up.
        self._slots = asyncio.Semaphore(capacity)
        self._started = False
        self._closed = False
        self._stops = 0  # the workers' stop marks in the queue

    @property
    def queued(self) -> int:
        """Items waiting for a worker."""
        return self._queue.qsize() - self._stops

    async def offer(self, work: Work, *, name: str, wait: float = 0.0) -> Admission:
        """Queues ``work`` (a coroutine function, called by a worker), waiting at most ``wait`` seconds
        for room. Returns at once, without giving way to other tasks, when there is room."""
        if self._closed or not self._supervisor.accepting:
            return Admission.CLOSED
        if self._slots.locked():
            if wait <= 0:
                return Admission.FULL
            try:
                async with asyncio.timeout(wait):
                    await self._slots.acquire()
            except TimeoutError:
                return Admission.FULL
            if self._closed:
                self._slots.release()
                return Admission.CLOSED
        else:
            await self._slots.acquire()  # does not suspend: a slot is free
        self._start()
        self._queue.put_nowait(_Item(work, name))
        return Admission.QUEUED

    def close(self) -> None:
        """Takes no more work; the workers stop once the queue ahead of them is done."""
        if self._closed:
            return
        self._closed = True
        if self._started:
            for _ in range(self._workers):
                self._queue.put_nowait(None)
            self._stops = self._workers

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        for number in range(self._workers):
            self._supervisor.spawn(self._work(), name=f"{self._name} worker {number + 1}")

    async def _work(self) -> None:
        while True:
            item = await self._queue.get()
            if item is None:
                self._stops -= 1
                return
            self._slots.release()
            try:
                await item.work()
            except Exception:
                log.exception("background task %s failed", item.name)
