"""``cp .env.example .env && dcs-bot serve`` in a fresh folder: each placeholder is refused on a line."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import DEFAULT_POLICY, StandIns, bot_environment
from tests.service.process import WAIT, child_env, free_port, running_bot, wait_until_serving

REPOSITORY = Path(__file__).resolve().parents[2]
#: The console script that ``pip install`` made next to this interpreter (``.venv/bin/dcs-bot``).
DCS_BOT = Path(sys.executable).with_name("dcs-bot")

PLACEHOLDERS = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "DCS_PROJECT_ID",
    "DCS_ACCESS_KEY",
    "DCS_SECRET_KEY",
)


def test_the_example_settings_do_not_start_the_server(tmp_path: Path) -> None:
    shutil.copy(REPOSITORY / ".env.example", tmp_path / ".env")
    shutil.copy(REPOSITORY / "examples" / "policy.toml", tmp_path / "policy.toml")

    finished = subprocess.run(
        [str(DCS_BOT), "serve"],
        env=child_env({"PORT": str(free_port())}),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )

    assert finished.returncode == 2, finished.stderr
    assert finished.stdout == ""
    assert "Traceback" not in finished.stderr
    lines = finished.stderr.splitlines()
    assert sorted(line.split(":")[1].strip() for line in lines) == sorted(PLACEHOLDERS), lines
    for line in lines:
        assert line.startswith("dcs-bot: "), line
        assert "placeholder" in line, line
        assert "replace-" not in line, line


def test_a_clouds_file_is_accepted_but_not_served_yet(tmp_path: Path) -> None:
    settings = {
        "SLACK_BOT_TOKEN": "xoxb-1-not-checked",
        "SLACK_SIGNING_SECRET": "not-checked",
        "BOT_CLOUDS": str(tmp_path / "clouds.toml"),
        "PORT": str(free_port()),
    }

    finished = subprocess.run(
        [str(DCS_BOT), "serve"],
        env=child_env(settings),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )

    assert finished.returncode == 2, finished.stderr
    [line] = finished.stderr.splitlines()
    assert line.startswith("dcs-bot: BOT_CLOUDS: several clouds are not served by this version yet"), line


async def test_policy_warnings_are_logged_at_start_up_and_the_bot_runs(
    tmp_path: Path, stand_ins: StandIns
) -> None:
    port = free_port()
    # A member of SSRE1 who is also Bob would skip the four-eyes rule below: a warning, not an error.
    settings = bot_environment(tmp_path, stand_ins, DEFAULT_POLICY, port, BOT_LOG_FORMAT="json")

    async with running_bot(["serve"], settings, cwd=tmp_path) as bot:
        await wait_until_serving(f"http://127.0.0.1:{port}/healthz", bot)
        bot.signal(signal.SIGTERM)
        code = await bot.exit_code()

    assert code == 0, bot.stderr
    warnings = [json.loads(line) for line in bot.stderr if '"warning"' in line]
    assert any(
        "rule 'staging-four-eyes' (approval = \"peer\") can be skipped" in entry["message"]
        for entry in warnings
    ), bot.stderr
