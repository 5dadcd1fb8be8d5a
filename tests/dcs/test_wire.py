"""The times of backup records: with or without a zone, in any ISO shape, or no time at all."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.dcs.wire import BackupList, WireBackupRecord, WireInstance, record_time

TEN = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "moment"),
    [
        ("2026-12-01T10:00:00", TEN),
        ("2026-12-01 10:00:00", TEN),
        ("2026-12-01T10:00:00.000", TEN),
        ("2026-12-01T10:00:00Z", TEN),
        ("2026-12-01T10:00:00.166Z", TEN + timedelta(milliseconds=166)),
        ("2026-12-01T11:00:00+01:00", TEN),
        (" 2026-12-01T10:00:00 ", TEN),
        ("20261201100000", TEN),
        ("2026-12-01", TEN.replace(hour=0)),
        (datetime(2026, 12, 1, 10, 0), TEN),
    ],
)
def test_times_are_read_with_utc_for_those_without_a_zone(value: object, moment: datetime) -> None:
    read = record_time(value)

    assert read == moment
    assert read is not None and read.tzinfo is not None


@pytest.mark.parametrize(
    "value", ["", "   ", {}, None, "yesterday", "2026-13-45T99:00:00", "10:00", 17, 1.5, [], True]
)
def test_what_is_no_time_is_absent(value: object) -> None:
    assert record_time(value) is None


@given(st.datetimes(timezones=st.none() | st.timezones()))
def test_every_iso_time_is_read_aware_and_at_the_same_instant(moment: datetime) -> None:
    read = record_time(moment.isoformat())

    assert read is not None and read.tzinfo is not None
    expected = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    # In UTC: Python never calls a time in a zone's repeated hour equal to one in another zone.
    assert read.astimezone(UTC) == expected.astimezone(UTC)


def record(**times: object) -> dict[str, object]:
    return {"backup_id": "b-1", "status": "succeed", **times}


def test_a_record_without_zones_compares_with_aware_times() -> None:
    page = BackupList.model_validate(
        {
            "backup_record_response": [
                record(created_at="2026-12-01 10:00:00", updated_at="2026-12-01T10:01:05", execution_at="")
            ]
        }
    ).to_core()

    [core] = page.records
    assert core.created_at == TEN and core.updated_at == TEN + timedelta(minutes=1, seconds=5)
    assert core.execution_at is None
    assert core.created_at < datetime(2026, 12, 1, 6, 0, tzinfo=timezone(timedelta(hours=-5)))


def test_unreadable_times_are_absent_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bot.dcs.wire")
    odd = record(backup_id="b-odd", created_at="yesterday", updated_at=17, execution_at="x" * 500)

    for _ in range(3):
        parsed = WireBackupRecord.model_validate(odd)
        assert (parsed.created_at, parsed.updated_at, parsed.execution_at) == (None, None, None)

    messages = [r.getMessage() for r in caplog.records if r.name == "bot.dcs.wire"]
    assert messages[:2] == [
        "DCS backup record b-odd: created_at 'yesterday' is no time; taken as absent",
        "DCS backup record b-odd: updated_at 17 is no time; taken as absent",
    ]
    assert len(messages) == 3
    assert "…" in messages[2] and len(messages[2]) < 200, "a long value is shortened"


def test_blank_times_are_absent_without_a_word(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bot.dcs.wire")

    parsed = WireBackupRecord.model_validate(record(created_at="", updated_at={}, execution_at=None))

    assert (parsed.created_at, parsed.updated_at, parsed.execution_at) == (None, None, None)
    assert caplog.records == []


def test_instance_tags_are_read_leniently() -> None:
    def tags(value: object) -> tuple[tuple[str, str], ...]:
        return WireInstance.model_validate({"instance_id": "i", "name": "n", "tags": value}).to_core().tags

    assert tags([{"key": "env", "value": "prod"}, {"key": "team", "value": "shop"}]) == (
        ("env", "prod"),
        ("team", "shop"),
    )
    assert tags(None) == () and tags({}) == ()
    assert tags([{"key": "env"}, {"value": "x"}, {"key": ""}, "junk", {"key": "k", "value": {}}]) == (
        ("env", ""),
        ("k", ""),
    )
