"""The short-lived instance cache behind the card, on the fakes and their clock: a repeat instance costs
no DCS call within the TTL, a status is never older than the TTL, and neither the submission nor list and
status read it."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from bot.core.errors import DcsApiError
from bot.core.flow.instance_cache import INSTANCE_TTL, InstanceCache
from bot.core.rules.messages import (
    BackupList,
    BackupNotStarted,
    Confirmation,
    InstanceNotFound,
    NotBackupable,
)
from tests.factories import ALICE, make_instance
from tests.fakes import FakeClock, FakeDcs
from tests.flow.conftest import PROD, Flow, click

TTL = INSTANCE_TTL.total_seconds()


def dcs_calls(flow: Flow) -> int:
    return len([c for c in flow.fakes.dcs.calls if c.method in ("list_instances", "show_instance")])


def set_status(flow: Flow, status: str) -> None:
    flow.fakes.dcs.add_instance(dataclasses.replace(PROD, status=status))


async def test_a_repeat_instance_costs_no_dcs_call_within_the_ttl(flow: Flow) -> None:
    await flow.card("redis-prod")
    assert dcs_calls(flow) == 2, "ListInstances for the name, ShowInstance for the status"

    flow.fakes.clock.advance(TTL - 1)
    await flow.card("redis-prod")
    await flow.card(PROD.instance_id)
    assert dcs_calls(flow) == 2


async def test_after_the_ttl_dcs_is_asked_again_and_a_new_status_shows(flow: Flow) -> None:
    await flow.card("redis-prod")
    set_status(flow, "RESTARTING")

    flow.fakes.clock.advance(TTL - 1)
    assert isinstance(await flow.command("redis-prod"), Confirmation), "the card may show a cached status"

    flow.fakes.clock.advance(1)
    reply = await flow.command("redis-prod")
    assert isinstance(reply, NotBackupable) and "RESTARTING" in reply.reason
    assert dcs_calls(flow) == 4


async def test_an_instance_that_is_not_running_is_not_kept(flow: Flow) -> None:
    set_status(flow, "RESTARTING")
    assert isinstance(await flow.command("redis-prod"), NotBackupable)

    set_status(flow, "RUNNING")
    assert isinstance(await flow.command("redis-prod"), Confirmation), "its recovery shows at once"


async def test_the_submission_asks_dcs_whatever_the_card_showed(flow: Flow) -> None:
    request = await flow.card("redis-prod")
    set_status(flow, "RESTARTING")
    flow.fakes.dcs.fail("create_backup", DcsApiError(400, "DCS.4001", "The instance is not running."))

    await flow.service.confirm(click(ALICE, request))

    assert len(flow.fakes.dcs.created) == 1
    [notice] = flow.fakes.notifier.notices_of(BackupNotStarted)
    assert notice.failure.error_code == "DCS.4001"


async def test_list_results_are_not_cached(flow: Flow) -> None:
    assert isinstance(await flow.command("list redis-prod"), BackupList)
    assert isinstance(await flow.command("list redis-prod"), BackupList)
    assert len(flow.fakes.dcs.calls_to("list_backups")) == 2


async def test_a_renamed_instance_is_resolved_afresh(flow: Flow) -> None:
    set_status(flow, "RESTARTING")  # the name is kept, the status is not
    await flow.command("redis-prod")
    flow.fakes.dcs.add_instance(dataclasses.replace(PROD, name="redis-renamed"))

    reply = await flow.command("redis-prod")
    assert isinstance(reply, InstanceNotFound)


async def test_a_clock_that_goes_back_expires_the_entries() -> None:
    clock = FakeClock()
    dcs = FakeDcs(PROD, clock=clock)
    cache = InstanceCache(dcs, clock)
    await cache.show_instance(PROD.instance_id)
    clock.current -= timedelta(seconds=1)
    await cache.show_instance(PROD.instance_id)
    assert len(dcs.calls_to("show_instance")) == 2


async def test_the_cache_stays_within_its_size() -> None:
    clock = FakeClock()
    instances = [make_instance(f"redis-{n}", f"{n:08d}-2222-3333-4444-555555555555") for n in range(5)]
    dcs = FakeDcs(*instances, clock=clock)
    cache = InstanceCache(dcs, clock, size=3)
    for instance in instances:
        await cache.show_instance(instance.instance_id)
        cache.named(instance.name, instance.instance_id)
    clock.advance(TTL)
    for instance in instances[:3]:
        await cache.show_instance(instance.instance_id)
    assert len(dcs.calls_to("show_instance")) == 8
