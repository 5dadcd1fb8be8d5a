"""``BOT_DATABASE=postgresql://…`` in a real ``dcs-bot serve`` process: it serves on PostgreSQL, and a URL
it cannot use stops start-up with one line naming BOT_DATABASE — never with the password in it."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.conftest import StandIns
from tests.postgres import PostgresCluster
from tests.service.process import free_port, run_cli, running_bot, wait_until_serving
from tests.service.test_process import assert_one_line_naming, settings_for

WRONG_PASSWORD = "not-the-password-4711"


def with_database(folder: Path, url: str) -> dict[str, str]:
    settings = settings_for(folder)
    settings["BOT_DATABASE"] = url
    return settings


@pytest.mark.parametrize(
    ("name", "url_of"),
    [
        ("wrong password", lambda cluster: cluster.url(password=WRONG_PASSWORD)),
        (
            "nothing listens",
            lambda cluster: f"postgresql://postgres:{WRONG_PASSWORD}@127.0.0.1:{free_port()}/postgres",
        ),
        ("unknown host", lambda cluster: f"postgres://postgres:{WRONG_PASSWORD}@no-such-host.invalid/bot"),
        ("no database name", lambda cluster: f"postgresql://postgres:{WRONG_PASSWORD}@127.0.0.1:5432"),
        ("a port that is no number", lambda cluster: f"postgresql://postgres:{WRONG_PASSWORD}@db:http/bot"),
    ],
)
def test_a_database_url_that_cannot_be_used_stops_start_up_with_one_line_without_the_password(
    tmp_path: Path, postgres_cluster: PostgresCluster, name: str, url_of: object
) -> None:
    url = url_of(postgres_cluster)  # type: ignore[operator]
    finished = run_cli(["serve"], with_database(tmp_path, url), cwd=tmp_path)

    assert finished.returncode == 2, finished.stderr
    assert_one_line_naming(finished.stderr, "BOT_DATABASE")
    assert WRONG_PASSWORD not in finished.stderr + finished.stdout, name


async def test_serve_on_postgres_is_ready_and_never_logs_the_password(
    tmp_path: Path, stand_ins: StandIns, postgres_url: str, postgres_cluster: PostgresCluster
) -> None:
    settings = settings_for(tmp_path, stand_ins)
    settings["BOT_DATABASE"] = postgres_url
    port = settings["PORT"]

    async with running_bot(["serve"], settings, cwd=tmp_path) as bot:
        await wait_until_serving(f"http://127.0.0.1:{port}/livez", bot)
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/healthz") as response,
        ):
            status, health = response.status, await response.text()
        bot.signal(signal.SIGTERM)
        code = await bot.exit_code()

    assert (status, json.loads(health)["checks"]["database"]) == (200, "ok")
    assert code == 0
    logged = "\n".join(bot.stderr + bot.stdout)
    assert "database postgresql://postgres:***@127.0.0.1" in logged
    assert postgres_cluster.password not in logged + health
