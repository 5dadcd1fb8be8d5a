"""The budget of DCS calls per second that all background polling of one cloud shares (a token bucket).

The tracker takes a token before every DCS call it makes — following the bot's own backups, checking
unknown outcomes, listing and polling the watched estate — so a big estate is polled more slowly instead
of hammering DCS. The user's commands never go through it: they never wait for a token.

When calls wait for tokens, a waiting call of a better :class:`Priority` goes first (the bot's own
backups before the watch), and calls of one priority go in the order they asked.

One budget serves one cloud: DCS limits calls per project and region, so each configured cloud (§8 of the
interface) gets a :class:`CallBudget` of its own (:class:`CloudBudgets`), and the tracker takes its tokens
from the budget of the instance's cloud. A busy cloud — thousands of followed backups, a big watched estate —
is polled more slowly, and never slows another cloud's polling.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import IntEnum

# What one cloud's background polling may spend when nothing else is configured: well below the API
# rate limits DCS documents per project, and 150 calls in each 15-second poll interval.
DEFAULT_CALLS_PER_SECOND = 10.0


# Rounding in the refill must not leave a caller sleeping for a token that is 1e-16 short.
_SLACK = 1e-9


class Priority(IntEnum):
    """Who gets the next token when calls wait for one; lower goes first."""

    FOLLOW = 0  # the bot's own backups: followed ones and unknown outcomes being checked
    WATCH = 1  # the watched estate: its instance list and its backup pages


@dataclass(order=True)
class _Waiter:
    priority: int
    seq: int
    wake: asyncio.Event = field(compare=False, default_factory=asyncio.Event)


class CallBudget:
    """At most ``rate`` calls per second on average, with bursts of up to ``burst`` calls (default: one
    second's worth) after a quiet spell.

    Time comes from ``monotonic`` (seconds, ``time.monotonic``: the budget paces real calls, whatever
    clock the rest of the bot is given); ``sleep`` waits that many seconds (``asyncio.sleep``). A test
    passes a fake clock's seconds and a sleep that moves that clock.
    """

    def __init__(
        self,
        rate: float = DEFAULT_CALLS_PER_SECOND,
        *,
        burst: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("a call budget needs a positive rate")
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate)
        self._monotonic = monotonic
        self._sleep = sleep
        self._tokens = self.burst
        self._stamp: float | None = None
        self._waiters: list[_Waiter] = []
        self._order = itertools.count()
        self.granted = 0

    async def acquire(self, priority: Priority = Priority.FOLLOW) -> None:
        """Returns once the caller may make one DCS call."""
        me = _Waiter(int(priority), next(self._order))
        heapq.heappush(self._waiters, me)
        try:
            while True:
                self._refill()
                if self._waiters[0] is me:
                    if self._tokens >= 1 - _SLACK:
                        self._tokens = max(0.0, self._tokens - 1)
                        self.granted += 1
                        return
                    await self._sleep((1 - self._tokens) / self.rate)
                else:
                    me.wake.clear()
                    await me.wake.wait()
        finally:
            self._leave(me)

    def _leave(self, me: _Waiter) -> None:
        if me in self._waiters:
            self._waiters.remove(me)
            heapq.heapify(self._waiters)
        if self._waiters:
            # The next in line sleeps for its token itself; it may have been waiting behind this one.
            self._waiters[0].wake.set()

    def _refill(self) -> None:
        now = self._monotonic()
        if self._stamp is not None:
            elapsed = max(0.0, now - self._stamp)
            self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._stamp = now


class CloudBudgets:
    """One :class:`CallBudget` per cloud, each with ``rate`` calls per second and ``burst`` (the same for
    every cloud), made the first time a cloud asks for its own; the clock and sleep are shared."""

    def __init__(
        self,
        rate: float = DEFAULT_CALLS_PER_SECOND,
        *,
        burst: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("a call budget needs a positive rate")
        self.rate = rate
        self._burst = burst
        self._monotonic = monotonic
        self._sleep = sleep
        self._budgets: dict[str, CallBudget] = {}

    def of(self, cloud: str) -> CallBudget:
        budget = self._budgets.get(cloud)
        if budget is None:
            budget = CallBudget(self.rate, burst=self._burst, monotonic=self._monotonic, sleep=self._sleep)
            self._budgets[cloud] = budget
        return budget

    @property
    def granted(self) -> dict[str, int]:
        """The tokens each cloud's budget has granted so far."""
        return {cloud: budget.granted for cloud, budget in self._budgets.items()}
