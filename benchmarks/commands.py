"""The bot against a bare Bolt app: slash-command bursts, cards, confirm, slow DCS, memory (issue 9).

Three child processes on 127.0.0.1, ephemeral ports:

- the stand-ins (``python -m benchmarks.standins``): the Slack stand-in and the DCS emulator;
- A, the real bot, started the documented way (``dcs-bot serve``, HTTP mode), its settings pointing at
  the stand-ins, a SQLite database in a temporary directory, a policy allowing the benchmark's users;
- B, a bare slack-bolt ``AsyncApp(process_before_response=True)`` that only acks (``benchmarks.bare``).

This process is the load: bursts of signed ``/dcs-backup`` commands at a fixed concurrency, alternating
A B A B. The bot's CPU per command counts the work after the ack: it is read once every card has reached
the stand-in's response_url. Then, bot only: more bursts until the bot has served ``--rss-commands``
commands (its RSS then), a burst while every DCS call takes ``--slow-delay`` seconds, and confirm clicks
timed until the ``backup_id`` is in the channel, next to the emulator's own latency for a create call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks import standins
from benchmarks.load import Prepared, burst, client_session, command
from benchmarks.processes import Child, free_port, running
from benchmarks.procstat import cpu_model, cpu_seconds, main_thread_cpu_seconds, rss_bytes
from benchmarks.stats import Latency, Row, json_number, judge, ratio, render_table
from bot.core.rules.instances import BackupFormat
from bot.dcs.auth import AkSkAuth
from bot.dcs.client import DcsClient

RESULTS = Path(__file__).with_name("results.json")
#: After the last card (bot) or ack (bare), before CPU is read: lets in-flight bookkeeping finish.
SETTLE_SECONDS = 0.3
MB = 1024 * 1024

POLICY = f"""
[[rules]]
name = "bench"
users = [{", ".join(f'"{user}"' for user in standins.USERS)}]
channels = ["{standins.CHANNEL}"]
instances = ["redis-*"]
actions = ["backup", "list", "status"]
"""


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclass(frozen=True)
class Options:
    burst: int = 1500
    rounds: int = 2
    concurrency: int = 20
    warmup: int = 100
    rss_commands: int = 5000
    slow_commands: int = 100
    slow_delay: float = 4.0
    confirms: int = 20
    card_timeout: float = 120.0
    output: Path = RESULTS
    profile: Path | None = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Each flag defaults to its ``BENCH_*`` environment variable, else to issue 9's figure."""
    defaults = Options()
    parser.add_argument(
        "--burst",
        type=int,
        default=_env_int("BENCH_BURST", defaults.burst),
        help="commands per burst (BENCH_BURST, %(default)s)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=_env_int("BENCH_ROUNDS", defaults.rounds),
        help="A B rounds (BENCH_ROUNDS, %(default)s)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=_env_int("BENCH_CONCURRENCY", defaults.concurrency),
        help="requests in flight (BENCH_CONCURRENCY, %(default)s)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=_env_int("BENCH_WARMUP", defaults.warmup),
        help="unmeasured commands to each app first (BENCH_WARMUP, %(default)s)",
    )
    parser.add_argument(
        "--rss-commands",
        type=int,
        default=_env_int("BENCH_RSS_COMMANDS", defaults.rss_commands),
        help="commands the bot has served when its RSS is read (BENCH_RSS_COMMANDS, %(default)s)",
    )
    parser.add_argument(
        "--slow-commands",
        type=int,
        default=_env_int("BENCH_SLOW_COMMANDS", defaults.slow_commands),
        help="commands sent while DCS is slow (BENCH_SLOW_COMMANDS, %(default)s)",
    )
    parser.add_argument(
        "--slow-delay",
        type=float,
        default=_env_float("BENCH_SLOW_DELAY", defaults.slow_delay),
        help="seconds every DCS call takes then (BENCH_SLOW_DELAY, %(default)s)",
    )
    parser.add_argument(
        "--confirms",
        type=int,
        default=_env_int("BENCH_CONFIRMS", defaults.confirms),
        help="confirm clicks timed (BENCH_CONFIRMS, %(default)s)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path(os.environ.get("BENCH_OUTPUT", RESULTS)),
        help="the JSON results (BENCH_OUTPUT, %(default)s)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="record the bot with py-spy into this file (collapsed stacks); "
        "the profiler's own cost skews that run's figures",
    )


