"""Keeps the Home tabs people look at current (:class:`HomeRefresh`), within Slack's rate limits.

A Home tab is published when its person opens it (``app_home_opened``) and again when what it shows
changes for them: a request they made or may approve is added or changes state, a backup of an instance
it shows starts or ends (the store tells, through :class:`~bot.core.ports.RequestObserver`; nothing is
polled), or a click they made on the tab was answered. Only the tabs of people who opened theirs within
:data:`VIEWER_TTL` are kept current, at most :data:`VIEWERS` of them (who opened theirs longest ago is
forgotten first).

``views.publish`` is Tier 4 (about 100 calls a minute per workspace): the publishes of one person are
coalesced to at most one every :data:`MIN_INTERVAL` seconds — what changes meanwhile is shown by the next
one — and all publishes share a budget of :data:`PUBLISH_RATE` a second.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bot.core.flow.call_budget import CallBudget
from bot.core.flow.home import HomeContent
from bot.core.ports import Clock, HomePublisher
from bot.core.rules.backup_request import BackupRequest
from bot.core.rules.home import HomeNote, concerns
from bot.core.rules.messages import Reply

log = logging.getLogger(__name__)

#: Seconds between two publishes of one person's Home tab at least.
MIN_INTERVAL = 5.0
#: Publishes a second over all people (Slack allows about 100 a minute), and the burst after a quiet spell.
PUBLISH_RATE = 1.2
PUBLISH_BURST = 10.0
#: How long after opening their Home tab a person's tab is kept current.
VIEWER_TTL = timedelta(minutes=30)
#: People whose Home tabs are kept current at most.
VIEWERS = 500
#: Answers to Home-tab clicks shown at the top of the tab: at most this many, for this long.
NOTES_KEPT = 3
NOTE_TTL = timedelta(minutes=10)

Spawn = Callable[[Coroutine[Any, Any, None], str], bool]


@dataclass
class _Viewer:
    opened_at: float
    #: What the last publish showed: the instances on it, and the person's user groups then.
    shown: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    published_at: float | None = None
    pending: bool = False
    notes: list[HomeNote] = field(default_factory=list)


class HomeRefresh:
    """Publishes Home tabs; a :class:`~bot.core.ports.RequestObserver` and a
    :class:`~bot.core.ports.HomeAnswers`. ``spawn(work, name)`` runs a publish in the background (False:
    the bot is shutting down). ``monotonic`` and ``sleep`` pace the publishes (tests pass fakes)."""

    def __init__(
        self,
        content: HomeContent,
        publisher: HomePublisher,
        spawn: Spawn,
        clock: Clock,
        *,
        min_interval: float = MIN_INTERVAL,
        budget: CallBudget | None = None,
        viewers: int = VIEWERS,
        viewer_ttl: timedelta = VIEWER_TTL,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._content = content
        self._publisher = publisher
        self._spawn = spawn
        self._clock = clock
        self._min_interval = min_interval
        self._budget = budget or CallBudget(
            PUBLISH_RATE, burst=PUBLISH_BURST, monotonic=monotonic, sleep=sleep
        )
        self._capacity = viewers
        self._viewer_ttl = viewer_ttl.total_seconds()
        self._monotonic = monotonic
        self._sleep = sleep
        self._viewers: OrderedDict[str, _Viewer] = OrderedDict()
        self._stopped = asyncio.Event()

    def stop(self) -> None:
        """At shutdown: publishes waiting for their person's interval are dropped, so they do not hold
        the drain up, and none is scheduled any more."""
        self._stopped.set()

    @property
    def viewers(self) -> int:
        """People whose Home tabs are being kept current."""
        self._forget_old()
        return len(self._viewers)

    def opened(self, user_id: str) -> None:
        """``user_id`` opened their Home tab: it is published (now, unless it was a moment ago)."""
        self._schedule(self._viewer(user_id, opened=True))

    def changed(self, request: BackupRequest) -> None:
        self._content.saw(request)
        self._forget_old()
        for user_id, viewer in self._viewers.items():
            if concerns(request, user_id, viewer.groups, viewer.shown):
                self._schedule((user_id, viewer))

    def answer(self, user_id: str, reply: Reply) -> None:
        user_id, viewer = self._viewer(user_id, opened=False)
        viewer.notes = [HomeNote(self._clock.now(), reply), *viewer.notes][:NOTES_KEPT]
        self._schedule((user_id, viewer))

    # --- scheduling ---------------------------------------------------------------------------------

    def _viewer(self, user_id: str, *, opened: bool) -> tuple[str, _Viewer]:
        """The person's record; one who clicks on their Home tab is looking at it, known or not."""
        self._forget_old()
        viewer = self._viewers.get(user_id)
        if viewer is None:
            viewer = _Viewer(opened_at=self._monotonic())
            self._viewers[user_id] = viewer
            while len(self._viewers) > self._capacity:
                self._viewers.popitem(last=False)
        elif opened:
            viewer.opened_at = self._monotonic()
            self._viewers.move_to_end(user_id)
        return user_id, viewer

    def _forget_old(self) -> None:
        horizon = self._monotonic() - self._viewer_ttl
        while self._viewers:
            oldest = next(iter(self._viewers.values()))
            if oldest.opened_at >= horizon:
                return
            self._viewers.popitem(last=False)

    def _schedule(self, entry: tuple[str, _Viewer]) -> None:
        """Publishes the person's tab once their interval has passed, unless a publish is already due:
        that one will show this change too."""
        user_id, viewer = entry
        if viewer.pending or self._stopped.is_set():
            return
        viewer.pending = True
        delay = 0.0
        if viewer.published_at is not None:
            delay = max(0.0, viewer.published_at + self._min_interval - self._monotonic())
        if not self._spawn(self._publish(user_id, viewer, delay), f"home tab of {user_id}"):
            viewer.pending = False

    async def _publish(self, user_id: str, viewer: _Viewer, delay: float) -> None:
        if delay > 0 and not await self._paused(delay):
            return
        await self._budget.acquire()
        # From here on a change is shown by the next publish, not this one.
        viewer.pending = False
        viewer.published_at = self._monotonic()
        now = self._clock.now()
        viewer.notes = [note for note in viewer.notes if now - note.at < NOTE_TTL]
        try:
            snapshot = await self._content.snapshot(user_id, viewer.notes)
        except Exception as error:  # the store's or an adapter's surprise: this tab stays as it was
            log.warning("could not gather the Home tab of %s: %s: %s", user_id, type(error).__name__, error)
            return
        viewer.shown = snapshot.shown_instance_ids
        viewer.groups = snapshot.groups
        if not await self._publisher.publish(user_id, snapshot):
            log.info("Slack did not take the Home tab of %s", user_id)

    async def _paused(self, delay: float) -> bool:
        """Waits ``delay`` seconds; False when the refresher was stopped meanwhile."""
        stopped = asyncio.ensure_future(self._stopped.wait())
        nap = asyncio.ensure_future(self._sleep(delay))
        try:
            await asyncio.wait({stopped, nap}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            nap.cancel()
        return not self._stopped.is_set()
