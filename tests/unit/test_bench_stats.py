"""The benchmark's pure parts: percentiles, the targets and the table (the benchmark itself is not run)."""

from __future__ import annotations

import math

import pytest

from benchmarks.load import command
from benchmarks.stats import (
    TARGETS,
    Bound,
    Latency,
    Row,
    Target,
    json_number,
    judge,
    percentile,
    ratio,
    render_table,
)
from bot.standins.slack.payloads import signed_headers


def test_percentile_interpolates_between_ranks() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 0.0) == 1.0
    assert percentile(values, 1.0) == 4.0
    assert percentile(values, 0.5) == pytest.approx(2.5)
    assert percentile(list(map(float, range(101))), 0.99) == pytest.approx(99.0)
    assert percentile([7.0], 0.99) == 7.0


def test_percentile_of_nothing_is_nan_and_fractions_are_checked() -> None:
    assert math.isnan(percentile([], 0.5))
    with pytest.raises(ValueError, match="fraction"):
        percentile([1.0], 1.5)


def test_latency_is_in_milliseconds() -> None:
    latency = Latency.of([0.001, 0.002, 0.003])
    assert latency.count == 3
    assert latency.p50_ms == pytest.approx(2.0)
    assert latency.p99_ms == pytest.approx(2.98)


def test_ratio_is_nan_without_a_reference() -> None:
    assert ratio(3.0, 1.5) == 2.0
    assert math.isnan(ratio(1.0, 0.0))
    assert math.isnan(ratio(math.nan, 1.0))


@pytest.mark.parametrize(
    ("bound", "value", "met"),
    [
        (Bound.AT_LEAST, 0.6, True),
        (Bound.AT_LEAST, 0.59, False),
        (Bound.AT_MOST, 2.0, True),
        (Bound.AT_MOST, 2.01, False),
        (Bound.BELOW, 100.0, False),
        (Bound.BELOW, 99.9, True),
        (Bound.BELOW, math.nan, None),
    ],
)
def test_targets_judge_their_bound(bound: Bound, value: float, met: bool | None) -> None:
    limit = {Bound.AT_LEAST: 0.6, Bound.AT_MOST: 2.0, Bound.BELOW: 100.0}[bound]
    assert Target("x", "x", bound, limit, "").met(value) is met


def test_judge_covers_every_target_of_issue_9_and_marks_missing_values() -> None:
    verdicts = judge({"throughput_ratio": 0.7, "dcs_calls_per_command": 2.0})
    assert [v.target.key for v in verdicts] == [t.key for t in TARGETS]
    assert len(verdicts) == 8
    by_key = {v.target.key: v.met for v in verdicts}
    assert by_key["throughput_ratio"] is True
    assert by_key["dcs_calls_per_command"] is False
    assert by_key["rss_mb"] is None
    assert verdicts[0].as_json()["value"] == 0.7
    assert judge({})[0].as_json()["value"] is None


def test_table_shows_both_columns_the_ratio_and_each_verdict() -> None:
    rows = [Row("throughput", 260.0, 2270.0, "commands/s"), Row("card p50", 349.0, unit="ms")]
    table = render_table(rows, judge({"throughput_ratio": 260 / 2270, "card_p50_ms": 349.0}))
    lines = table.splitlines()
    assert "bot" in lines[0] and "bare" in lines[0] and "bot/bare" in lines[0]
    throughput = next(line for line in lines if line.startswith("throughput (commands/s)"))
    assert throughput.split()[-3:] == ["260", "2270", "0.11"]
    assert next(line for line in lines if line.startswith("throughput, bot/bare")).endswith("NOT MET")
    assert next(line for line in lines if line.startswith("card p50 inside a burst")).endswith("met")
    assert next(line for line in lines if line.startswith("bot RSS")).endswith("not measured")


def test_json_numbers_are_rounded_and_nan_is_null() -> None:
    assert json_number(1.234567) == 1.2346
    assert json_number(math.nan) is None


def test_commands_are_signed_as_slack_signs_them() -> None:
    prepared = command(
        user="UBENCH01",
        channel="CBENCH1",
        text='redis-bench-00 rdb "bench"',
        response_url="http://127.0.0.1:1/response/tok123",
        secret="s3cret",
        timestamp=1_700_000_000,
    )
    assert prepared.token == "tok123"
    assert prepared.headers == signed_headers(prepared.body, secret="s3cret", timestamp=1_700_000_000)
    assert b"command=%2Fdcs-backup" in prepared.body
