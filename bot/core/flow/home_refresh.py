"""Keeps the Home tabs people look at current (:class:`HomeRefresh`), within Slack's rate limits, whichever
replica they opened their tab through and whichever replica makes the change.

A Home tab is published when its person opens it (``app_home_opened``) and again when what it shows
changes for them: a request they made or may approve is added or changes state, a backup of an instance
it shows starts or ends (the store tells the replica making the change, through
:class:`~bot.core.ports.RequestObserver`; nothing is polled), or a click they made on the tab was answered.

Who is looking is shared by the replicas (:class:`~bot.core.ports.HomeViewers`): the replica that receives
``app_home_opened`` records the person, with what each publish then showed them (their user groups and
the instances on the tab), and the replica making a change matches it against the people who opened their
tab within :data:`VIEWER_TTL` (the latest :data:`VIEWERS`). That look-up is batched: the changes of a
burst are matched against one read, at most one read every :data:`LOOKUP_EVERY` seconds, and each change
against a read begun after it was made — so someone whose opening was recorded after the read has their
first publish gathered after the change, and sees it there.

``views.publish`` is Tier 4 (about 100 calls a minute per workspace): the publishes of one person are
coalesced to at most one every :data:`MIN_INTERVAL` seconds — what changes meanwhile is shown by the next
one — and all publishes of a replica share a budget of :data:`PUBLISH_RATE` a second. Across replicas, a
publish is taken in the shared record first (:meth:`~bot.core.ports.HomeViewers.claim_publish`): when
another replica took one within the interval, this one waits an interval and tries again; refused again,
with no change for that person in between, it is dropped, since the publish that replica took after the
first try gathers this replica's change too. Should the shared record fail, tabs are still published (the
replicas then may publish the same tab once each).

What stays in each replica's memory: the answers to Home-tab clicks it took (shown only by its own
publishes of that tab), and what its last publish of a tab showed (besides the shared record's). A replica
that never saw a person builds their whole tab from the store and the DCS cache like any other.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bot.core.flow.call_budget import CallBudget
from bot.core.flow.home import HomeContent
from bot.core.ports import Clock, HomePublisher, HomeViewer, HomeViewers
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
#: People whose Home tabs are kept current at most (the latest to open theirs).
VIEWERS = 500
#: Seconds between two reads of who is looking, while changes keep coming.
LOOKUP_EVERY = 1.0
#: How often those who opened their tab longer than VIEWER_TTL ago are deleted from the shared record.
PRUNE_EVERY = timedelta(minutes=10)
#: Answers to Home-tab clicks shown at the top of the tab: at most this many, for this long.
NOTES_KEPT = 3
NOTE_TTL = timedelta(minutes=10)

# Beyond the interval before trying again: a timer may fire a little early, and SQLite's clock counts
# whole milliseconds, yet the refusal after must mean a publish taken after the try before it.
_RETRY_MARGIN = 0.05

Spawn = Callable[[Coroutine[Any, Any, None], str], bool]


@dataclass
class _Tab:
    """This replica's part of one person's Home tab."""

    used_at: float
    #: When the person opened their tab (or clicked on it) through this replica, if they did.
    opened_here: float | None = None
    #: What this replica's last publish showed: the instances on it, and the person's user groups then.
    shown: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    published_at: float | None = None
    pending: bool = False
    #: Changes for this person so far (a publish that waits for another replica's tells by it whether
    #: anything came meanwhile).
    changes: int = 0
    notes: list[HomeNote] = field(default_factory=list)


class HomeRefresh:
    """Publishes Home tabs; a :class:`~bot.core.ports.RequestObserver` and a
    :class:`~bot.core.ports.HomeAnswers`. ``viewers`` is who is looking, shared by the replicas.
    ``spawn(work, name)`` runs a publish in the background (False: the bot is shutting down).
    ``monotonic`` and ``sleep`` pace the publishes and the look-ups (tests pass fakes)."""

    def __init__(
        self,
        content: HomeContent,
        publisher: HomePublisher,
        spawn: Spawn,
        clock: Clock,
        viewers: HomeViewers,
        *,
        min_interval: float = MIN_INTERVAL,
        budget: CallBudget | None = None,
        capacity: int = VIEWERS,
        viewer_ttl: timedelta = VIEWER_TTL,
        lookup_every: float = LOOKUP_EVERY,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._content = content
        self._publisher = publisher
        self._spawn = spawn
        self._clock = clock
        self._viewers = viewers
        self._min_interval = min_interval
        self._budget = budget or CallBudget(
            PUBLISH_RATE, burst=PUBLISH_BURST, monotonic=monotonic, sleep=sleep
        )
        self._capacity = capacity
        self._viewer_ttl = viewer_ttl
        self._lookup_every = lookup_every
        self._monotonic = monotonic
        self._sleep = sleep
        self._tabs: OrderedDict[str, _Tab] = OrderedDict()
        self._changes: list[BackupRequest] = []
        self._matching = False
        self._looked_at = float("-inf")
        self._pruned_at = float("-inf")
        self._stopped = asyncio.Event()

    def stop(self) -> None:
        """At shutdown: publishes waiting for their person's interval are dropped, so they do not hold
        the drain up, and none is scheduled any more."""
        self._stopped.set()

    def opened(self, user_id: str) -> None:
        """``user_id`` opened their Home tab: it is recorded for every replica, then published (now,
        unless it was a moment ago)."""
        tab = self._tab(user_id)
        tab.opened_here = self._monotonic()
        if not self._stopped.is_set():
            self._spawn(self._open(user_id), f"opening of the home tab of {user_id}")

    def changed(self, request: BackupRequest) -> None:
        self._content.saw(request)
        if self._stopped.is_set():
            return
        self._changes.append(request)
        if not self._matching:
            self._matching = self._spawn(self._match(), "home tabs a change concerns")

    def answer(self, user_id: str, reply: Reply) -> None:
        tab = self._tab(user_id)
        tab.opened_here = self._monotonic()
        tab.notes = [HomeNote(self._clock.now(), reply), *tab.notes][:NOTES_KEPT]
        self._schedule(user_id)

    # --- who is looking -------------------------------------------------------------------------------

    async def _open(self, user_id: str) -> None:
        now = self._clock.now()
        try:
            await self._viewers.opened(user_id, now)
        except Exception as error:  # still published; other replicas will not know of this tab
            log.warning("could not record the opening of %s's Home tab: %s", user_id, _why(error))
        await self._prune()
        self._schedule(user_id)

    async def _prune(self) -> None:
        if self._monotonic() - self._pruned_at < PRUNE_EVERY.total_seconds():
            return
        self._pruned_at = self._monotonic()
        try:
            await self._viewers.prune(self._clock.now() - self._viewer_ttl)
        except Exception as error:  # the next opening after PRUNE_EVERY tries again
            log.warning("could not forget the Home tabs opened long ago: %s", _why(error))

    async def _match(self) -> None:
        """Matches the changes made since the last read against who is looking, one read for all."""
        try:
            while self._changes and not self._stopped.is_set():
                wait = self._looked_at + self._lookup_every - self._monotonic()
                if wait > 0 and not await self._paused(wait):
                    return
                # Taken before the read begins: a change made during it waits for the next read.
                changes, self._changes = self._changes, []
                self._looked_at = self._monotonic()
                for user_id in await self._concerned(changes):
                    self._schedule(user_id)
        finally:
            self._matching = False

    async def _concerned(self, changes: Iterable[BackupRequest]) -> list[str]:
        try:
            viewers = await self._viewers.viewing(self._clock.now() - self._viewer_ttl, limit=self._capacity)
        except Exception as error:  # this replica's own viewers are still kept current
            log.warning("could not read who is looking at their Home tab: %s", _why(error))
            viewers = []
        horizon = self._monotonic() - self._viewer_ttl.total_seconds()
        by_user = {viewer.user_id: viewer for viewer in viewers}
        for user_id, here in self._tabs.items():
            if user_id not in by_user and here.opened_here is not None and here.opened_here >= horizon:
                by_user[user_id] = HomeViewer(user_id)
        concerned = []
        for user_id, viewer in by_user.items():
            known = self._tabs.get(user_id)
            groups = viewer.groups | (known.groups if known else frozenset())
            shown = viewer.shown | (known.shown if known else frozenset())
            if any(concerns(request, user_id, groups, shown) for request in changes):
                concerned.append(user_id)
        return concerned

    # --- publishing -----------------------------------------------------------------------------------

    def _tab(self, user_id: str) -> _Tab:
        """This replica's record of the person's tab; the least recently used are forgotten first."""
        now = self._monotonic()
        horizon = now - self._viewer_ttl.total_seconds()
        while self._tabs:
            oldest = next(iter(self._tabs.values()))
            if oldest.used_at >= horizon and len(self._tabs) < self._capacity:
                break
            self._tabs.popitem(last=False)
        tab = self._tabs.pop(user_id, None) or _Tab(used_at=now)
        tab.used_at = now
        self._tabs[user_id] = tab
        return tab

    def _schedule(self, user_id: str) -> None:
        """Publishes the person's tab once their interval has passed, unless a publish is already due:
        that one will show this change too."""
        tab = self._tab(user_id)
        tab.changes += 1
        if tab.pending or self._stopped.is_set():
            return
        tab.pending = True
        delay = 0.0
        if tab.published_at is not None:
            delay = max(0.0, tab.published_at + self._min_interval - self._monotonic())
        if not self._spawn(self._publish(user_id, tab, delay), f"home tab of {user_id}"):
            tab.pending = False

    async def _publish(self, user_id: str, tab: _Tab, delay: float) -> None:
        if delay > 0 and not await self._paused(delay):
            return
        await self._budget.acquire()
        if not await self._take(user_id, tab):
            tab.pending = False
            return
        # From here on a change is shown by the next publish, not this one.
        tab.pending = False
        tab.published_at = self._monotonic()
        now = self._clock.now()
        tab.notes = [note for note in tab.notes if now - note.at < NOTE_TTL]
        try:
            snapshot = await self._content.snapshot(user_id, tab.notes)
        except Exception as error:  # the store's or an adapter's surprise: this tab stays as it was
            log.warning("could not gather the Home tab of %s: %s", user_id, _why(error))
            return
        tab.shown = snapshot.shown_instance_ids
        tab.groups = snapshot.groups
        if not await self._publisher.publish(user_id, snapshot):
            log.info("Slack did not take the Home tab of %s", user_id)
        try:
            await self._viewers.showed(user_id, snapshot.groups, snapshot.shown_instance_ids)
        except Exception as error:  # other replicas go on matching by what they knew
            log.warning("could not record what %s's Home tab shows: %s", user_id, _why(error))

    async def _take(self, user_id: str, tab: _Tab) -> bool:
        """Whether this replica publishes the tab now (see the module's doc): tried again an interval
        later while another replica took a publish a moment ago, dropped once a try is refused with no
        change for the person since the try before it."""
        previous: int | None = None
        while True:
            before = tab.changes
            try:
                if await self._viewers.claim_publish(user_id, self._min_interval, self._clock.now()):
                    return True
            except Exception as error:  # published all the same: at worst once more than needed
                log.warning("could not take the publish of %s's Home tab: %s", user_id, _why(error))
                return True
            if previous is not None and tab.changes == previous:
                return False
            previous = before
            if not await self._paused(self._min_interval + _RETRY_MARGIN):
                return False

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


def _why(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"
