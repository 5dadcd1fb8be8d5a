"""Prometheus metrics. Most are derived from the audit stream, so that every counted event is also an
audited one and the two can never disagree.

No label value is taken from outside as it is: each comes from a fixed set (Slack methods, DCS operations,
commands, actions), or is the bot's own word for an outcome and must look like one (a short lower-case
identifier). Anything else is counted as ``other``, so no token, secret or part of a URL can reach
``/metrics``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Collection
from typing import Any, get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot.core.ports import AuditLog
from bot.core.rules.audit import AuditEntry, AuditKind
from bot.core.rules.grammar import Command
from bot.core.rules.policy import Action

OTHER = "other"
RESPONSE_URL = "response_url"
#: The Slack Web API methods the bot calls; a call of any other is counted as ``other``.
SLACK_METHODS = frozenset(
    {
        "apps.connections.open",
        "auth.test",
        "chat.postEphemeral",
        "chat.postMessage",
        "chat.update",
        "usergroups.list",
        "usergroups.users.list",
        "views.publish",
    }
)
DCS_OPERATIONS = frozenset({"show_instance", "list_instances", "list_backups", "create_backup"})
DCS_RETRY_REASONS = frozenset({"rate_limited", "server_error", "no_answer"})
_COMMANDS = frozenset({kind.__name__ for kind in get_args(Command)} | {"invalid"})
_ACTIONS = frozenset(str(action) for action in Action)
# The bot's own words for outcomes and Slack's error names look like this; tokens, URLs and free text do not.
_WORD = re.compile(r"[a-z][a-z0-9_]{0,39}")

_CLICK_OUTCOMES = {
    AuditKind.CONFIRMED: "confirmed",
    AuditKind.CANCELLED: "cancelled",
    AuditKind.EXPIRED: "expired",
    AuditKind.CLICK_REFUSED: "refused",
    AuditKind.APPROVAL_REQUESTED: "awaiting_approval",
    AuditKind.APPROVED: "approved",
    AuditKind.REJECTED: "rejected",
}


#: The cloud of a bot configured with the ``DCS_*`` settings and no ``DCS_CLOUD_NAME``.
DEFAULT_CLOUD = "default"


class Metrics:
    """``clouds`` are the configured cloud names, the only values of the DCS metrics' ``cloud`` label."""

    def __init__(self, clouds: Collection[str] = (DEFAULT_CLOUD,)) -> None:
        self._clouds = frozenset(clouds)
        # A registry per bot keeps several bots in one process (tests, the demo) from colliding.
        self.registry = CollectorRegistry()
        r = self.registry
        self.commands = Counter(
            "dcs_bot_commands", "Slash commands by command and outcome", ["command", "outcome"], registry=r
        )
        self.decisions = Counter(
            "dcs_bot_policy_decisions",
            "Policy decisions by action and outcome",
            ["action", "outcome"],
            registry=r,
        )
        self.clicks = Counter("dcs_bot_clicks", "Button clicks on cards by outcome", ["outcome"], registry=r)
        self.submissions = Counter(
            "dcs_bot_backup_submissions",
            "CreateBackup results (accepted or refused by DCS), by cloud",
            ["cloud", "outcome"],
            registry=r,
        )
        self.backups = Counter(
            "dcs_bot_backups_finished",
            "Backups started through the bot, by cloud and final status",
            ["cloud", "status"],
            registry=r,
        )
        self.watch_notices = Counter(
            "dcs_bot_watch_notices",
            "Notices posted for watched instances, by cloud",
            ["cloud", "kind"],
            registry=r,
        )
        self.dcs_calls = Counter(
            "dcs_bot_dcs_calls",
            "DCS API calls by cloud, endpoint and HTTP status (0: no answer)",
            ["cloud", "endpoint", "status"],
            registry=r,
        )
        self.dcs_retries = Counter(
            "dcs_bot_dcs_retries",
            "DCS reads tried again, by cloud, endpoint and reason (rate_limited, server_error, no_answer)",
            ["cloud", "endpoint", "reason"],
            registry=r,
        )
        self.dcs_latency = Histogram(
            "dcs_bot_dcs_call_seconds",
            "DCS API call latency by cloud and endpoint",
            ["cloud", "endpoint"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.slack_errors = Counter(
            "dcs_bot_slack_api_errors",
            "Slack Web API errors by method and error",
            ["method", "error"],
            registry=r,
        )
        self.slack_rate_limited = Counter(
            "dcs_bot_slack_rate_limited", "Slack Web API answers with HTTP 429", ["method"], registry=r
        )
        self.event_redeliveries = Counter(
            "dcs_bot_event_redeliveries",
            "Events API deliveries of an event already delivered, acknowledged without handling",
            registry=r,
        )
        self.followed = Gauge("dcs_bot_followed_backups", "Backups being followed right now", registry=r)
        self.socket_connected = Gauge(
            "dcs_bot_socket_mode_connected",
            "1 when the Socket Mode connection is up (Socket Mode only)",
            registry=r,
        )
        self.leader = Gauge(
            "dcs_bot_leader",
            "1 while this replica holds the lease on the background work (the leader), 0 on a standby",
            registry=r,
        )

    def observe_dcs_call(self, cloud: str, endpoint: str, status: int, seconds: float) -> None:
        cloud = fixed(cloud, self._clouds)
        endpoint = fixed(endpoint, DCS_OPERATIONS)
        self.dcs_calls.labels(cloud, endpoint, str(status) if 0 <= status <= 999 else OTHER).inc()
        self.dcs_latency.labels(cloud, endpoint).observe(seconds)

    def observe_dcs_retry(self, cloud: str, endpoint: str, reason: str) -> None:
        self.dcs_retries.labels(
            fixed(cloud, self._clouds), fixed(endpoint, DCS_OPERATIONS), fixed(reason, DCS_RETRY_REASONS)
        ).inc()

    def observe_slack_error(self, method: str, error: str) -> None:
        self.slack_errors.labels(slack_method(method), word(error)).inc()

    def observe_slack_rate_limited(self, method: str) -> None:
        self.slack_rate_limited.labels(slack_method(method)).inc()

    def observe_event_redelivery(self) -> None:
        self.event_redeliveries.inc()

    def observe_socket(self, connected: bool) -> None:
        self.socket_connected.set(1 if connected else 0)

    def observe_role(self, role: str) -> None:
        self.leader.set(1 if role == "leader" else 0)

    def _cloud(self, entry: AuditEntry) -> str:
        """The entry's cloud as a label: a configured cloud's name, else ``other``."""
        return fixed(entry.cloud or "", self._clouds)

    def count(self, entry: AuditEntry) -> None:
        outcome = word(entry.outcome or "ok")
        match entry.kind:
            case AuditKind.COMMAND:
                command = fixed(str(entry.detail.get("command", "invalid")), _COMMANDS)
                self.commands.labels(command, "usage_error" if outcome == "usage_error" else "accepted").inc()
            case AuditKind.DECISION:
                self.decisions.labels(fixed(str(entry.detail.get("action")), _ACTIONS), outcome).inc()
            case AuditKind.API_RESULT:
                self.submissions.labels(self._cloud(entry), outcome).inc()
            case AuditKind.OUTCOME:
                self.backups.labels(self._cloud(entry), outcome).inc()
            case AuditKind.NOTICE:
                self.watch_notices.labels(self._cloud(entry), outcome).inc()
            case kind if kind in _CLICK_OUTCOMES:
                self.clicks.labels(_CLICK_OUTCOMES[kind]).inc()
            case _:
                pass


class MeteredAuditLog:
    """An audit log that also counts what it records."""

    def __init__(self, inner: AuditLog, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    def record(self, entry: AuditEntry) -> Awaitable[None]:
        return self._counted(self._inner.record(entry), entry)

    async def _counted(self, committed: Awaitable[None], entry: AuditEntry) -> None:
        await committed
        self._metrics.count(entry)


class RateLimitCounter(AsyncRetryHandler):
    """Counts 429 answers by Web API method, or as ``response_url`` for any URL outside ``api_url``;
    never retries itself (the rate-limit handler after it does)."""

    def __init__(self, metrics: Metrics, *, api_url: str) -> None:
        super().__init__(max_retry_count=0)
        self._metrics = metrics
        self._api_url = api_url

    async def can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is not None and response.status_code == 429:
            self._metrics.observe_slack_rate_limited(called_method(request, self._api_url))
        return False


def called_method(request: HttpRequest, api_url: str) -> str:
    """The Web API method a request calls (``other`` for one the bot does not call), or ``response_url``."""
    url: Any = request.url
    text = str(url)
    if not text.startswith(api_url):
        return RESPONSE_URL
    return slack_method(text[len(api_url) :].split("?", 1)[0].strip("/"))


def slack_method(name: str) -> str:
    return name if name in SLACK_METHODS or name == RESPONSE_URL else OTHER


def fixed(value: str, allowed: Collection[str]) -> str:
    """``value`` if it is one of ``allowed``, else ``other``."""
    return value if value in allowed else OTHER


def word(value: str) -> str:
    """``value`` if it looks like an outcome or error name (a short lower-case identifier), else ``other``."""
    return value if _WORD.fullmatch(value) else OTHER
