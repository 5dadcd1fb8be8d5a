"""Issue 10's "done when", over HTTP: one bot serving two emulated clouds with different projects and
credentials (eu-de signs with AK/SK, eu-nl gets an IAM token; each emulator checks them), against the Slack
stand-in. Bare, qualified and ambiguous names; a rule limited to one cloud; a tag rule; a watch limited to
one cloud; one cloud hanging while the other serves."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.standins.dcs.control import DcsEmulator
from bot.standins.dcs.records import EmulatedInstance
from bot.standins.slack.timeline import Message
from tests.e2e.conftest import (
    ACCESS_KEY,
    ALERTS,
    ALICE,
    OPS,
    PROJECT_ID,
    SECRET_KEY,
    DcsGate,
    StandInsFactory,
    World,
    WorldFactory,
)

NL_PROJECT = "fedcba9876543210fedcba9876543210"
NL_DOMAIN, NL_USER, NL_PASSWORD = "domain-nl", "bot-nl", "nl-password-123"
NOT_THE_DCS_SETTINGS = {
    "dcs_endpoint": "",
    "dcs_project_id": "",
    "dcs_access_key": None,
    "dcs_secret_key": None,
    "dcs_timeout": 3,
}

POLICY = f"""
[[rules]]
name = "sre"
users = ["{ALICE}"]
instances = ["*"]
actions = ["backup", "list", "status"]
"""


def limited(line: str) -> str:
    return POLICY.replace('actions = ["backup", "list", "status"]', f'actions = ["backup"]\n{line}')


class TwoClouds:
    def __init__(self, world: World, nl: DcsEmulator, nl_prod: EmulatedInstance, nl_gate: DcsGate) -> None:
        self.world = world
        self.nl = nl
        self.nl_prod = nl_prod
        self.nl_gate = nl_gate

    @property
    def de(self) -> DcsEmulator:
        return self.world.dcs

    async def answer(self, text: str) -> str:
        before = len(self.world.slack.ephemeral_for(ALICE))
        result = await self.world.command(text)
        assert result.status == 200
        return full(await self.world.reply_to(ALICE, before + 1))


Start = Callable[..., Awaitable[TwoClouds]]


def full(message: Message) -> str:
    """A message's text and its blocks, for looking for words in either."""
    return message.shown + "\n" + json.dumps(message.blocks, ensure_ascii=False)


@pytest.fixture
async def two_clouds(
    world_factory: WorldFactory,
    stand_ins_factory: StandInsFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Start]:
    servers: list[TestServer] = []
    gates: list[DcsGate] = []

    async def start(policy: str = POLICY, *, hang_nl: bool = False) -> TwoClouds:
        stand_ins = await stand_ins_factory()
        stand_ins.dcs.instance(stand_ins.prod.instance_id).tags.update({"env": "prod"})
        nl = DcsEmulator(
            project_id=NL_PROJECT,
            project_name="eu-nl",
            access_key="NLACCESSKEY000000000",
            secret_key="nl-secret-key-not-used",
            iam_users={(NL_DOMAIN, NL_USER): NL_PASSWORD},
            waiting_seconds=0.05,
            backuping_seconds=0.1,
        )
        nl_prod = nl.add_instance("redis-prod", cache_mode="ha")
        nl.add_instance("redis-nl-sessions", cache_mode="cluster", tags={"env": "prod", "team": "web"})
        gate = DcsGate(only=None if hang_nl else "never-matches")
        gates.append(gate)
        app = nl.app()
        app.middlewares.insert(0, gate.middleware)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        nl_url = str(server.make_url("")).rstrip("/")
        monkeypatch.setenv("EU_DE_SK", SECRET_KEY)
        monkeypatch.setenv("EU_NL_PASSWORD", NL_PASSWORD)
        clouds = tmp_path / "clouds.toml"
        clouds.write_text(
            f'[[clouds]]\nname = "eu-de"\nendpoint = "{stand_ins.dcs_url}"\nproject_id = "{PROJECT_ID}"\n'
            f'access_key = "{ACCESS_KEY}"\nsecret_key_env = "EU_DE_SK"\n\n'
            f'[[clouds]]\nname = "eu-nl"\nendpoint = "{nl_url}"\nproject_id = "{NL_PROJECT}"\ntimeout = 1\n'
            f'iam_endpoint = "{nl_url}"\nusername = "{NL_USER}"\ndomain = "{NL_DOMAIN}"\n'
            'password_env = "EU_NL_PASSWORD"\n',
            encoding="utf-8",
        )
        world = await world_factory(
            policy, stand_ins=stand_ins, bot_clouds=str(clouds), **NOT_THE_DCS_SETTINGS
        )
        return TwoClouds(world, nl, nl_prod, gate)

    yield start
    for gate in gates:
        gate.open()
    for server in servers:
        await server.close()


