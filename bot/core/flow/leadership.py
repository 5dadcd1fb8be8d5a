"""Which replica does the background work (INTERFACE §9): the holder of the lease.

Exactly one replica at a time follows backups, watches the estate, expires cards and reconciles
submissions whose owner is gone. Every replica tries for the lease every ``ttl / 2`` seconds, or every poll
interval when that is shorter: the leader renews it, a standby takes it once it is free or has expired — so
a standby takes over within ``ttl`` plus one poll interval after the leader died. A leader whose renewal
fails, or finds another holder, stops its work at once: the work's tasks are cancelled, which is safe
because all of it is crash-safe already (everything it must remember is in the database, and a notice goes
out before the state that records it). A clean shutdown lets the work finish its step, then releases the
lease, so a standby takes over on its next try.

Fencing: a leader paused for longer than the ttl (a stopped process, a stalled VM) can wake up in the
middle of a step after another replica took over. So every post of the background work goes through
:class:`FencedNotifier`, which asks the database — right before the post — whether this replica still
holds the lease under its term's epoch, unexpired. When it does not, the work ends there
(:class:`LeaseLost`), having posted nothing. A lease that merely ran out while nobody took it (a late
renewal) is taken back under the same epoch, and the post goes ahead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from bot.core.ports import Delivered, Lease, Notifier, UpdateResult
from bot.core.rules.messages import Notice, Reply

log = logging.getLogger(__name__)

Role = Literal["leader", "standby"]

#: The background work of one term: named coroutines that run until the event is set.
TermWork = Callable[[asyncio.Event], Iterable[tuple[str, Coroutine[Any, Any, None]]]]


class LeaseLost(asyncio.CancelledError):
    """The lease of the term this work belongs to is gone: the work stops where it is, as if cancelled
    (it passes through the work's ``except Exception`` handlers, which must not go on after it)."""


@dataclass
class _Term:
    epoch: int
    stop: asyncio.Event
    tasks: list[asyncio.Task[None]]


class Leadership:
    def __init__(
        self,
        lease: Lease,
        *,
        ttl: float,
        work: TermWork,
        on_role: Callable[[Role], None] | None = None,
        at_least_every: float | None = None,
    ) -> None:
        """``work`` starts the background work of a term; ``on_role`` hears every change of role. The lease
        is tried every ``ttl / 2`` seconds, or every ``at_least_every`` (the poll interval) if shorter."""
        self._lease = lease
        self._every = ttl / 2 if at_least_every is None else min(ttl / 2, at_least_every)
        self._work = work
        self._on_role = on_role
        self._term: _Term | None = None
        self._trouble: str | None = None

    @property
    def role(self) -> Role:
        return "standby" if self._term is None else "leader"

    @property
    def epoch(self) -> int | None:
        """The epoch of the lease this replica leads under; None on a standby."""
        return None if self._term is None else self._term.epoch

    async def start(self) -> None:
        """The first try for the lease (before the bot serves, so its role is known from the start)."""
        await self.try_once()
        if self._term is None:
            self._announce_role("another replica holds the lease" if self._trouble is None else self._trouble)

    async def run(self, stop: asyncio.Event) -> None:
        """Tries for the lease every ``ttl / 2`` seconds (or sooner, see above) until ``stop`` is set; then
        lets the work finish its step and releases the lease."""
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self._every)
                if not stop.is_set():
                    await self.try_once()
        finally:
            await self._hand_over()

    async def try_once(self) -> None:
        """Takes or renews the lease; starts the work on becoming leader, stops it on losing the lease."""
        try:
            epoch = await self._lease.acquire()
        except Exception as error:
            text = f"{type(error).__name__}: {error}"
            if self._term is not None:
                await self._stand_down(f"the lease could not be renewed ({text})")
            elif self._trouble != text:
                log.warning("could not try for the lease of the background work (%s); trying again", text)
            self._trouble = text
            return
        self._trouble = None
        term = self._term
        if term is not None and epoch == term.epoch:
            return
        if term is not None:
            reason = (
                "another replica holds the lease" if epoch is None else "another replica held it meanwhile"
            )
            await self._stand_down(reason)
        if epoch is not None:
            self._begin(epoch)

    async def check(self) -> None:
        """The fence: returns when this replica still holds the lease of the running term, unexpired;
        otherwise ends the term and raises :class:`LeaseLost`. A database error passes through (nothing is
        posted; the work tries again on its next cycle)."""
        term = self._term
        if term is None:
            raise LeaseLost("this replica does not lead the background work")
        if await self._lease.holds(term.epoch) or await self._renewed(term):
            return
        if self._term is term:
            self._term = None
            term.stop.set()
            current = asyncio.current_task()
            for task in term.tasks:
                if task is not current:
                    task.cancel()
            self._announce_role(f"the lease (epoch {term.epoch}) was lost before a post")
        raise LeaseLost("the lease of the background work was lost")

    async def _renewed(self, term: _Term) -> bool:
        """Whether a lease that merely ran out (a renewal came late) is this term's again: taken back under
        the same epoch, nobody else held it in between."""
        return await self._lease.acquire() == term.epoch

    def _begin(self, epoch: int) -> None:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(_guarded(work, name), name=name) for name, work in self._work(stop)]
        self._term = _Term(epoch, stop, tasks)
        self._announce_role(f"lease epoch {epoch}")

    async def _stand_down(self, reason: str) -> None:
        """Stops the work at once: its tasks are cancelled."""
        term = self._term
        if term is None:
            return
        self._term = None
        term.stop.set()
        for task in term.tasks:
            task.cancel()
        if term.tasks:
            await asyncio.wait(term.tasks)
        self._announce_role(reason)

    async def _hand_over(self) -> None:
        """At shutdown: the work finishes its step (cancelled if the shutdown runs out of time), then the
        lease is released."""
        term = self._term
        if term is None:
            return
        term.stop.set()
        try:
            if term.tasks:
                await asyncio.wait(term.tasks)
        finally:
            for task in term.tasks:
                task.cancel()
            self._term = None
            try:
                await self._lease.release(term.epoch)
            except Exception as error:
                log.warning("could not release the lease of the background work: %s", error)
            else:
                log.info("released the lease of the background work (epoch %d)", term.epoch)
            self._announce_role("shutting down")

    def _announce_role(self, why: str) -> None:
        if self._term is not None:
            log.info("this replica (%s) leads the background work now (%s)", self._lease.holder, why)
        else:
            log.info("this replica (%s) stands by: %s", self._lease.holder, why)
        if self._on_role is not None:
            self._on_role(self.role)


async def _guarded(work: Coroutine[Any, Any, None], name: str) -> None:
    try:
        await work
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("background task %s failed", name)


class FencedNotifier:
    """The notifier of the background work: each post first checks the lease (:meth:`Leadership.check`)."""

    def __init__(self, inner: Notifier, leadership: Leadership) -> None:
        self._inner = inner
        self._leadership = leadership

    async def reply(self, response_url: str, reply: Reply, *, replace_original: bool = False) -> bool:
        await self._leadership.check()
        return await self._inner.reply(response_url, reply, replace_original=replace_original)

    async def announce(
        self,
        channel_id: str,
        notice: Notice,
        *,
        thread_ts: str | None = None,
        fallback_response_url: str | None = None,
        broadcast: bool = False,
    ) -> Delivered | None:
        await self._leadership.check()
        return await self._inner.announce(
            channel_id,
            notice,
            thread_ts=thread_ts,
            fallback_response_url=fallback_response_url,
            broadcast=broadcast,
        )

    async def update_message(self, channel_id: str, ts: str, content: Notice | Reply) -> UpdateResult:
        await self._leadership.check()
        return await self._inner.update_message(channel_id, ts, content)