def options_from(arguments: argparse.Namespace) -> Options:
    options = Options(
        burst=arguments.burst,
        rounds=arguments.rounds,
        concurrency=arguments.concurrency,
        warmup=arguments.warmup,
        rss_commands=arguments.rss_commands,
        slow_commands=arguments.slow_commands,
        slow_delay=arguments.slow_delay,
        confirms=min(arguments.confirms, len(standins.CONFIRM_INSTANCES)),
        output=arguments.output,
        profile=arguments.profile,
    )
    if min(options.burst, options.rounds, options.concurrency) < 1:
        raise SystemExit("--burst, --rounds and --concurrency must be at least 1")
    return options


@dataclass
class Round:
    """One burst against one app."""

    app: str
    number: int
    commands: int
    failed: int
    seconds: float
    acks: list[float]
    cpu_seconds: float
    #: Of ``cpu_seconds``, what the main thread (the event loop) used; the rest ran in other threads.
    loop_cpu_seconds: float
    standins_cpu_seconds: float
    cards: list[float] = field(default_factory=list)
    #: From the first command sent to the last card in (bot only).
    seconds_to_last_card: float = math.nan
    cards_missing: int = 0
    not_cards: int = 0
    dcs_calls: dict[str, int] = field(default_factory=dict)
    slack_api_calls: int = 0
    rss_mb: float = math.nan

    @property
    def throughput(self) -> float:
        return self.commands / self.seconds if self.seconds > 0 else math.nan

    def summary(self) -> dict[str, Any]:
        ack, card = Latency.of(self.acks), Latency.of(self.cards)
        return {
            "app": self.app,
            "round": self.number,
            "commands": self.commands,
            "failed": self.failed,
            "seconds": json_number(self.seconds),
            "throughput_per_s": json_number(self.throughput),
            "ack_p50_ms": json_number(ack.p50_ms),
            "ack_p99_ms": json_number(ack.p99_ms),
            "cpu_ms_per_command": json_number(self.cpu_seconds * 1000 / self.commands),
            "loop_thread_cpu_ms_per_command": json_number(self.loop_cpu_seconds * 1000 / self.commands),
            "standins_cpu_ms_per_command": json_number(self.standins_cpu_seconds * 1000 / self.commands),
            "card_p50_ms": json_number(card.p50_ms),
            "card_p99_ms": json_number(card.p99_ms),
            "cards_per_s": json_number(self.commands / self.seconds_to_last_card),
            "cards_missing": self.cards_missing,
            "replies_without_confirm_button": self.not_cards,
            "dcs_calls": self.dcs_calls,
            "dcs_calls_per_command": json_number(sum(self.dcs_calls.values()) / self.commands),
            "slack_api_calls_per_command": json_number(self.slack_api_calls / self.commands),
            "rss_mb": json_number(self.rss_mb),
        }

    def line(self) -> str:
        ack, card = Latency.of(self.acks), Latency.of(self.cards)
        text = (
            f"  round {self.number} {self.app:<4} {self.commands} commands in {self.seconds:5.2f} s: "
            f"{self.throughput:6.0f}/s, ack p50 {ack.p50_ms:6.1f} p99 {ack.p99_ms:6.1f} ms, "
            f"CPU {self.cpu_seconds * 1000 / self.commands:5.2f} ms/command"
        )
        if self.app == "bot":
            calls = sum(self.dcs_calls.values()) / self.commands
            text += (
                f", card p50 {card.p50_ms:6.0f} p99 {card.p99_ms:6.0f} ms"
                f" ({self.commands / self.seconds_to_last_card:.0f} cards/s), DCS calls/command {calls:.2f}"
            )
        if self.failed or self.cards_missing:
            text += f"  [{self.failed} failed, {self.cards_missing} cards missing]"
        return text