async def test_a_bare_name_in_one_cloud_is_backed_up_there_with_that_clouds_credentials(
    two_clouds: Start,
) -> None:
    clouds = await two_clouds()
    card = await clouds.world.card("redis-nl-sessions rdb")
    assert "eu-nl/redis-nl-sessions" in full(card)
    assert await clouds.world.click(card, "backup_confirm") == 200
    posted = await clouds.world.channel_message(OPS)

    [created] = clouds.nl.calls_to("create_backup")
    assert created.status == 200, "eu-nl took the IAM token the bot got for its user"
    assert clouds.de.calls_to("create_backup") == []
    assert "eu-nl/redis-nl-sessions" in full(posted)
    assert all(call.status == 200 for call in clouds.de.log.calls), "eu-de checked every AK/SK signature"
    assert clouds.nl.calls_to("iam_token"), "eu-nl was asked with a token of its own IAM user"
    async with TestClient(clouds.world.server) as client:
        health = await (await client.get("/healthz")).json()
        metrics = await (await client.get("/metrics")).text()
    assert list(health["checks"]["dcs"]) == ["eu-de", "eu-nl"]
    assert 'dcs_bot_backup_submissions_total{cloud="eu-nl",outcome="accepted"} 1.0' in metrics
    assert 'dcs_bot_dcs_calls_total{cloud="eu-nl",endpoint="create_backup",status="200"} 1.0' in metrics


async def test_a_bare_name_in_both_clouds_is_answered_with_the_qualified_forms(two_clouds: Start) -> None:
    clouds = await two_clouds()
    answer = await clouds.answer("redis-prod")
    assert "eu-de/redis-prod" in answer and "eu-nl/redis-prod" in answer
    assert "more than one place" in answer
    assert clouds.de.calls_to("create_backup") == clouds.nl.calls_to("create_backup") == []


async def test_a_pick_among_clouds_gives_the_card_for_that_cloud_and_backs_up_there(
    two_clouds: Start,
) -> None:
    clouds = await two_clouds()
    world = clouds.world
    await world.command('redis-prod aof "nl only"')
    choice = await world.reply_to(ALICE)
    picks = world.slack.buttons(choice)
    # Each pick names its instance by cloud and ID (the name is what is ambiguous).
    assert [(b.label, b.value) for b in picks] == [
        ("eu-de/redis-prod", f"eu-de/{world.prod.instance_id}"),
        ("eu-nl/redis-prod", f"eu-nl/{clouds.nl_prod.instance_id}"),
    ]

    versions = len(choice.history)  # the choice replaced the "Looking up" ack
    await world.slack.click(
        world.bot_url, user_id=ALICE, message=choice, action_id="backup_pick", value=picks[1].value
    )
    await world.slack.wait_until(
        lambda: len(choice.history) > versions, what="the card in place of the choice"
    )
    assert "Back up *eu-nl/redis-prod*?" in choice.shown
    await world.click(choice, "backup_confirm")
    await world.channel_message(OPS)

    assert len(clouds.nl.calls_to("create_backup")) == 1 and clouds.de.calls_to("create_backup") == []
    [backup] = clouds.nl.backups_of(clouds.nl_prod.instance_id)
    assert (backup.backup_format, backup.remark) == ("aof", "nl only"), "what was typed, kept"


async def test_qualified_names_and_ids_address_one_cloud(two_clouds: Start) -> None:
    clouds = await two_clouds()
    card = await clouds.world.card("eu-nl/redis-prod")
    assert clouds.nl_prod.instance_id in full(card)
    by_id = await clouds.world.card(f"eu-de/{clouds.world.prod.instance_id}")
    assert "eu-de/redis-prod" in full(by_id)
    listed = await clouds.answer("list eu-nl/redis-prod")
    assert "eu-nl/redis-prod" in listed
    unknown = await clouds.answer("us-east/redis-prod")
    assert "no cloud us-east" in unknown and "eu-de, eu-nl" in unknown


async def test_a_rule_limited_to_one_cloud(two_clouds: Start) -> None:
    clouds = await two_clouds(limited('clouds = ["eu-de"]'))
    assert "eu-de/redis-prod" in full(await clouds.world.card("eu-de/redis-prod"))
    refused = await clouds.answer("eu-nl/redis-prod")
    assert "You may not back up" in refused and "in cloud eu-de" in refused


