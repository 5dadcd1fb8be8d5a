"""The pure parts of the command benchmark: percentiles, summaries, the targets of issue 9 and the table.

No I/O here, so the unit tests can check them (tests/unit/test_bench_stats.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (0…1) by linear interpolation between the closest ranks (numpy's
    default); NaN for no values."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction {fraction} is not within 0…1")
    if not values:
        return math.nan
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = math.ceil(position)
    if low == high:
        return ordered[low]
    weight = position - low
    return ordered[low] * (1 - weight) + ordered[high] * weight


@dataclass(frozen=True)
class Latency:
    """p50 and p99 of a set of durations, in milliseconds."""

    count: int
    p50_ms: float
    p99_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        return cls(
            count=len(seconds),
            p50_ms=percentile(seconds, 0.50) * 1000,
            p99_ms=percentile(seconds, 0.99) * 1000,
        )


def ratio(value: float, reference: float) -> float:
    """``value / reference``; NaN when either is missing or the reference is zero."""
    if math.isnan(value) or math.isnan(reference) or reference == 0:
        return math.nan
    return value / reference


class Bound(StrEnum):
    AT_LEAST = ">="
    AT_MOST = "<="
    BELOW = "<"


@dataclass(frozen=True)
class Target:
    """One target of issue 9, item 2: ``key`` names the measured value it judges."""

    key: str
    label: str
    bound: Bound
    limit: float
    unit: str

    def met(self, value: float) -> bool | None:
        """None when the value could not be measured."""
        if math.isnan(value):
            return None
        match self.bound:
            case Bound.AT_LEAST:
                return value >= self.limit
            case Bound.AT_MOST:
                return value <= self.limit
            case Bound.BELOW:
                return value < self.limit

    def describe(self) -> str:
        return f"{self.bound.value} {_number(self.limit)}{self.unit}"


#: Issue 9, item 2. Ratios are bot / bare app; the rest are the bot's own figures.
TARGETS: tuple[Target, ...] = (
    Target("throughput_ratio", "throughput, bot/bare", Bound.AT_LEAST, 0.6, "×"),
    Target("ack_p99_ratio", "ack p99, bot/bare", Bound.AT_MOST, 2.0, "×"),
    Target("cpu_per_command_ratio", "CPU per command, bot/bare", Bound.AT_MOST, 3.0, "×"),
    Target("card_p50_ms", "card p50 inside a burst", Bound.AT_MOST, 500.0, " ms"),
    Target("slow_dcs_ack_p99_ms", "ack p99 while DCS takes 4 s", Bound.BELOW, 100.0, " ms"),
    Target("confirm_above_emulator_p50_ms", "confirm → channel p50 above emulator", Bound.BELOW, 50.0, " ms"),
    Target("rss_mb", "bot RSS after the commands", Bound.BELOW, 100.0, " MB"),
    Target("dcs_calls_per_command", "DCS calls per command (repeats)", Bound.AT_MOST, 1.0, ""),
)


@dataclass(frozen=True)
class Verdict:
    target: Target
    value: float
    met: bool | None

    def as_json(self) -> dict[str, object]:
        return {
            "key": self.target.key,
            "label": self.target.label,
            "target": self.target.describe(),
            "value": json_number(self.value),
            "met": self.met,
        }


def judge(values: Mapping[str, float], targets: Sequence[Target] = TARGETS) -> list[Verdict]:
    """Each target against its value in ``values`` (missing values count as not measured)."""
    verdicts = []
    for target in targets:
        value = values.get(target.key, math.nan)
        verdicts.append(Verdict(target, value, target.met(value)))
    return verdicts


def _number(value: float) -> str:
    if math.isnan(value):
        return "–"
    if value == 0 or abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 0.1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def json_number(value: float) -> float | None:
    """A float for results.json: rounded, and NaN as null (JSON has no NaN)."""
    return None if math.isnan(value) else round(value, 4)


@dataclass(frozen=True)
class Row:
    """One line of the side-by-side table: the bot's figure, the bare app's (NaN: not applicable)."""

    label: str
    bot: float
    bare: float = math.nan
    unit: str = ""

    @property
    def ratio(self) -> float:
        return ratio(self.bot, self.bare)


def render_table(rows: Sequence[Row], verdicts: Sequence[Verdict]) -> str:
    """The report: the measured figures side by side, then each target with its value and verdict."""
    width = max(
        [len(row.label) + len(row.unit) + 3 for row in rows] + [len(v.target.label) for v in verdicts]
    )
    lines = [f"{'':<{width}}  {'bot':>10}  {'bare':>10}  {'bot/bare':>9}"]
    for row in rows:
        label = f"{row.label} ({row.unit})" if row.unit else row.label
        lines.append(
            f"{label:<{width}}  {_number(row.bot):>10}  {_number(row.bare):>10}  {_number(row.ratio):>9}"
        )
    lines.append("")
    lines.append(f"{'target (issue 9, item 2)':<{width}}  {'value':>10}  {'target':>10}  {'':>9}")
    for verdict in verdicts:
        word = {True: "met", False: "NOT MET", None: "not measured"}[verdict.met]
        lines.append(
            f"{verdict.target.label:<{width}}  {_number(verdict.value):>10}  "
            f"{verdict.target.describe():>10}  {word:>9}"
        )
    return "\n".join(lines)