def pooled(rounds: Sequence[Round]) -> dict[str, float]:
    """The figures of several rounds of one app together: latencies pooled, totals summed."""
    commands = sum(r.commands for r in rounds)
    seconds = sum(r.seconds for r in rounds)
    acks = [value for r in rounds for value in r.acks]
    cards = [value for r in rounds for value in r.cards]
    dcs = sum(sum(r.dcs_calls.values()) for r in rounds)
    ack, card = Latency.of(acks), Latency.of(cards)
    return {
        "commands": commands,
        "throughput_per_s": commands / seconds if seconds else math.nan,
        "ack_p50_ms": ack.p50_ms,
        "ack_p99_ms": ack.p99_ms,
        "cpu_ms_per_command": sum(r.cpu_seconds for r in rounds) * 1000 / commands,
        "loop_thread_cpu_ms_per_command": sum(r.loop_cpu_seconds for r in rounds) * 1000 / commands,
        "standins_cpu_ms_per_command": sum(r.standins_cpu_seconds for r in rounds) * 1000 / commands,
        "card_p50_ms": card.p50_ms,
        "card_p99_ms": card.p99_ms,
        "cards_per_s": commands / sum(r.seconds_to_last_card for r in rounds),
        "dcs_calls_per_command": dcs / commands,
        "slack_api_calls_per_command": sum(r.slack_api_calls for r in rounds) / commands,
    }


