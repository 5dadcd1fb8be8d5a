"""Tracking rules: when a followed backup has ended, what a watch announces, when backups are stale."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.core.rules.backup_request import BackupRequest
from bot.core.rules.following import Ended, GiveUp, StillRunning, duration_of, judge
from bot.core.rules.instances import BackupFormat, BackupRecord, Instance
from bot.core.rules.watching import (
    Recovered,
    StaleAlert,
    WatchTarget,
    last_success,
    staleness_change,
    watch_targets,
    watched_outcomes,
)
from bot.policy_file import parse_policy

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
PROD = Instance(instance_id="11111111-1111-1111-1111-111111111111", name="redis-prod")
STAGING = Instance(instance_id="22222222-2222-2222-2222-222222222222", name="redis-staging")
OTHER = Instance(instance_id="33333333-3333-3333-3333-333333333333", name="cache-eu")

REQUEST = BackupRequest(
    request_id="r1",
    requester_id="UALICE1",
    requester_name="alice",
    channel_id="COPS1",
    instance_id=PROD.instance_id,
    instance_name=PROD.name,
    backup_format=BackupFormat.AOF,
    remark="x",
    rule="sre",
    created_at=NOW,
    expires_at=NOW + timedelta(minutes=5),
    submitted_at=NOW,
    backup_id="b1",
)


def record(backup_id: str, status: str, *, ended: datetime | None = None) -> BackupRecord:
    return BackupRecord(
        backup_id=backup_id,
        status=status,
        created_at=(ended or NOW) - timedelta(minutes=10),
        updated_at=ended,
    )


def test_running_backup_is_still_followed() -> None:
    verdict = judge(REQUEST, record("b1", "backuping"), NOW + timedelta(minutes=1), timedelta(hours=2))
    assert verdict == StillRunning("backuping")
    assert not verdict.status_is_unknown


def test_unknown_status_counts_as_running() -> None:
    verdict = judge(REQUEST, record("b1", "frobnicating"), NOW, timedelta(hours=2))
    assert isinstance(verdict, StillRunning)
    assert verdict.status_is_unknown


def test_not_yet_listed_is_still_followed() -> None:
    assert judge(REQUEST, None, NOW, timedelta(hours=2)) == StillRunning(None)


def test_final_statuses_end_it_with_a_duration() -> None:
    for status in ("succeed", "failed", "expired", "deleted"):
        final = record("b1", status, ended=NOW + timedelta(minutes=3))
        verdict = judge(REQUEST, final, NOW + timedelta(minutes=4), timedelta(hours=2))
        assert verdict == Ended(final, 600.0)


def test_following_is_bounded() -> None:
    verdict = judge(REQUEST, record("b1", "backuping"), NOW + timedelta(hours=2), timedelta(hours=2))
    assert verdict == GiveUp(7200.0)


def test_duration_needs_both_ends() -> None:
    assert duration_of(record("b1", "succeed")) is None


POLICY = parse_policy(
    """
    [[watch]]
    instances = ["redis-*"]
    channel = "CALERTS1"

    [[watch]]
    instances = ["redis-prod"]
    channel = "CALERTS1"
    events = ["succeed"]
    stale_after_hours = 26

    [[watch]]
    instances = ["redis-prod"]
    channel = "COTHER1"
    stale_after_hours = 2
    """
)


def test_watches_merge_per_channel_and_instance() -> None:
    targets = watch_targets(POLICY.watch, [PROD, STAGING, OTHER])
    by_key = {(t.channel_id, t.instance_name): t for t in targets}
    assert set(by_key) == {
        ("CALERTS1", "redis-prod"),
        ("CALERTS1", "redis-staging"),
        ("COTHER1", "redis-prod"),
    }
    merged = by_key[("CALERTS1", "redis-prod")]
    assert merged.events == {"failed", "succeed"}
    assert merged.stale_after == timedelta(hours=26)
    assert by_key[("CALERTS1", "redis-staging")].stale_after is None


TARGET = WatchTarget("CALERTS1", PROD.instance_id, PROD.name, frozenset({"failed"}), timedelta(hours=26))


def test_only_new_final_backups_that_ended_after_the_watch_began_are_announced() -> None:
    since = NOW
    records = [
        record("old-failure", "failed", ended=NOW - timedelta(hours=1)),
        record("new-failure", "failed", ended=NOW + timedelta(minutes=1)),
        record("new-success", "succeed", ended=NOW + timedelta(minutes=2)),
        record("running", "backuping"),
        record("seen", "failed", ended=NOW + timedelta(minutes=3)),
    ]
    outcomes = watched_outcomes(TARGET, records, since, seen={"seen"})
    assert [(o.record.backup_id, o.announce) for o in outcomes] == [
        ("old-failure", False),
        ("new-failure", True),
        ("new-success", False),
    ]


def test_last_success() -> None:
    assert last_success([record("a", "failed", ended=NOW)]) is None
    assert (
        last_success(
            [record("a", "succeed", ended=NOW), record("b", "succeed", ended=NOW - timedelta(hours=1))]
        )
        == NOW
    )


def test_stale_alert_once_then_recovery() -> None:
    old = [record("a", "succeed", ended=NOW - timedelta(hours=30))]
    assert staleness_change(TARGET, old, NOW, stale_since=None) == StaleAlert(NOW - timedelta(hours=30))
    assert staleness_change(TARGET, old, NOW, stale_since=NOW) is None
    assert staleness_change(TARGET, [], NOW, stale_since=None) == StaleAlert(None)
    fresh = [*old, record("b", "succeed", ended=NOW - timedelta(hours=1))]
    assert staleness_change(TARGET, fresh, NOW, stale_since=NOW) == Recovered(NOW - timedelta(hours=1))
    assert staleness_change(TARGET, fresh, NOW, stale_since=None) is None


def test_no_window_no_staleness() -> None:
    target = WatchTarget("C1X", PROD.instance_id, PROD.name, frozenset({"failed"}), None)
    assert staleness_change(target, [], NOW, stale_since=None) is None
