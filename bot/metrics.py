"""Prometheus metrics. Most are derived from the audit stream, so that every counted event is also an
audited one and the two can never disagree."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot.core.ports import AuditLog
from bot.core.rules.audit import AuditEntry, AuditKind

_CLICK_OUTCOMES = {
    AuditKind.CONFIRMED: "confirmed",
    AuditKind.CANCELLED: "cancelled",
    AuditKind.EXPIRED: "expired",
    AuditKind.CLICK_REFUSED: "refused",
    AuditKind.APPROVAL_REQUESTED: "awaiting_approval",
    AuditKind.APPROVED: "approved",
    AuditKind.REJECTED: "rejected",
}


class Metrics:
    def __init__(self) -> None:
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
            "CreateBackup results (accepted or refused by DCS)",
            ["outcome"],
            registry=r,
        )
        self.backups = Counter(
            "dcs_bot_backups_finished",
            "Backups started through the bot, by final status",
            ["status"],
            registry=r,
        )
        self.watch_notices = Counter(
            "dcs_bot_watch_notices", "Notices posted for watched instances", ["kind"], registry=r
        )
        self.dcs_calls = Counter(
            "dcs_bot_dcs_calls",
            "DCS API calls by endpoint and HTTP status (0: no answer)",
            ["endpoint", "status"],
            registry=r,
        )
        self.dcs_retries = Counter(
            "dcs_bot_dcs_retries",
            "DCS reads tried again, by endpoint and reason (rate_limited, server_error, no_answer)",
            ["endpoint", "reason"],
            registry=r,
        )
        self.dcs_latency = Histogram(
            "dcs_bot_dcs_call_seconds",
            "DCS API call latency",
            ["endpoint"],
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
        self.followed = Gauge("dcs_bot_followed_backups", "Backups being followed right now", registry=r)
        self.socket_connected = Gauge(
            "dcs_bot_socket_mode_connected",
            "1 when the Socket Mode connection is up (Socket Mode only)",
            registry=r,
        )

    def observe_dcs_call(self, endpoint: str, status: int, seconds: float) -> None:
        self.dcs_calls.labels(endpoint, str(status)).inc()
        self.dcs_latency.labels(endpoint).observe(seconds)

    def observe_dcs_retry(self, endpoint: str, reason: str) -> None:
        self.dcs_retries.labels(endpoint, reason).inc()

    def observe_slack_error(self, method: str, error: str) -> None:
        self.slack_errors.labels(method, error).inc()

    def observe_socket(self, connected: bool) -> None:
        self.socket_connected.set(1 if connected else 0)

    def count(self, entry: AuditEntry) -> None:
        outcome = entry.outcome or "ok"
        match entry.kind:
            case AuditKind.COMMAND:
                command = str(entry.detail.get("command", "invalid"))
                self.commands.labels(command, "usage_error" if outcome == "usage_error" else "accepted").inc()
            case AuditKind.DECISION:
                self.decisions.labels(str(entry.detail.get("action", "?")), outcome).inc()
            case AuditKind.API_RESULT:
                self.submissions.labels(outcome).inc()
            case AuditKind.OUTCOME:
                self.backups.labels(outcome).inc()
            case AuditKind.NOTICE:
                self.watch_notices.labels(outcome).inc()
            case kind if kind in _CLICK_OUTCOMES:
                self.clicks.labels(_CLICK_OUTCOMES[kind]).inc()
            case _:
                pass


class MeteredAuditLog:
    """An audit log that also counts what it records."""

    def __init__(self, inner: AuditLog, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    async def record(self, entry: AuditEntry) -> None:
        await self._inner.record(entry)
        self._metrics.count(entry)


class RateLimitCounter(AsyncRetryHandler):
    """Counts 429 answers; never retries itself (the rate-limit handler after it does)."""

    def __init__(self, metrics: Metrics) -> None:
        super().__init__(max_retry_count=0)
        self._metrics = metrics

    async def can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is not None and response.status_code == 429:
            self._metrics.slack_rate_limited.labels(_method(request)).inc()
        return False


def _method(request: HttpRequest) -> str:
    url: Any = request.url
    return str(url).rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
