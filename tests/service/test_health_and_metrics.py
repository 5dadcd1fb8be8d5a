"""/metrics (Prometheus text); the health endpoints are in test_operations_endpoints."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import ALICE, BOB, OPS, PRIVATE
from tests.service.conftest import Service

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(service: Service) -> Samples:
    status, text = await service.get("/metrics")
    assert status == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def backed_up(service: Service, instance: str = "redis-prod", channel: str = OPS) -> str:
    """A confirmed backup from ``channel``; returns the ts of the message that names its backup_id."""
    before = len(service.slack.channel_messages(channel))
    card = await service.card(f"{instance} rdb", channel=channel)
    await service.click(card, "backup_confirm")
    return (await service.channel_message(channel, before + 1)).ts


async def test_metrics_count_what_happened(service: Service) -> None:
    slack = service.slack
    started = await backed_up(service)
    await service.thread_replies(started)  # the outcome, once the tracker saw the backup finish
    await service.command("redis-prod --frobnicate")  # a usage error
    await service.command("redis-prod rdb", user=BOB)  # refused by policy
    await service.reply_to(BOB)
    cancelled = await service.card("redis-prod aof")
    await service.click(cancelled, "backup_cancel")
    await service.slack.wait_for_message(lambda m: m is cancelled and "Cancelled" in m.shown)
    # chat.postMessage answers not_in_channel, for the backup_id and for the outcome.
    await backed_up(service, "redis-staging", channel=PRIVATE)
    outcome = await service.channel_message(PRIVATE, 2)
    assert "succeeded" in outcome.shown
    # The next post is rate limited once; the bot waits Retry-After (0 s here) and tries again.
    slack.fail("chat.postMessage", "ratelimited", retry_after=0)
    service.dcs.backuping_seconds = 3600  # this one is still running when scraped
    await backed_up(service)

    samples = await scrape(service)

    assert value(samples, "dcs_bot_commands_total", command="BackupCommand", outcome="accepted") == 5
    assert value(samples, "dcs_bot_commands_total", command="invalid", outcome="usage_error") == 1
    assert value(samples, "dcs_bot_policy_decisions_total", action="backup", outcome="allowed") == 4
    assert value(samples, "dcs_bot_policy_decisions_total", action="backup", outcome="denied") == 1
    assert value(samples, "dcs_bot_clicks_total", outcome="confirmed") == 3
    assert value(samples, "dcs_bot_clicks_total", outcome="cancelled") == 1
    assert (
        value(samples, "dcs_bot_dcs_calls_total", cloud="default", endpoint="create_backup", status="200")
        == 3
    )
    assert value(samples, "dcs_bot_dcs_call_seconds_count", cloud="default", endpoint="create_backup") == 3
    assert value(samples, "dcs_bot_backup_submissions_total", cloud="default", outcome="accepted") == 3
    assert value(samples, "dcs_bot_backups_finished_total", cloud="default", status="succeed") == 2
    assert value(samples, "dcs_bot_followed_backups") == 1
    assert (
        value(samples, "dcs_bot_slack_api_errors_total", method="chat.postMessage", error="not_in_channel")
        == 2
    )
    assert value(samples, "dcs_bot_slack_rate_limited_total", method="chat.postMessage") == 1
    assert ALICE not in str(samples), "no user IDs in metric labels"
