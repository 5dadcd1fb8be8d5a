"""``python -m bot`` as a real process: start-up errors, the emulator command, and SIGTERM while a backup
call is in flight (the result is still posted, the exit code is 0), with the logs as JSON lines."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.typedefs import Handler

from bot.standins.slack.delivery import DISPATCH_FAILED, Delivery
from bot.standins.slack.timeline import SLACKBOT_USER_ID
from tests.e2e.conftest import (
    ACCESS_KEY,
    ALICE,
    BOT_TOKEN,
    DEFAULT_POLICY,
    OPS,
    PROJECT_ID,
    SECRET_KEY,
    SIGNING_SECRET,
    DcsGate,
    Driver,
    StandIns,
    StandInsFactory,
)
from tests.service.conftest import APP_TOKEN, SECRETS, Remote, serve, socket_mode_slack
from tests.service.process import (
    free_port,
    free_ports,
    run_cli,
    running_bot,
    wait_until_closed,
    wait_until_serving,
)


class CreateBackupGate(DcsGate):
    """Holds only CreateBackup calls (POST …/backups); everything else reaches the emulator at once."""

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "POST" and request.path.endswith("/backups"):
            return await super().middleware(request, handler)
        return await handler(request)


def settings_for(folder: Path, stand_ins: StandIns | None = None) -> dict[str, str]:
    """Complete, valid settings; without stand-ins they point at a port where nothing listens."""
    policy = folder / "policy.toml"
    policy.write_text(DEFAULT_POLICY, encoding="utf-8")
    return {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": stand_ins.slack.api_url if stand_ins else "http://127.0.0.1:9/api/",
        "DCS_ENDPOINT": stand_ins.dcs_url if stand_ins else "http://127.0.0.1:9",
        "DCS_PROJECT_ID": PROJECT_ID,
        "DCS_ACCESS_KEY": ACCESS_KEY,
        "DCS_SECRET_KEY": SECRET_KEY,
        "DCS_TIMEOUT": "15",
        "BOT_POLICY": str(policy),
        "BOT_DATABASE": str(folder / "bot.sqlite3"),
        "BOT_POLL_INTERVAL": "0.05",
        "BOT_LEASE_TTL": "1",
        "BOT_LOG_FORMAT": "json",
        "PORT": str(free_port()),
    }


def assert_one_line_naming(stderr: str, setting: str) -> None:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"dcs-bot: {setting}: "), stderr
    assert "Traceback" not in stderr


def break_policy(folder: Path) -> dict[str, str | None]:
    broken = folder / "broken.toml"
    broken.write_text('[[rules]]\nname = "x"\nusers = ["UALICE1"]\nactions = ["fly"]\n', encoding="utf-8")
    return {"BOT_POLICY": str(broken)}


def unwritable_database(folder: Path) -> dict[str, str | None]:
    # Inside a regular file: unusable even for root, who may write anywhere else.
    (folder / "a-file").write_text("", encoding="utf-8")
    return {"BOT_DATABASE": str(folder / "a-file" / "bot.sqlite3")}


@pytest.mark.parametrize(
    ("setting", "change"),
    [
        pytest.param("DCS_PROJECT_ID", lambda folder: {"DCS_PROJECT_ID": None}, id="missing"),
        pytest.param("BOT_POLL_INTERVAL", lambda folder: {"BOT_POLL_INTERVAL": "soon"}, id="not-a-number"),
        pytest.param(
            "SLACK_BOT_TOKEN", lambda folder: {"SLACK_BOT_TOKEN": "xoxp-user-token"}, id="bad-token"
        ),
        pytest.param("SLACK_SIGNING_SECRET", lambda folder: {"SLACK_SIGNING_SECRET": None}, id="http-mode"),
        pytest.param("BOT_POLICY", break_policy, id="broken-policy"),
        pytest.param("BOT_DATABASE", unwritable_database, id="unwritable-database"),
    ],
)
def test_a_bad_setting_stops_start_up_with_one_line(
    tmp_path: Path, setting: str, change: Callable[[Path], dict[str, str | None]]
) -> None:
    settings = settings_for(tmp_path)
    for name, value in change(tmp_path).items():
        if value is None:
            del settings[name]
        else:
            settings[name] = value

    finished = run_cli(["serve"], settings, cwd=tmp_path)

    assert finished.returncode == 2, finished.stderr
    assert_one_line_naming(finished.stderr, setting)
    assert finished.stdout == ""
    for secret in (BOT_TOKEN, SIGNING_SECRET, SECRET_KEY):
        assert secret not in finished.stderr


async def test_a_refused_app_token_stops_serve_with_one_line(tmp_path: Path, stand_ins: StandIns) -> None:
    settings = settings_for(tmp_path, stand_ins)
    del settings["SLACK_SIGNING_SECRET"]
    settings["SLACK_APP_TOKEN"] = "xapp-1-A0DCSBACKUP-1-not-the-token"

    async with running_bot(["serve"], settings, cwd=tmp_path) as bot:
        code = await bot.exit_code()

    assert code == 2
    # The JSON log lines of start-up come first; the last line is the one that explains.
    assert bot.stderr[-1].startswith("dcs-bot: SLACK_APP_TOKEN: Slack refused the app-level token"), (
        bot.stderr
    )
    assert "Traceback" not in "\n".join(bot.stderr)
    assert "not-the-token" not in "\n".join(bot.stderr)


async def test_the_emulator_command_prints_connection_settings(tmp_path: Path) -> None:
    port = free_port()

    async with running_bot(["emulator", "--port", str(port)], {}, cwd=tmp_path) as emulator:
        await emulator.wait_for_line("DCS_PASSWORD=")
        emulator.signal(signal.SIGINT)
        code = await emulator.exit_code()

    shown = "\n".join(emulator.stdout)
    assert code == 0, emulator.stderr
    assert f"listening on http://127.0.0.1:{port}" in shown
    for name in ("DCS_ENDPOINT", "DCS_PROJECT_ID", "DCS_ACCESS_KEY", "DCS_SECRET_KEY", "DCS_IAM_ENDPOINT"):
        assert f"  {name}=" in shown


@pytest.mark.parametrize("socket_mode", [False, True], ids=["http", "socket-mode"])
async def test_sigterm_lets_the_backup_call_in_flight_finish_and_post(
    tmp_path: Path, stand_ins_factory: StandInsFactory, socket_mode: bool
) -> None:
    gate = CreateBackupGate()
    stand_ins = await stand_ins_factory(dcs_gate=gate)
    servers: list[TestServer] = []
    settings = settings_for(tmp_path, stand_ins)
    base_url = f"http://127.0.0.1:{settings['PORT']}"
    target: str | Delivery = f"{base_url}/slack/events"
    if socket_mode:
        stand_ins.slack = socket_mode_slack()
        stand_ins.slack.bind(await serve(stand_ins.slack.app(), servers))
        settings |= {"SLACK_API_URL": stand_ins.slack.api_url, "SLACK_APP_TOKEN": APP_TOKEN}
        del settings["SLACK_SIGNING_SECRET"]
        target = stand_ins.slack.socket_delivery()
    slack = stand_ins.slack
    driver = Remote(stand_ins=stand_ins, bot_url=f"{base_url}/slack/events", target=target)

    try:
        async with running_bot(["serve"], settings, cwd=tmp_path) as bot:
            await wait_until_serving(f"{base_url}/healthz", bot)
            if socket_mode:
                await slack.wait_for_socket()
            card = await driver.card('redis-prod aof "in flight"')
            assert await driver.click(card, "backup_confirm") == 200
            await gate.held("POST /v2/")

            bot.signal(signal.SIGTERM)
            await wait_until_closed(f"{base_url}/healthz")
            await slack.wait_until(lambda: not slack.socket.live, what="the socket closed")
            late = await driver.command("redis-prod rdb")
            assert (late.status, late.reply.error) == (0, DISPATCH_FAILED), "the bot takes no new work"
            assert bot.process.returncode is None, "the bot waits for the call in flight"

            gate.open()
            posted = await driver.channel_message(OPS)
            code = await bot.exit_code()
    finally:
        gate.open()
        for server in servers:
            await server.close()

    assert code == 0, bot.stderr
    [backup] = stand_ins.dcs.backups_of(stand_ins.prod.instance_id)
    assert backup.backup_id in posted.shown and f"<@{ALICE}>" in posted.shown
    from_bot = [m for m in slack.ephemeral_for(ALICE) if m.author != SLACKBOT_USER_ID]
    assert from_bot == [card], "the late command got no card, only Slack's own error"
    entries = [json.loads(line) for line in bot.stderr]
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries), bot.stderr
    messages = [str(entry["message"]) for entry in entries]
    assert any(message.startswith("dcs-bot starting") for message in messages)
    assert any(message.startswith("taking no new work; waiting") for message in messages)
    assert not [secret for secret in SECRETS if secret in "\n".join(bot.stderr)]


def replace_file(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


async def test_sighup_reloads_the_policy_and_a_broken_file_keeps_the_last_good_one(
    tmp_path: Path, stand_ins: StandIns
) -> None:
    settings = settings_for(tmp_path, stand_ins)
    policy = Path(settings["BOT_POLICY"])
    health = f"http://127.0.0.1:{settings['PORT']}/healthz"
    remote = Driver(stand_ins=stand_ins, bot_url=f"http://127.0.0.1:{settings['PORT']}/slack/events")

    async with running_bot(["serve"], settings, cwd=tmp_path) as bot:
        await wait_until_serving(health, bot)
        replace_file(policy, f'admins = ["{ALICE}"]\n')
        bot.signal(signal.SIGHUP)
        await bot.wait_for_line("policy reloaded", stream="stderr")
        # The new policy has no rules; alice is an admin now, so help says so.
        await remote.command("help")
        answer = await remote.reply_to(ALICE)
        assert "you are a bot admin" in str(answer.blocks)

        replace_file(policy, '[[rules]]\nname = "x"\nactions = ["fly"]\n')
        bot.signal(signal.SIGHUP)
        line = await bot.wait_for_line("policy reload failed", stream="stderr")
        assert "keeping the previous policy" in line
        await remote.command("help")
        answer = await remote.reply_to(ALICE, 2)
        assert "you are a bot admin" in str(answer.blocks)

        bot.signal(signal.SIGTERM)
        assert await bot.exit_code() == 0


async def test_the_emulator_serves_two_clouds_and_prints_their_clouds_file(tmp_path: Path) -> None:
    port = free_ports(2)

    args = ["emulator", "--port", str(port), "--clouds", "2"]
    async with running_bot(args, {}, cwd=tmp_path) as emulator:
        await emulator.wait_for_line("the bot serves both clouds")
        emulator.signal(signal.SIGINT)
        code = await emulator.exit_code()

    shown = "\n".join(emulator.stdout)
    assert code == 0, emulator.stderr
    assert f'endpoint = "http://127.0.0.1:{port}"' in shown
    assert f'endpoint = "http://127.0.0.1:{port + 1}"' in shown
    for line in ('name = "eu-de"', 'name = "eu-nl"', 'secret_key_env = "DCS_EU_DE_SECRET_KEY"'):
        assert line in shown
    assert 'password_env = "DCS_EU_NL_PASSWORD"' in shown
    assert "  DCS_EU_DE_SECRET_KEY=" in shown and "  DCS_EU_NL_PASSWORD=" in shown
