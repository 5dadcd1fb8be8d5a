"""The backup workflow's entry points, for the Slack adapter and the wiring: answering commands,
handling clicks, and settling requests a crash interrupted.

Everything behind them talks to the outside world only through the protocols of :mod:`bot.core.ports`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from bot.core.flow.backup_form import BackupForm
from bot.core.flow.clicks import ClickHandler
from bot.core.flow.command_answers import CommandAnswers
from bot.core.flow.context import ServiceOptions, Workflow
from bot.core.flow.fresh_cards import FreshCards
from bot.core.flow.inputs import Click, Invocation
from bot.core.flow.instance_cache import Estates
from bot.core.flow.notices import NOTICE_BUDGET, Deliveries
from bot.core.flow.recovery import Recovery
from bot.core.flow.submission import Submission
from bot.core.ports import (
    AuditLog,
    Clock,
    CloudMap,
    DcsApi,
    DcsClouds,
    GroupDirectory,
    HomeAnswers,
    NoHomeTab,
    Notifier,
    RequestStore,
    SubmissionClaims,
)
from bot.core.rules.grammar import Command
from bot.core.rules.messages import Reply
from bot.core.rules.policy import Policy


class BackupService:
    def __init__(
        self,
        *,
        dcs: DcsApi | None = None,
        clouds: DcsClouds | None = None,
        requests: RequestStore,
        audit: AuditLog,
        groups: GroupDirectory,
        notifier: Notifier,
        policy: Callable[[], Policy],
        clock: Clock,
        options: ServiceOptions,
        checking_window: timedelta = timedelta(minutes=5),
        notice_budget: timedelta = NOTICE_BUDGET,
        home: HomeAnswers | None = None,
        background_notifier: Notifier | None = None,
        estates: Estates | None = None,
    ) -> None:
        """``home`` shows the answers to clicks made on a Home tab (none: no Home tab is served);
        ``estates``: the clouds' instance lists, shared with the Home tab (none: the form's own).
        ``checking_window``: how long after a lost answer the bot looks for the backup (see
        :func:`bot.core.rules.reconciliation.checking_window`); ``notice_budget``: how long a notice Slack
        refuses is tried again. The DCS is ``clouds``, or the one cloud ``dcs`` (named ``default``).
        ``background_notifier`` (default: ``notifier``) posts what the background work finds — settling
        interrupted submissions and checking — e.g. one fenced by the lease
        (:class:`bot.core.flow.leadership.FencedNotifier`)."""
        if clouds is None:
            if dcs is None:
                raise TypeError("BackupService needs clouds or dcs")
            clouds = CloudMap.single(dcs)
        workflow = Workflow(
            clouds, requests, audit, groups, notifier, policy, clock, options, home or NoHomeTab()
        )
        deliveries = Deliveries(notifier, requests, audit, clock, notice_budget)
        self._answers = CommandAnswers(workflow)
        self._submission = Submission(workflow, deliveries, checking_window)
        self._clicks = ClickHandler(workflow, self._submission)
        if background_notifier is not None:
            deliveries = Deliveries(background_notifier, requests, audit, clock, notice_budget)
            self._recovery = Recovery(workflow, Submission(workflow, deliveries, checking_window), deliveries)
        else:
            self._recovery = Recovery(workflow, self._submission, deliveries)
        self._form = BackupForm(workflow, estates=estates)
        self._fresh = FreshCards(workflow, self._answers)

    @property
    def form(self) -> BackupForm:
        """The backup form's options and the check of a submitted one (INTERFACE §11)."""
        return self._form

    async def handle(self, command: Command, invocation: Invocation) -> Reply:
        return await self._answers.handle(command, invocation)

    async def confirm(self, click: Click) -> None:
        await self._clicks.confirm(click)

    async def cancel(self, click: Click) -> None:
        await self._clicks.cancel(click)

    async def approve(self, click: Click) -> None:
        await self._clicks.approve(click)

    async def reject(self, click: Click) -> None:
        await self._clicks.reject(click)

    async def retry(self, click: Click) -> None:
        """``backup_retry``: a fresh card for the clicker, from a request that failed, was refused or
        expired."""
        await self._fresh.again(click, replace_original=False)

    async def run(self, click: Click) -> None:
        """``backup_run``: the real confirmation card of a dry run, in its place."""
        await self._fresh.again(click, replace_original=True)

    async def pick(self, click: Click) -> None:
        """``backup_pick``: the card for the instance picked from suggestions."""
        await self._fresh.pick(click)

    async def settle_orphans(self, claims: SubmissionClaims, every: float, stop: asyncio.Event) -> None:
        """On the leader: settles, every ``every`` seconds, the submissions whose owner is gone."""
        await self._recovery.settle_orphans(claims, every, stop)

    async def settle_orphaned(self, claims: SubmissionClaims) -> list[str]:
        """One look for submissions whose owner is gone, settling them; their ids."""
        return await self._recovery.settle_orphaned(claims)

    @property
    def reconciler(self) -> Recovery:
        """Looks for the backups of requests in ``checking``; the tracker drives it every cycle."""
        return self._recovery
