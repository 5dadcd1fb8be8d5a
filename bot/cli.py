"""``dcs-bot``: serve, demo, console, emulator, check-policy, audit."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from aiohttp import web
from aiohttp.web_log import AccessLogger

from bot.clouds_file import clouds_of
from bot.config import ConfigError, clouds_path, database_path, load_settings
from bot.core.rules.audit import AuditRecord
from bot.core.rules.policy_warnings import policy_warnings
from bot.database_url import PostgresUrl
from bot.logs import configure_logging
from bot.policy_file import PolicyError, PolicyHolder, read_cloud_names, read_policy
from bot.standins.dcs.control import DEFAULT_PORT as DEFAULT_EMULATOR_PORT
from bot.store.audit import SqlAuditLog
from bot.store.database import database_problem, open_database
from bot.store.engine import DATABASE_ERRORS

log = logging.getLogger("bot")

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_STARTUP = 2


class QuietEventsAccessLogger(AccessLogger):
    """aiohttp's access log, without a line for each answered ``POST /slack/events``: one per Slack
    command or click, formatted on the event loop, was 5 % of the bot's CPU in a burst. An answer of 400 or
    more to it is still logged, as is every request to any other path (the operations endpoints)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if response.status < 400 and request.path == "/slack/events":
            return
        super().log(request, response, time)


def _fail(*lines: str) -> int:
    for line in lines:
        print(f"dcs-bot: {line}", file=sys.stderr)
    return EXIT_STARTUP


def serve() -> int:
    try:
        settings = load_settings()
    except ConfigError as error:
        return _fail(*error.problems)
    try:
        clouds = clouds_of(settings)
    except ConfigError as error:
        return _fail(*error.problems)
    secrets = settings.secrets() + [secret for each in clouds for secret in each.secrets()]
    configure_logging(settings.bot_log_format, secrets)
    # A warning (e.g. a coroutine never awaited) would otherwise be a plain-text line among JSON ones.
    logging.captureWarnings(True)
    try:
        policy = PolicyHolder(settings.bot_policy, frozenset(each.name for each in clouds))
    except PolicyError as error:
        return _fail(f"BOT_POLICY: {error}")
    problem = asyncio.run(_database_problem(settings.bot_database))
    if problem is not None:
        return _fail(f"BOT_DATABASE: {settings.bot_database}: {problem}")
    from bot.bootstrap import create_app  # imported late: start-up errors above need none of it

    app = create_app(settings, policy, clouds=clouds)

    async def announce_and_reload_on_sighup(app: web.Application) -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, policy.reload)
        mode = (
            "Socket Mode"
            if settings.socket_mode
            else f"HTTP mode, POST /slack/events on port {settings.port}"
        )
        if settings.bot_ops_port is not None:
            mode += f"; /livez, /readyz, /healthz and /metrics on port {settings.bot_ops_port}"
        if settings.dcs_access_key and settings.dcs_username:
            log.warning("both AK/SK and IAM password settings are present; using AK/SK")
        log.info(
            "dcs-bot starting: %s; DCS %s; policy %s (%d rules); database %s",
            mode,
            "; ".join(
                f"cloud {cloud.name} at {cloud.endpoint} (project {cloud.project_id}, {cloud.auth_method})"
                for cloud in clouds
            ),
            settings.bot_policy,
            len(policy().rules),
            settings.bot_database,
        )
        policy.log_warnings()

    app.on_startup.append(announce_and_reload_on_sighup)
    try:
        web.run_app(
            app,
            port=settings.port,
            print=None,
            handle_signals=True,
            access_log_class=QuietEventsAccessLogger,
        )
    except ConfigError as error:
        return _fail(*error.problems)
    except OSError as error:
        return _fail(f"PORT: cannot listen on {settings.port} ({error.strerror or error})")
    return EXIT_OK


_OPENING_ERRORS: tuple[type[Exception], ...] = (*DATABASE_ERRORS, RuntimeError, TimeoutError)


