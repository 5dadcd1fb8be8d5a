"""A one-cloud clouds file (``BOT_CLOUDS``) serves end to end: its endpoint, project and credentials,
the secret from the variable the file names, the cloud's name on /healthz and on the DCS metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from tests.e2e.conftest import ACCESS_KEY, ALICE, OPS, PROJECT_ID, SECRET_KEY, StandInsFactory, WorldFactory

NOT_THE_DCS_SETTINGS = {
    "dcs_endpoint": "",
    "dcs_project_id": "",
    "dcs_access_key": None,
    "dcs_secret_key": None,
    "dcs_timeout": 3,
}


def one_cloud(path: Path, endpoint: str, *, iam: bool = False) -> Path:
    auth = (
        f'iam_endpoint = "{endpoint}"\nusername = "bot-nl"\ndomain = "domain-nl"\n'
        'password_env = "NL_PASSWORD"\n'
        if iam
        else f'access_key = "{ACCESS_KEY}"\nsecret_key_env = "EU_DE_SK"\n'
    )
    path.write_text(
        f'[[clouds]]\nname = "eu-de"\nendpoint = "{endpoint}"\nproject_id = "{PROJECT_ID}"\n'
        f"timeout = 4\n{auth}",
        encoding="utf-8",
    )
    return path


async def test_a_backup_through_a_one_cloud_clouds_file(
    world_factory: WorldFactory,
    stand_ins_factory: StandInsFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stand_ins = await stand_ins_factory()
    monkeypatch.setenv("EU_DE_SK", SECRET_KEY)
    clouds = one_cloud(tmp_path / "clouds.toml", stand_ins.dcs_url)
    world = await world_factory(stand_ins=stand_ins, bot_clouds=str(clouds), **NOT_THE_DCS_SETTINGS)

    card = await world.card("redis-prod rdb")
    assert await world.click(card, "backup_confirm") == 200
    posted = await world.channel_message(OPS)

    [created] = world.dcs.calls_to("create_backup", instance_id=world.prod.instance_id)
    assert created.status == 200, "signed with the file's access key and the secret its variable holds"
    assert "backup" in posted.shown.lower()
    assert list(world.bot.dcs_clients) == ["eu-de"] and world.bot.dcs_timeout == 4

    async with TestClient(world.server) as client:
        health = await (await client.get("/healthz")).json()
        metrics = await (await client.get("/metrics")).text()
    assert list(health["checks"]["dcs"]) == ["eu-de"]
    assert health["checks"]["dcs"]["eu-de"].startswith("ok ("), health
    assert 'dcs_bot_dcs_calls_total{cloud="eu-de",endpoint="create_backup",status="200"} 1.0' in metrics
    assert SECRET_KEY not in world.log.getvalue()


async def test_an_iam_cloud_from_the_file_gets_its_own_token(
    world_factory: WorldFactory,
    stand_ins_factory: StandInsFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stand_ins = await stand_ins_factory()
    stand_ins.dcs.iam_users[("domain-nl", "bot-nl")] = "nl-password-123"
    monkeypatch.setenv("NL_PASSWORD", "nl-password-123")
    clouds = one_cloud(tmp_path / "clouds.toml", stand_ins.dcs_url, iam=True)
    world = await world_factory(stand_ins=stand_ins, bot_clouds=str(clouds), **NOT_THE_DCS_SETTINGS)

    result = await world.command("list redis-prod")
    assert result.status == 200
    await world.reply_to(ALICE)

    assert world.dcs.calls_to("iam_token"), "the bot asked IAM for a token with the file's user"
    [listed] = world.dcs.calls_to("list_instances")
    assert listed.status == 200, "the token the bot got for the file's user was accepted"
    assert all(200 <= call.status < 300 for call in world.dcs.calls_to("list_backups"))
