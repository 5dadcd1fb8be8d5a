"""A rule that follows the instance's own DCS tags (INTERFACE §4), through the card and the click."""

from __future__ import annotations

from bot.core.rules.messages import BackupStarted, Confirmation, DryRun, Refusal
from tests.factories import ALICE, make_instance
from tests.fakes import make_fakes, service_on
from tests.flow.conftest import Flow, click

TAGGED = make_instance("redis-prod", "11111111-2222-3333-4444-555555555555", tags=(("env", "prod"),))
UNTAGGED = make_instance("redis-dev", "22222222-2222-3333-4444-555555555555")

POLICY = f"""
[[rules]]
name = "prod-by-tag"
users = ["{ALICE}"]
instances = ["*"]
tags = {{ env = "prod" }}
actions = ["backup", "status"]
"""


def tag_flow(policy: str = POLICY) -> Flow:
    fakes = make_fakes(policy, TAGGED, UNTAGGED)
    return Flow(fakes, service_on(fakes))


async def test_a_tag_rule_allows_the_tagged_instance_through_to_the_backup() -> None:
    flow = tag_flow()
    reply = await flow.command("redis-prod")
    assert isinstance(reply, Confirmation)
    assert reply.request.instance_tags == (("env", "prod"),)
    await flow.service.confirm(click(ALICE, reply.request))
    assert len(flow.fakes.dcs.created) == 1
    assert flow.fakes.notifier.notices_of(BackupStarted)


async def test_a_tag_rule_refuses_the_untagged_instance_and_says_why() -> None:
    reply = await tag_flow().command("redis-dev")
    assert isinstance(reply, Refusal)
    assert "with tag env=prod" in reply.decision.reason and "no tags" in reply.decision.reason


async def test_the_dry_run_shows_the_rules_tags() -> None:
    reply = await tag_flow().command("redis-prod --dry-run")
    assert isinstance(reply, DryRun)
    assert reply.decision.tags == (("env", "prod"),) and reply.instance.tags == (("env", "prod"),)


async def test_a_rule_limited_to_a_cloud_does_not_cover_an_instance_of_no_known_cloud() -> None:
    flow = tag_flow(POLICY.replace('tags = { env = "prod" }', 'clouds = ["eu-de"]'))
    assert isinstance(await flow.command("redis-prod"), Refusal)