async def _database_problem(target: Path | PostgresUrl) -> str | None:
    """Why the database cannot be used, in one line without its password, or None."""
    threads = set(threading.enumerate())
    try:
        database = await open_database(target)
    except _OPENING_ERRORS as error:
        # When connecting fails, aiosqlite stops its worker thread without waiting for it. Should this
        # loop close first, the thread dies with a traceback on stderr; so it is waited for here.
        if isinstance(target, Path):
            started = [thread for thread in threading.enumerate() if thread not in threads]
            await asyncio.to_thread(_join, started, timeout=5.0)
        return database_problem(error, target)
    await database.close()
    return None


def _join(threads: Sequence[threading.Thread], *, timeout: float) -> None:
    for thread in threads:
        thread.join(timeout)


def check_policy(path: Path, clouds: Path | None = None) -> int:
    """Every problem of the policy file (exit 1), or ok and its warnings (exit 0). The clouds come from
    ``--clouds`` or else ``BOT_CLOUDS``; without either, cloud names are not checked against a list."""
    try:
        clouds = clouds or clouds_path()
        known = read_cloud_names(clouds) if clouds is not None else None
        policy = read_policy(path, known)
    except PolicyError as error:
        print(f"{error.source}: {len(error.problems)} problem(s)")
        for problem in error.problems:
            print(f"  - {problem}")
        return EXIT_INVALID
    print(
        f"{path}: ok — {len(policy.admins)} admin(s), {len(policy.rules)} rule(s), "
        f"{len(policy.watch)} watch(es)"
    )
    for warning in policy_warnings(policy):
        print(f"warning: {warning}")
    return EXIT_OK


_AUDIT_COLUMNS = ("seq", "at", "kind", "user", "channel", "cloud", "instance", "backup_id", "rule", "outcome")
# Where each table column comes from in the database; "at" is printed in a fixed-width ISO form.
_STORED = {
    "seq": "seq",
    "kind": "kind",
    "user": "user_id",
    "channel": "channel_id",
    "cloud": "cloud",
    "instance": "instance_name",
    "backup_id": "backup_id",
    "rule": "rule",
}
_AT_WIDTH = len(datetime(2026, 1, 1, tzinfo=UTC).isoformat(timespec="seconds"))


def _audit_row(record: AuditRecord) -> dict[str, object]:
    entry = record.entry
    return {
        "seq": record.seq,
        "at": record.at.isoformat(timespec="seconds"),
        "kind": str(entry.kind),
        "user": entry.user_id,
        "channel": entry.channel_id,
        "request_id": entry.request_id,
        "cloud": entry.cloud,
        "instance_id": entry.instance_id,
        "instance": entry.instance_name,
        "backup_id": entry.backup_id,
        "rule": entry.rule,
        "outcome": entry.outcome,
        "detail": entry.detail,
    }


async def print_audit(log: SqlAuditLog, since: datetime | None, output_format: str, out: TextIO) -> None:
    """Writes the trail (from ``since``) to ``out`` as it is read, in constant memory. A table's column
    widths come from the database first, so that its lines need not be held to be lined up."""
    upto = await log.last_seq()
    records = log.stream(since, upto=upto)
    if output_format == "jsonl":
        async for record in records:
            out.write(json.dumps(_audit_row(record), ensure_ascii=False, default=str) + "\n")
        return
    longest = await log.longest(list(_STORED.values()), since, upto=upto)
    widths = [
        max(len(column), _AT_WIDTH if column == "at" else longest.get(_STORED.get(column, ""), 0))
        for column in _AUDIT_COLUMNS
    ]
    # The last column is not padded, so its width does not matter.
    widths[-1] = 0
    out.write(_table_line(_AUDIT_COLUMNS, widths))
    async for record in records:
        row = _audit_row(record)
        out.write(_table_line(["" if row[c] is None else str(row[c]) for c in _AUDIT_COLUMNS], widths))


