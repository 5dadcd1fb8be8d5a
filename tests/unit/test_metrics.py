"""Metric labels come from fixed sets: nothing from outside reaches /metrics as it is."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import generate_latest
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot.core.rules.audit import AuditEntry, AuditKind
from bot.dcs.client import RETRY_REASONS
from bot.metrics import DCS_RETRY_REASONS, Metrics, RateLimitCounter, called_method, word

API = "https://slack.com/api/"


def request(url: str) -> HttpRequest:
    return HttpRequest(method="POST", url=url, headers={}, body_params={})


@pytest.mark.parametrize(
    ("url", "method"),
    [
        (API + "chat.postMessage", "chat.postMessage"),
        (API + "usergroups.users.list?usergroup=S1", "usergroups.users.list"),
        (API + "auth.test", "auth.test"),
        (API + "admin.users.session.reset", "other"),
        (API + "xoxb-1234-token-in-the-path", "other"),
        ("https://hooks.slack.com/commands/T0/123/AbCdEfSeCrEt", "response_url"),
        ("https://hooks.slack.com/actions/T0/123/chat.postMessage", "response_url"),
        ("http://127.0.0.1:9/response/sbz72wVsVaBKfHyx", "response_url"),
    ],
)
def test_a_call_is_named_by_its_method_or_as_a_response_url(url: str, method: str) -> None:
    assert called_method(request(url), API) == method


async def test_a_429_is_counted_without_any_part_of_the_url() -> None:
    metrics = Metrics()
    counter = RateLimitCounter(metrics, api_url=API)
    limited = HttpResponse(status_code=429, headers={"retry-after": ["1"]}, body={})

    retried = await counter.can_retry_async(
        state=RetryState(),
        request=request("https://hooks.slack.com/commands/T0/123/AbCdEfSeCrEt"),
        response=limited,
    )

    assert retried is False
    text = generate_latest(metrics.registry).decode()
    assert 'dcs_bot_slack_rate_limited_total{method="response_url"} 1.0' in text
    assert "AbCdEfSeCrEt" not in text and "hooks" not in text


@given(st.text(max_size=80))
def test_a_word_label_is_a_short_identifier_or_other(value: str) -> None:
    label = word(value)

    assert label == "other" or (label == value and label.isascii() and len(label) <= 40)
    assert label == "other" or (label.replace("_", "").isalnum() and label == label.lower())


def test_every_label_from_outside_is_fixed() -> None:
    metrics = Metrics(clouds=["eu-de", "eu-nl"])
    metrics.observe_slack_error("https://hooks.slack.com/commands/T0/1/secret", "invalid_auth")
    metrics.observe_slack_error("chat.postMessage", "<html>Bad Gateway</html>")
    metrics.observe_dcs_call("eu-de", "show_instance", 503, 0.1)
    metrics.observe_dcs_call("https://dcs.example.com", "/v2/project/instances/secret", 1000, 0.1)
    metrics.observe_dcs_retry("eu-nl", "list_backups", "server_error")
    metrics.observe_dcs_retry("eu-nl", "list_backups", "Token xyz")
    metrics.count(AuditEntry(AuditKind.COMMAND, detail={"command": "xoxb-token", "text": "x"}))
    metrics.count(AuditEntry(AuditKind.DECISION, outcome="allowed", detail={"action": "drop-db"}))
    metrics.count(AuditEntry(AuditKind.OUTCOME, outcome="Succeeded with https://x", cloud="eu-nl"))
    metrics.count(AuditEntry(AuditKind.NOTICE, outcome="stale", cloud="https://x/secret"))
    metrics.count(AuditEntry(AuditKind.API_RESULT, outcome="accepted", cloud="eu-de"))

    text = generate_latest(metrics.registry).decode()

    for unwanted in ("hooks", "secret", "html", "1000", "xyz", "xoxb", "drop-db", "https"):
        assert unwanted not in text
    for kept in (
        'dcs_bot_slack_api_errors_total{error="invalid_auth",method="other"} 1.0',
        'dcs_bot_slack_api_errors_total{error="other",method="chat.postMessage"} 1.0',
        'dcs_bot_dcs_calls_total{cloud="eu-de",endpoint="show_instance",status="503"} 1.0',
        'dcs_bot_dcs_calls_total{cloud="other",endpoint="other",status="other"} 1.0',
        'dcs_bot_dcs_retries_total{cloud="eu-nl",endpoint="list_backups",reason="other"} 1.0',
        'dcs_bot_commands_total{command="other",outcome="accepted"} 1.0',
        'dcs_bot_policy_decisions_total{action="other",outcome="allowed"} 1.0',
        'dcs_bot_backups_finished_total{cloud="eu-nl",status="other"} 1.0',
        'dcs_bot_watch_notices_total{cloud="other",kind="stale"} 1.0',
        'dcs_bot_backup_submissions_total{cloud="eu-de",outcome="accepted"} 1.0',
    ):
        assert kept in text


def test_the_dcs_client_retries_for_reasons_the_metrics_know() -> None:
    assert set(RETRY_REASONS) == DCS_RETRY_REASONS
