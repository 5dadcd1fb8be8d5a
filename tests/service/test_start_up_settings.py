"""``cp .env.example .env && dcs-bot serve`` in a fresh folder: each placeholder is refused on a line."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp

from tests.e2e.conftest import ACCESS_KEY, DEFAULT_POLICY, PROJECT_ID, SECRET_KEY, StandIns, bot_environment
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


def clouds_file(name: str, endpoint: str, secret: str = 'secret_key_env = "DCS_SECRET"') -> str:
    return (
        f'[[clouds]]\nname = "{name}"\nendpoint = "{endpoint}"\nproject_id = "{PROJECT_ID}"\n'
        f'access_key = "{ACCESS_KEY}"\n{secret}\n'
    )


def refusal(tmp_path: Path, settings: dict[str, str], policy: str = "") -> str:
    """The one line ``dcs-bot serve`` refuses to start with (exit 2, no traceback)."""
    (tmp_path / "policy.toml").write_text(policy or DEFAULT_POLICY, encoding="utf-8")
    environment = {
        "SLACK_BOT_TOKEN": "xoxb-1-not-checked",
        "SLACK_SIGNING_SECRET": "not-checked",
        "BOT_POLICY": str(tmp_path / "policy.toml"),
        "PORT": str(free_port()),
    }
    finished = subprocess.run(
        [str(DCS_BOT), "serve"],
        env=child_env(environment | settings),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert finished.returncode == 2, finished.stderr
    assert "Traceback" not in finished.stderr
    [line] = finished.stderr.splitlines()
    return line


def test_a_literal_secret_in_the_clouds_file_stops_start_up_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "clouds.toml").write_text(
        clouds_file("eu-de", "https://dcs.eu-de.otc.t-systems.com", 'secret_key = "literal-sk-value"'),
        encoding="utf-8",
    )
    line = refusal(tmp_path, {"BOT_CLOUDS": str(tmp_path / "clouds.toml")})
    assert line == (
        "dcs-bot: BOT_CLOUDS: clouds[0] ('eu-de').secret_key: secrets are never in this file; "
        "name an environment variable with secret_key_env"
    )
    assert "literal-sk-value" not in line


def test_bot_clouds_together_with_dcs_endpoint_stops_start_up_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "clouds.toml").write_text(
        clouds_file("eu-de", "https://dcs.eu-de.otc.t-systems.com"), encoding="utf-8"
    )
    settings = {"BOT_CLOUDS": str(tmp_path / "clouds.toml"), "DCS_ENDPOINT": "https://dcs.example.com"}
    line = refusal(tmp_path, settings)
    assert line.startswith("dcs-bot: BOT_CLOUDS: cannot be combined with DCS_ENDPOINT"), line


def test_an_unknown_cloud_in_the_policy_stops_start_up_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "clouds.toml").write_text(
        clouds_file("eu-de", "https://dcs.eu-de.otc.t-systems.com"), encoding="utf-8"
    )
    policy = DEFAULT_POLICY.replace('name = "viewers"', 'name = "viewers"\nclouds = ["eu-nl"]')
    line = refusal(tmp_path, {"BOT_CLOUDS": str(tmp_path / "clouds.toml"), "DCS_SECRET": "sk"}, policy)
    assert line.startswith("dcs-bot: BOT_POLICY: "), line
    assert "rules[1] ('viewers').clouds[0]: unknown cloud 'eu-nl' (the clouds file names eu-de)" in line


def test_the_dcs_settings_are_one_cloud_that_policies_name(tmp_path: Path) -> None:
    settings = {
        "DCS_ENDPOINT": "https://dcs.eu-de.otc.t-systems.com",
        "DCS_PROJECT_ID": PROJECT_ID,
        "DCS_ACCESS_KEY": ACCESS_KEY,
        "DCS_SECRET_KEY": SECRET_KEY,
        "DCS_CLOUD_NAME": "eu-de",
    }
    policy = DEFAULT_POLICY.replace('name = "viewers"', 'name = "viewers"\nclouds = ["eu-nl"]')
    line = refusal(tmp_path, settings, policy)
    assert "unknown cloud 'eu-nl' (the clouds file names eu-de)" in line, line


async def test_a_two_cloud_clouds_file_serves_both(tmp_path: Path, stand_ins: StandIns) -> None:
    port = free_port()
    settings = bot_environment(tmp_path, stand_ins, DEFAULT_POLICY, port)
    for name in ("DCS_ENDPOINT", "DCS_PROJECT_ID", "DCS_ACCESS_KEY", "DCS_SECRET_KEY"):
        del settings[name]
    (tmp_path / "clouds.toml").write_text(
        clouds_file("eu-de", stand_ins.dcs_url) + clouds_file("eu-nl", stand_ins.dcs_url), encoding="utf-8"
    )
    settings |= {"BOT_CLOUDS": str(tmp_path / "clouds.toml"), "DCS_SECRET": SECRET_KEY}

    async with running_bot(["serve"], settings, cwd=tmp_path) as bot:
        await wait_until_serving(f"http://127.0.0.1:{port}/healthz", bot)
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/healthz") as response,
        ):
            health = await response.json()
        bot.signal(signal.SIGTERM)
        code = await bot.exit_code()

    assert code == 0, bot.stderr
    assert list(health["checks"]["dcs"]) == ["eu-de", "eu-nl"], health
    started = next(line for line in bot.stderr if "dcs-bot starting" in line)
    assert "cloud eu-de at" in started and "cloud eu-nl at" in started, started


async def test_a_one_cloud_clouds_file_serves(tmp_path: Path, stand_ins: StandIns) -> None:
    port = free_port()
    settings = bot_environment(tmp_path, stand_ins, DEFAULT_POLICY, port)
    for name in ("DCS_ENDPOINT", "DCS_PROJECT_ID", "DCS_ACCESS_KEY", "DCS_SECRET_KEY"):
        del settings[name]
    (tmp_path / "clouds.toml").write_text(clouds_file("eu-de", stand_ins.dcs_url), encoding="utf-8")
    settings |= {"BOT_CLOUDS": str(tmp_path / "clouds.toml"), "DCS_SECRET": SECRET_KEY}

    async with running_bot(["serve"], settings, cwd=tmp_path) as bot:
        await wait_until_serving(f"http://127.0.0.1:{port}/healthz", bot)
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/healthz") as response,
        ):
            health = await response.json()
        bot.signal(signal.SIGTERM)
        code = await bot.exit_code()

    assert code == 0, bot.stderr
    assert list(health["checks"]["dcs"]) == ["eu-de"], health
    started = next(line for line in bot.stderr if "dcs-bot starting" in line)
    assert f"DCS cloud eu-de at {stand_ins.dcs_url}" in started, started
    assert SECRET_KEY not in "\n".join(bot.stderr)


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