def _table_line(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip() + "\n"


async def _print_audit(
    database: Path | PostgresUrl, since: datetime | None, output_format: str, out: TextIO
) -> None:
    connection = await open_database(database)
    try:
        await print_audit(SqlAuditLog(connection, lambda: datetime.now(UTC)), since, output_format, out)
        out.flush()
    finally:
        await connection.close()


def audit(output_format: str, since: str | None) -> int:
    start = None
    if since is not None:
        try:
            start = datetime.fromisoformat(since)
        except ValueError:
            return _fail(
                f"--since: {since!r} is not an ISO date or time (e.g. 2026-11-26 or 2026-11-26T10:00)"
            )
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
    try:
        database = database_path()
    except ConfigError as error:
        return _fail(*error.problems)
    if isinstance(database, Path) and not database.exists():
        return _fail(f"BOT_DATABASE: {database} does not exist (has the bot run here yet?)")
    try:
        asyncio.run(_print_audit(database, start, output_format, sys.stdout))
    except BrokenPipeError:
        # The reader went away (`dcs-bot audit | head`): that ends the output, quietly. Python would flush
        # stdout once more at exit and report the same error, so stdout goes to devnull first, as the
        # Python documentation recommends (signal module, "Note on SIGPIPE").
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return EXIT_OK


def emulator(port: int, clouds: int = 1) -> int:
    from bot.standins.dcs.control import ConnectionInfo, EmulatedCloud, serve, serve_estate

    def show(info: ConnectionInfo) -> None:
        print(f"DCS emulator listening on {info.endpoint} (Ctrl-C stops it). Point a bot at it with:")
        for name, value in info.env().items():
            print(f"  {name}={value}")
        print("Use either DCS_ACCESS_KEY/DCS_SECRET_KEY or the DCS_IAM_* settings.", flush=True)

    def show_estate(estate: list[EmulatedCloud]) -> None:
        print(f"DCS emulator serving {len(estate)} clouds (Ctrl-C stops it). A clouds file (BOT_CLOUDS):\n")
        for cloud in estate:
            print(f"# {cloud.name}: {cloud.running.url}")
            print(cloud.toml())
        print("and its secrets in the environment:")
        for cloud in estate:
            for name, value in cloud.env().items():
                print(f"  {name}={value}")
        print(
            "Put these blocks in a clouds file (BOT_CLOUDS) and the bot serves both clouds: "
            "eu-de/redis-prod and eu-nl/redis-prod address one each.",
            flush=True,
        )

    try:
        if clouds == 1:
            asyncio.run(serve(port=port, on_ready=show))
        else:
            asyncio.run(serve_estate(clouds, port=port, on_ready=show_estate))
    except KeyboardInterrupt:
        pass
    except OSError as error:
        return _fail(f"--port: cannot listen on {port} ({error.strerror or error})")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dcs-bot", description="Back up DCS (managed Redis) from Slack.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "serve", help="run the bot (Socket Mode if SLACK_APP_TOKEN is set, else HTTP on PORT)"
    )
    commands.add_parser("demo", help="play a scripted conversation against local stand-ins")
    commands.add_parser("console", help="type slash commands against local stand-ins")
    emulator_parser = commands.add_parser("emulator", help="run the DCS emulator alone")
    emulator_parser.add_argument(
        "--port", type=int, default=DEFAULT_EMULATOR_PORT, help="default %(default)s (the next cloud: +1)"
    )
    emulator_parser.add_argument(
        "--clouds",
        type=int,
        choices=(1, 2),
        default=1,
        help="how many clouds to serve, each with its own project, credentials and instances "
        "(2: OTC eu-de with AK/SK and eu-nl with an IAM user)",
    )
    check = commands.add_parser("check-policy", help="validate a policy file")
    check.add_argument("file", type=Path)
    check.add_argument(
        "--clouds",
        type=Path,
        metavar="FILE",
        help="the clouds file whose names rules may use (default BOT_CLOUDS)",
    )
    audit_parser = commands.add_parser("audit", help="print the audit trail")
    audit_parser.add_argument("--format", choices=("table", "jsonl"), default="table")
    audit_parser.add_argument("--since", help="only records at or after this ISO date/time (UTC if no zone)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    match args.command:
        case "serve":
            return serve()
        case "check-policy":
            return check_policy(args.file, args.clouds)
        case "audit":
            return audit(args.format, args.since)
        case "emulator":
            return emulator(args.port, args.clouds)
        case "demo":
            from bot.demo import demo

            return demo()
        case _:
            from bot.demo import console

            return console()
