"""Resolution across several clouds (INTERFACE §2, §8), on fakes: bare names are looked up in every cloud at
once, qualified ones in theirs; ambiguity is answered with the qualified forms; a cloud that fails or hangs
is left out of the answer, which says so."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.core.errors import DcsTransportError
from bot.core.flow.inputs import Invocation
from bot.core.flow.service import BackupService
from bot.core.ports import CloudMap
from bot.core.rules.grammar import FormCommand, UsageError, parse_command
from bot.core.rules.messages import (
    BackupNotStarted,
    BackupStarted,
    CloudUnavailable,
    Confirmation,
    InstanceAmbiguous,
    InstanceNotFound,
    Refusal,
    Reply,
    Usage,
)
from tests.factories import ALICE, OPS, make_instance
from tests.fakes import FakeDcs, Fakes, make_fakes
from tests.flow.conftest import click, response_url

DE_PROD = make_instance("redis-prod", "11111111-2222-3333-4444-555555555555", tags=(("env", "prod"),))
DE_ONLY = make_instance("redis-de-orders", "22222222-2222-3333-4444-555555555555")
NL_PROD = make_instance("redis-prod", "33333333-2222-3333-4444-555555555555")
NL_ONLY = make_instance("redis-nl-sessions", "44444444-2222-3333-4444-555555555555")

POLICY = f"""
[[rules]]
name = "sre"
users = ["{ALICE}"]
instances = ["redis-*"]
actions = ["backup", "list", "status"]
"""


class Hanging(FakeDcs):
    """A cloud that never answers."""

    async def _called(self, method: str, instance_id: str | None, **arguments: Any) -> None:
        await super()._called(method, instance_id, **arguments)
        await asyncio.Event().wait()


class TwoClouds:
    def __init__(self, policy: str = POLICY, *, nl: FakeDcs | None = None) -> None:
        self.fakes: Fakes = make_fakes(policy, DE_PROD, DE_ONLY)
        self.de = self.fakes.dcs
        self.nl = nl or FakeDcs(NL_PROD, NL_ONLY, clock=self.fakes.clock)
        f = self.fakes
        self.service = BackupService(
            clouds=CloudMap({"eu-de": self.de, "eu-nl": self.nl}, {"eu-de": 0.5, "eu-nl": 0.5}),
            requests=f.requests,
            audit=f.audit,
            groups=f.groups,
            notifier=f.notifier,
            policy=lambda: f.policy,
            clock=f.clock,
            options=f.options,
        )

    async def command(self, text: str) -> Reply:
        parsed = parse_command(text)
        assert not isinstance(parsed, UsageError | FormCommand), parsed
        invocation = Invocation(ALICE, "alice", OPS, response_url(ALICE, "command"), text)
        return await self.service.handle(parsed, invocation)


async def test_a_bare_name_in_one_cloud_resolves_there_and_the_backup_goes_to_that_cloud() -> None:
    clouds = TwoClouds()
    reply = await clouds.command("redis-nl-sessions")
    assert isinstance(reply, Confirmation)
    assert reply.instance.cloud == "eu-nl" and reply.request.cloud == "eu-nl"
    await clouds.service.confirm(click(ALICE, reply.request))
    assert clouds.de.created == [] and len(clouds.nl.created) == 1
    assert clouds.fakes.notifier.notices_of(BackupStarted)


async def test_a_bare_name_in_both_clouds_is_ambiguous_and_offers_the_qualified_forms() -> None:
    clouds = TwoClouds()
    reply = await clouds.command("redis-prod")
    assert isinstance(reply, InstanceAmbiguous) and reply.qualified
    assert reply.forms() == ("eu-de/redis-prod", "eu-nl/redis-prod")
    assert clouds.de.created == clouds.nl.created == []


async def test_a_name_twice_in_one_cloud_is_offered_by_cloud_and_id() -> None:
    clouds = TwoClouds()
    twin = clouds.nl.add_instance(make_instance("redis-prod", "55555555-2222-3333-4444-555555555555"))
    reply = await clouds.command("eu-nl/redis-prod")
    assert isinstance(reply, InstanceAmbiguous)
    assert reply.forms() == (f"eu-nl/{NL_PROD.instance_id}", f"eu-nl/{twin.instance_id}")


async def test_a_qualified_name_or_id_asks_only_its_cloud() -> None:
    clouds = TwoClouds()
    reply = await clouds.command("eu-nl/redis-prod")
    assert isinstance(reply, Confirmation) and reply.instance.instance_id == NL_PROD.instance_id
    assert clouds.de.calls == []
    by_id = await clouds.command(f"eu-de/{DE_PROD.instance_id}")
    assert isinstance(by_id, Confirmation) and by_id.instance.cloud == "eu-de"
    wrong_cloud = await clouds.command(f"eu-nl/{DE_PROD.instance_id}")
    assert isinstance(wrong_cloud, InstanceNotFound)


async def test_an_unknown_cloud_is_named_with_the_known_ones() -> None:
    reply = await TwoClouds().command("us-east/redis-prod")
    assert isinstance(reply, Usage)
    assert "no cloud us-east" in reply.message and "eu-de, eu-nl" in reply.message


async def test_an_unknown_name_gets_qualified_suggestions_from_every_cloud() -> None:
    reply = await TwoClouds().command("redis-pro")
    assert isinstance(reply, InstanceNotFound)
    assert set(reply.suggestions) == {"eu-de/redis-prod", "eu-nl/redis-prod"}


async def test_a_hanging_cloud_does_not_block_the_other_and_the_answer_names_it() -> None:
    clouds = TwoClouds(nl=Hanging(NL_PROD, NL_ONLY))
    reply = await asyncio.wait_for(clouds.command("redis-prod"), timeout=5)
    assert isinstance(reply, Confirmation) and reply.instance.cloud == "eu-de"
    [unasked] = reply.unasked
    assert unasked.cloud == "eu-nl" and "in time" in unasked.detail


async def test_a_refusing_cloud_is_left_out_and_named() -> None:
    clouds = TwoClouds()
    clouds.nl.fail("list_instances", DcsTransportError("connection refused"), times=5)
    reply = await clouds.command("redis-de-orders")
    assert isinstance(reply, Confirmation)
    assert [u.cloud for u in reply.unasked] == ["eu-nl"]
    missing = await clouds.command("redis-nowhere")
    assert isinstance(missing, InstanceNotFound) and [u.cloud for u in missing.unasked] == ["eu-nl"]


async def test_when_no_cloud_answers_the_person_is_told_which() -> None:
    clouds = TwoClouds()
    error = DcsTransportError("connection refused")
    clouds.de.fail("list_instances", error)
    clouds.nl.fail("list_instances", error)
    reply = await clouds.command("redis-prod")
    assert isinstance(reply, CloudUnavailable) and reply.cloud == "eu-de"


async def test_a_rule_limited_to_one_cloud() -> None:
    clouds = TwoClouds(
        POLICY.replace('actions = ["backup", "list", "status"]', 'actions = ["backup"]\nclouds = ["eu-de"]')
    )
    assert isinstance(await clouds.command("eu-de/redis-prod"), Confirmation)
    refused = await clouds.command("eu-nl/redis-prod")
    assert isinstance(refused, Refusal) and "in cloud eu-de" in refused.decision.reason


async def test_the_cache_is_per_cloud() -> None:
    clouds = TwoClouds()
    for _ in range(2):
        assert isinstance(await clouds.command("eu-nl/redis-prod"), Confirmation)
        assert isinstance(await clouds.command("eu-de/redis-prod"), Confirmation)
    assert len(clouds.nl.calls_to("list_instances")) == 1 and len(clouds.de.calls_to("list_instances")) == 1


async def test_a_request_of_a_cloud_no_longer_configured_is_not_started_anywhere() -> None:
    clouds = TwoClouds()
    reply = await clouds.command("redis-de-orders")
    assert isinstance(reply, Confirmation)
    await clouds.fakes.requests.update(reply.request.request_id, cloud="us-east")
    await clouds.service.confirm(click(ALICE, reply.request))
    assert clouds.de.created == clouds.nl.created == []
    [not_started] = clouds.fakes.notifier.notices_of(BackupNotStarted)
    assert "us-east is not configured" in not_started.failure.error_msg