class Bench:
    """Drives the children; knows their URLs and pids."""

    def __init__(
        self,
        options: Options,
        session: aiohttp.ClientSession,
        *,
        control: str,
        bot: Child,
        bot_url: str,
        bare: Child,
        bare_url: str,
        stand_ins: Child,
    ) -> None:
        self.options = options
        self.session = session
        self.control = control
        self.bot, self.bot_url = bot, bot_url
        self.bare, self.bare_url = bare, bare_url
        self.stand_ins = stand_ins
        self.bot_commands = 0
        self._sequence = 0

    async def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        async with self.session.request(
            method, self.control + path, json=body, timeout=aiohttp.ClientTimeout(total=None)
        ) as response:
            response.raise_for_status()
            return await response.json()

    async def counts(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "/counts")
        return result

    async def prepare(
        self, count: int, instances: Sequence[str] = standins.BURST_INSTANCES
    ) -> list[Prepared]:
        """``count`` signed commands, users and instances in turn, each with a response_url of its own."""
        users = [standins.USERS[(self._sequence + i) % len(standins.USERS)] for i in range(count)]
        issued = await self._call("POST", "/issue", {"users": users, "channel": standins.CHANNEL})
        prepared = []
        for index, (user, url) in enumerate(zip(users, issued["urls"], strict=True)):
            instance = instances[(self._sequence + index) % len(instances)]
            prepared.append(
                command(
                    user=user,
                    channel=standins.CHANNEL,
                    text=f'{instance} rdb "bench {self._sequence + index}"',
                    response_url=url,
                    secret=standins.SIGNING_SECRET,
                )
            )
        self._sequence += count
        return prepared

    async def cards(self, tokens: Sequence[str], timeout: float) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            "POST", "/cards", {"tokens": list(tokens), "timeout": timeout}
        )
        return result

    async def run_burst(self, app: str, number: int, count: int) -> Round:
        child, url = (self.bot, self.bot_url) if app == "bot" else (self.bare, self.bare_url)
        requests = await self.prepare(count)
        before = await self.counts()
        cpu, loop_cpu = cpu_seconds(child.pid), main_thread_cpu_seconds(child.pid)
        stand_ins_cpu = cpu_seconds(self.stand_ins.pid)
        samples = await burst(self.session, url, requests, self.options.concurrency)
        answered = [s for s in samples if s.status == 200]
        seconds = max(s.answered for s in samples) - min(s.sent for s in samples)
        cards: list[float] = []
        missing = not_cards = 0
        to_last_card = math.nan
        if app == "bot":
            self.bot_commands += count
            arrived = await self.cards([s.token for s in answered], self.options.card_timeout)
            arrivals: dict[str, float] = arrived["arrivals"]
            cards = [arrivals[s.token] - s.sent for s in answered if s.token in arrivals]
            missing = int(arrived["missing"])
            if arrivals:
                to_last_card = max(arrivals.values()) - min(s.sent for s in samples)
            not_cards = len(arrivals) - int(arrived["cards"])
        await asyncio.sleep(SETTLE_SECONDS)
        cpu = cpu_seconds(child.pid) - cpu
        loop_cpu = main_thread_cpu_seconds(child.pid) - loop_cpu
        stand_ins_cpu = cpu_seconds(self.stand_ins.pid) - stand_ins_cpu
        after = await self.counts()
        return Round(
            app=app,
            number=number,
            commands=count,
            failed=count - len(answered),
            seconds=seconds,
            acks=[s.seconds for s in answered],
            cpu_seconds=cpu,
            loop_cpu_seconds=loop_cpu,
            standins_cpu_seconds=stand_ins_cpu,
            cards=cards,
            seconds_to_last_card=to_last_card,
            cards_missing=missing,
            not_cards=not_cards,
            dcs_calls=_delta(before["dcs"], after["dcs"]),
            slack_api_calls=sum(_delta(before["slack_api"], after["slack_api"]).values()),
            rss_mb=rss_bytes(child.pid) / MB,
        )

    async def slow_dcs(self) -> dict[str, Any]:
        """A burst while every DCS call takes ``slow_delay`` seconds: how soon do the acks come?"""
        requests = await self.prepare(self.options.slow_commands)
        await self._call("POST", "/dcs/slow", {"delay": self.options.slow_delay})
        try:
            samples = await burst(self.session, self.bot_url, requests, self.options.concurrency)
        finally:
            await self._call("POST", "/dcs/normal")
        self.bot_commands += len(requests)
        answered = [s for s in samples if s.status == 200]
        arrived = await self.cards([s.token for s in answered], self.options.card_timeout)
        arrivals: dict[str, float] = arrived["arrivals"]
        ack = Latency.of([s.seconds for s in answered])
        card = Latency.of([arrivals[s.token] - s.sent for s in answered if s.token in arrivals])
        return {
            "commands": len(requests),
            "failed": len(requests) - len(answered),
            "delay_s": self.options.slow_delay,
            "ack_p50_ms": json_number(ack.p50_ms),
            "ack_p99_ms": json_number(ack.p99_ms),
            "ack_max_ms": json_number(max((s.seconds for s in answered), default=math.nan) * 1000),
            "card_p50_ms": json_number(card.p50_ms),
            "card_p99_ms": json_number(card.p99_ms),
            "cards_missing": arrived["missing"],
        }

    async def confirms(self) -> dict[str, Any]:
        """One at a time: a command, its card, Confirm pressed, until the backup_id is in the channel."""
        seconds: list[float] = []
        server: list[float] = []
        problems: list[str] = []
        for index in range(self.options.confirms):
            instance = standins.CONFIRM_INSTANCES[index]
            [request] = await self.prepare(1, instances=[instance])
            user = standins.USERS[(self._sequence - 1) % len(standins.USERS)]
            [sample] = await burst(self.session, self.bot_url, [request], 1)
            self.bot_commands += 1
            arrived = await self.cards([request.token], 10.0)
            if sample.status != 200 or arrived["cards"] != 1:
                problems.append(f"{instance}: no card (ack {sample.status})")
                continue
            answer = await self._call(
                "POST",
                "/confirm",
                {
                    "token": request.token,
                    "user": user,
                    "bot_url": self.bot_url,
                    "instance": instance,
                    "timeout": 10.0,
                },
            )
            if "seconds" not in answer:
                problems.append(f"{instance}: {answer}")
                continue
            seconds.append(float(answer["seconds"]))
            if answer["create_seconds"] is not None:
                server.append(float(answer["create_seconds"]))
        latency, create = Latency.of(seconds), Latency.of(server)
        return {
            "samples": len(seconds),
            "p50_ms": json_number(latency.p50_ms),
            "p99_ms": json_number(latency.p99_ms),
            "emulator_create_server_p50_ms": json_number(create.p50_ms),
            "problems": problems,
        }