async def test_a_tag_rule_allows_a_tagged_instance_and_refuses_an_untagged_one(two_clouds: Start) -> None:
    clouds = await two_clouds(limited('tags = { env = "prod" }'))
    card = await clouds.world.card("eu-de/redis-prod")  # tagged env=prod in eu-de
    assert await clouds.world.click(card, "backup_confirm") == 200
    await clouds.world.channel_message(OPS)
    assert len(clouds.de.calls_to("create_backup")) == 1
    refused = await clouds.answer("eu-nl/redis-prod")  # no tags in eu-nl
    assert "with tag env=prod" in refused and "it has no tags" in refused
    dry = await clouds.answer("redis-nl-sessions --dry-run")
    assert "env=prod, team=web" in dry and "for instances with tag env=prod" in dry


async def test_a_watch_limited_to_one_cloud(two_clouds: Start) -> None:
    policy = POLICY + f'\n[[watch]]\ninstances = ["redis-prod"]\nclouds = ["eu-nl"]\nchannel = "{ALERTS}"\n'
    clouds = await two_clouds(policy)

    def nl_polls() -> int:
        return len(clouds.nl.calls_to("list_backups", instance_id=clouds.nl_prod.instance_id))

    await clouds.nl.wait_for_calls(lambda: nl_polls() >= 1)  # the watch began
    for dcs, instance_id in (
        (clouds.nl, clouds.nl_prod.instance_id),
        (clouds.de, clouds.world.prod.instance_id),
    ):
        dcs.add_backup(
            instance_id,
            backup_type="auto",
            outcome="failed",
            created_at=dcs.now() - 60,
            backuping_seconds=60.1,
        )
    notice = await clouds.world.channel_message(ALERTS)
    polled = nl_polls()
    await clouds.nl.wait_for_calls(lambda: nl_polls() >= polled + 3)

    assert "eu-nl/redis-prod" in full(notice)
    assert len(clouds.world.slack.channel_messages(ALERTS)) == 1, "the eu-de instance is not watched"
    assert clouds.de.calls_to("list_backups") == []


async def test_one_cloud_hanging_while_the_other_serves(two_clouds: Start) -> None:
    clouds = await two_clouds(hang_nl=True)
    card = await clouds.world.card("redis-staging")
    text = full(card)
    assert "eu-de/redis-staging" in text
    assert "Could not ask eu-nl" in text
    assert await clouds.world.click(card, "backup_confirm") == 200
    posted = await clouds.world.channel_message(OPS)
    assert "eu-de/redis-staging" in full(posted)
    clouds.nl_gate.open()


async def test_the_forms_picker_offers_qualified_instances_of_every_cloud_the_person_may_use(
    two_clouds: Start,
) -> None:
    clouds = await two_clouds(limited('tags = { env = "prod" }'))
    world = clouds.world
    await world.command("")
    modal = await world.slack.wait_for_modal(ALICE)

    found = await world.slack.suggest(
        world.bot_url, user_id=ALICE, view=modal, action_id="instance", typed=""
    )
    prod = await world.slack.suggest(
        world.bot_url, user_id=ALICE, view=modal, action_id="instance", typed="prod"
    )

    assert found.problems == []
    # Only the instances tagged env=prod: eu-de's redis-prod and eu-nl's sessions; eu-nl's untagged
    # redis-prod and eu-de's other instances are not offered.
    assert found.labels == ["eu-nl/redis-nl-sessions", "eu-de/redis-prod"], "by name, then by cloud"
    assert prod.labels == ["eu-de/redis-prod"]
    assert found.values[1] == f"eu-de/{world.prod.instance_id}"

    answer = await world.slack.submit_view(
        world.bot_url, user_id=ALICE, view=modal, entered={"instance": found.options[0]}
    )
    card = await world.reply_to(ALICE)
    assert answer.closed and "eu-nl" in full(card) and "redis-nl-sessions" in full(card)


async def test_the_forms_picker_leaves_out_a_cloud_that_does_not_answer_in_time(two_clouds: Start) -> None:
    clouds = await two_clouds(hang_nl=True)
    world = clouds.world
    await world.command("")
    modal = await world.slack.wait_for_modal(ALICE)

    found = await world.slack.suggest(
        world.bot_url, user_id=ALICE, view=modal, action_id="instance", typed=""
    )

    assert found.reply.status == 200 and found.problems == []
    assert found.labels == ["eu-de/cache-single", "eu-de/redis-prod", "eu-de/redis-staging"]
