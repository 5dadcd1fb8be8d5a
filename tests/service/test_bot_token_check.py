"""``dcs-bot serve`` checks the bot token with ``auth.test`` at start-up, in HTTP and Socket Mode: a token
Slack refuses stops start-up with one line and no traceback; Slack out of reach is a warning, and the bot
serves anyway."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from bot.standins.faults import Answer, Fault
from tests.e2e.conftest import BOT_TOKEN, StandIns
from tests.service.conftest import APP_TOKEN, serve, socket_mode_slack
from tests.service.process import running_bot, wait_until_serving
from tests.service.test_process import settings_for

REFUSED = "xoxb-1-not-the-bot-token-0123456789"


async def in_mode(
    stand_ins: StandIns, settings: dict[str, str], socket_mode: bool, servers: list[TestServer]
) -> None:
    if not socket_mode:
        return
    stand_ins.slack = socket_mode_slack()
    stand_ins.slack.bind(await serve(stand_ins.slack.app(), servers))
    settings |= {"SLACK_API_URL": stand_ins.slack.api_url, "SLACK_APP_TOKEN": APP_TOKEN}
    del settings["SLACK_SIGNING_SECRET"]


MODES = pytest.mark.parametrize("socket_mode", [False, True], ids=["http", "socket-mode"])


@MODES
async def test_a_refused_bot_token_stops_start_up_with_one_line(
    tmp_path: Path, stand_ins: StandIns, socket_mode: bool
) -> None:
    servers: list[TestServer] = []
    settings = settings_for(tmp_path, stand_ins)
    try:
        await in_mode(stand_ins, settings, socket_mode, servers)
        settings["SLACK_BOT_TOKEN"] = REFUSED

        async with running_bot(["serve"], settings, cwd=tmp_path) as bot:
            code = await bot.exit_code()
    finally:
        for server in servers:
            await server.close()

    assert code == 2, bot.stderr
    assert bot.stderr[-1] == "dcs-bot: SLACK_BOT_TOKEN: Slack refused the bot token (invalid_auth)", (
        bot.stderr
    )
    everything = "\n".join(bot.stderr + bot.stdout)
    assert "Traceback" not in everything
    assert REFUSED not in everything and "not-the-bot-token" not in everything
    assert [call.method for call in stand_ins.slack.calls()] == ["auth.test"], "nothing before the check"
    assert stand_ins.dcs.calls == []


@MODES
async def test_the_accepted_bot_token_is_checked_once_and_the_bot_serves(
    tmp_path: Path, stand_ins: StandIns, socket_mode: bool
) -> None:
    servers: list[TestServer] = []
    settings = settings_for(tmp_path, stand_ins)
    try:
        await in_mode(stand_ins, settings, socket_mode, servers)
        async with running_bot(["serve"], settings, cwd=tmp_path) as bot:
            await wait_until_serving(f"http://127.0.0.1:{settings['PORT']}/healthz", bot)
            await bot.wait_for_line("Slack accepted the bot token", stream="stderr")
    finally:
        for server in servers:
            await server.close()

    [check, *_] = stand_ins.slack.calls()
    assert check.method == "auth.test"
    assert BOT_TOKEN not in "\n".join(bot.stderr)


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(Fault(Answer.NOTHING, target="auth.test", times=10), id="connection-closed"),
        pytest.param(Fault(Answer.HTML, target="auth.test", status=502, times=10), id="html-502"),
        pytest.param(
            Fault(Answer.ERROR, target="auth.test", error="internal_error", times=10), id="internal"
        ),
    ],
)
async def test_slack_out_of_reach_at_start_up_is_a_warning(
    tmp_path: Path, stand_ins: StandIns, fault: Fault
) -> None:
    settings = settings_for(tmp_path, stand_ins)
    stand_ins.slack.inject(fault)

    async with running_bot(["serve"], settings, cwd=tmp_path) as bot:
        await wait_until_serving(f"http://127.0.0.1:{settings['PORT']}/healthz", bot)
        line = await bot.wait_for_line("could not check the bot token", stream="stderr")

    entry = json.loads(line)
    assert entry["level"] == "warning"
    assert "starting anyway" in entry["message"]
    assert "Traceback" not in "\n".join(bot.stderr)


async def test_slack_unreachable_at_start_up_is_a_warning(tmp_path: Path) -> None:
    # Without stand-ins every URL points at a port where nothing listens.
    settings = settings_for(tmp_path)

    async with running_bot(["serve"], settings, cwd=tmp_path) as bot:
        await wait_until_serving(f"http://127.0.0.1:{settings['PORT']}/metrics", bot)
        line = await bot.wait_for_line("could not check the bot token", stream="stderr")

    assert json.loads(line)["level"] == "warning"
    assert "Traceback" not in "\n".join(bot.stderr)