async def direct_creates(session: aiohttp.ClientSession, dcs_url: str, count: int) -> Latency:
    """The emulator's latency for create_backup as a client sees it: the bot's own DCS client, one call at
    a time, each on an instance of its own."""
    client = DcsClient(
        session,
        endpoint=dcs_url,
        project_id=standins.PROJECT_ID,
        auth=AkSkAuth(standins.ACCESS_KEY, standins.SECRET_KEY, standins.PROJECT_ID),
        timeout=10,
    )
    page = await client.list_instances(name="redis-direct", limit=100)
    instances = {i.name: i.instance_id for i in page.instances}
    durations = []
    for name in standins.DIRECT_INSTANCES[:count]:
        started = time.monotonic()
        await client.create_backup(instances[name], backup_format=BackupFormat.RDB, remark="bench")
        durations.append(time.monotonic() - started)
    return Latency.of(durations)


def _delta(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    return {key: value - before.get(key, 0) for key, value in after.items() if value - before.get(key, 0)}


def _bot_command() -> list[str]:
    """``dcs-bot serve`` as the README documents it: the console script next to this interpreter."""
    script = Path(sys.executable).with_name("dcs-bot")
    if script.exists():
        return [str(script), "serve"]
    return [sys.executable, "-m", "bot", "serve"]


def machine() -> dict[str, Any]:
    """The machine; the load average tells how much else ran on it (other processes skew the figures)."""
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }


def rows(bot: Mapping[str, float], bare: Mapping[str, float], extra: Mapping[str, Any]) -> list[Row]:
    def value(mapping: Mapping[str, Any], key: str) -> float:
        found = mapping.get(key)
        return math.nan if found is None else float(found)

    slow, confirm = extra["slow_dcs"], extra["confirm"]
    return [
        Row("throughput", bot["throughput_per_s"], bare["throughput_per_s"], "commands/s"),
        Row("ack p50", bot["ack_p50_ms"], bare["ack_p50_ms"], "ms"),
        Row("ack p99", bot["ack_p99_ms"], bare["ack_p99_ms"], "ms"),
        Row("CPU per command, app process", bot["cpu_ms_per_command"], bare["cpu_ms_per_command"], "ms"),
        Row(
            "  of which the main thread (event loop)",
            bot["loop_thread_cpu_ms_per_command"],
            bare["loop_thread_cpu_ms_per_command"],
            "ms",
        ),
        Row(
            "CPU per command, stand-ins",
            bot["standins_cpu_ms_per_command"],
            bare["standins_cpu_ms_per_command"],
            "ms",
        ),
        Row("throughput to the last card", bot["cards_per_s"], unit="commands/s"),
        Row("card p50 inside the burst", bot["card_p50_ms"], unit="ms"),
        Row("card p99 inside the burst", bot["card_p99_ms"], unit="ms"),
        Row("DCS calls per command", bot["dcs_calls_per_command"], unit=""),
        Row("Slack API calls per command", bot["slack_api_calls_per_command"], unit=""),
        Row(f"ack p50 while DCS takes {value(slow, 'delay_s'):g} s", value(slow, "ack_p50_ms"), unit="ms"),
        Row(f"ack p99 while DCS takes {value(slow, 'delay_s'):g} s", value(slow, "ack_p99_ms"), unit="ms"),
        Row("confirm → backup_id in channel p50", value(confirm, "p50_ms"), unit="ms"),
        Row("confirm → backup_id in channel p99", value(confirm, "p99_ms"), unit="ms"),
        Row("emulator create_backup, client p50", value(extra, "emulator_create_p50_ms"), unit="ms"),
        Row("emulator create_backup, server p50", value(confirm, "emulator_create_server_p50_ms"), unit="ms"),
        Row(f"RSS after {extra['rss_after_commands']} commands", extra["rss_mb"], extra["bare_rss_mb"], "MB"),
    ]


async def run(options: Options) -> dict[str, Any]:
    started = time.monotonic()
    before = machine()
    with tempfile.TemporaryDirectory(prefix="dcs-bench-") as folder:
        work = Path(folder)
        slack_port, dcs_port, control_port = free_port(), free_port(), free_port()
        slack_url, dcs_url = f"http://127.0.0.1:{slack_port}", f"http://127.0.0.1:{dcs_port}"
        control = f"http://127.0.0.1:{control_port}"
        (work / "policy.toml").write_text(POLICY)
        bot_port, bare_port = free_port(), free_port()
        bot_settings = {
            "SLACK_BOT_TOKEN": standins.BOT_TOKEN,
            "SLACK_SIGNING_SECRET": standins.SIGNING_SECRET,
            "SLACK_API_URL": f"{slack_url}/api/",
            "DCS_ENDPOINT": dcs_url,
            "DCS_PROJECT_ID": standins.PROJECT_ID,
            "DCS_ACCESS_KEY": standins.ACCESS_KEY,
            "DCS_SECRET_KEY": standins.SECRET_KEY,
            "DCS_TIMEOUT": str(max(15.0, options.slow_delay * 3)),
            "BOT_POLICY": str(work / "policy.toml"),
            "BOT_DATABASE": str(work / "bot.sqlite3"),
            "PORT": str(bot_port),
        }
        python = sys.executable
        async with (
            running(
                "standins",
                [python, "-m", "benchmarks.standins", str(slack_port), str(dcs_port), str(control_port)],
                settings={"PYTHONPATH": str(Path(__file__).parent.parent)},
                cwd=work,
                ready_url=f"{control}/info",
            ) as stand_ins,
            running(
                "bot",
                _bot_command(),
                settings=bot_settings,
                cwd=work,
                ready_url=f"http://127.0.0.1:{bot_port}/healthz",
            ) as bot,
            running(
                "bare",
                [
                    python,
                    "-m",
                    "benchmarks.bare",
                    str(bare_port),
                    standins.SIGNING_SECRET,
                    standins.BOT_TOKEN,
                    f"{slack_url}/api/",
                ],
                settings={"PYTHONPATH": str(Path(__file__).parent.parent)},
                cwd=work,
                ready_url=f"http://127.0.0.1:{bare_port}/healthz",
            ) as bare,
            client_session(options.concurrency) as session,
        ):
            bench = Bench(
                options,
                session,
                control=control,
                bot=bot,
                bot_url=f"http://127.0.0.1:{bot_port}/slack/events",
                bare=bare,
                bare_url=f"http://127.0.0.1:{bare_port}/slack/events",
                stand_ins=stand_ins,
            )
            profiler = await _start_profiler(options.profile, bot.pid)
            try:
                results = await _measure(bench, options, dcs_url, started)
                results["machine"] = before | {"load_average_at_end": machine()["load_average"]}
                return results
            except BaseException:
                for child in (bot, bare, stand_ins):
                    print(f"--- {child.name} log (tail) ---\n{child.tail()}", file=sys.stderr)
                raise
            finally:
                await _stop_profiler(profiler)


async def _measure(bench: Bench, options: Options, dcs_url: str, started: float) -> dict[str, Any]:
    print(f"warm-up: {options.warmup} commands to each app")
    for app in ("bot", "bare"):
        await bench.run_burst(app, 0, options.warmup)
    rounds: list[Round] = []
    for number in range(1, options.rounds + 1):
        for app in ("bot", "bare"):
            measured = await bench.run_burst(app, number, options.burst)
            print(measured.line())
            rounds.append(measured)
    while bench.bot_commands < options.rss_commands:
        count = min(options.burst, options.rss_commands - bench.bot_commands)
        print(f"  bot: {count} more commands, for its RSS after {options.rss_commands}")
        await bench.run_burst("bot", 0, count)
    rss_after = bench.bot_commands
    rss_mb = rss_bytes(bench.bot.pid) / MB
    bare_rss_mb = rss_bytes(bench.bare.pid) / MB
    print(f"  bot: {options.slow_commands} commands while every DCS call takes {options.slow_delay:g} s")
    slow = await bench.slow_dcs()
    print(f"  bot: {options.confirms} confirm clicks, one at a time")
    confirm = await bench.confirms()
    emulator = await direct_creates(bench.session, dcs_url, options.confirms)
    bot = pooled([r for r in rounds if r.app == "bot"])
    bare = pooled([r for r in rounds if r.app == "bare"])
    extra: dict[str, Any] = {
        "slow_dcs": slow,
        "confirm": confirm,
        "emulator_create_p50_ms": json_number(emulator.p50_ms),
        "emulator_create_p99_ms": json_number(emulator.p99_ms),
        "rss_mb": rss_mb,
        "bare_rss_mb": bare_rss_mb,
        "rss_after_commands": rss_after,
    }
    values = {
        "throughput_ratio": ratio(bot["throughput_per_s"], bare["throughput_per_s"]),
        "ack_p99_ratio": ratio(bot["ack_p99_ms"], bare["ack_p99_ms"]),
        "cpu_per_command_ratio": ratio(bot["cpu_ms_per_command"], bare["cpu_ms_per_command"]),
        "card_p50_ms": bot["card_p50_ms"],
        "slow_dcs_ack_p99_ms": _float(slow.get("ack_p99_ms")),
        "confirm_above_emulator_p50_ms": _float(confirm.get("p50_ms")) - emulator.p50_ms,
        "rss_mb": rss_mb,
        "dcs_calls_per_command": bot["dcs_calls_per_command"],
    }
    verdicts = judge(values)
    table = render_table(rows(bot, bare, extra), verdicts)
    return {
        "options": {
            key: str(value) if isinstance(value, Path) else value for key, value in asdict(options).items()
        },
        "command": "make bench  (python -m benchmarks " + " ".join(sys.argv[1:]) + ")",
        "rounds": [r.summary() for r in rounds],
        "bot": {key: json_number(value) for key, value in bot.items()},
        "bare": {key: json_number(value) for key, value in bare.items()},
        "bot_only": {
            **extra,
            "rss_mb": json_number(rss_mb),
            "bare_rss_mb": json_number(bare_rss_mb),
        },
        "targets": [verdict.as_json() for verdict in verdicts],
        "table": table,
        "wall_seconds": round(time.monotonic() - started, 1),
    }


def _float(value: object) -> float:
    return math.nan if value is None else float(str(value))


def _py_spy(target: Path) -> str:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        raise SystemExit("--profile needs py-spy (.venv/bin/pip install py-spy)")
    target.parent.mkdir(parents=True, exist_ok=True)
    return spy


async def _start_profiler(target: Path | None, pid: int) -> asyncio.subprocess.Process | None:
    if target is None:
        return None
    spy = _py_spy(target)
    return await asyncio.create_subprocess_exec(
        spy,
        "record",
        "--pid",
        str(pid),
        "--rate",
        "250",
        "--format",
        "raw",
        "--gil",
        "--output",
        str(target),
        stdout=asyncio.subprocess.DEVNULL,
    )


async def _stop_profiler(profiler: asyncio.subprocess.Process | None) -> None:
    if profiler is None or profiler.returncode is not None:
        return
    profiler.send_signal(signal.SIGINT)
    await profiler.wait()


def main(options: Options) -> int:
    print(
        f"== commands: the bot (A) against a bare Bolt app (B), {options.rounds} rounds of {options.burst} "
        f"at concurrency {options.concurrency} =="
    )
    results = asyncio.run(run(options))
    print()
    print(results["table"])
    options.output.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    load = results["machine"]["load_average"], results["machine"]["load_average_at_end"]
    print(f"\nload average (1, 5, 15 min) at start {load[0]}, at end {load[1]} on {os.cpu_count()} cores")
    print(f"JSON: {options.output}  ({results['wall_seconds']} s)")
    failed = sum(r["failed"] + r["cards_missing"] for r in results["rounds"])
    if failed:
        print(f"PROBLEM: {failed} commands without an ack or a card", file=sys.stderr)
    return 1 if failed else 0
