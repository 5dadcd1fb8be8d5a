"""The tracker across clouds, on fakes: each backup is followed in its own cloud, one list call per instance
and cycle; a watch limited to a cloud watches only there; a cloud that fails backs off on its own."""

from __future__ import annotations

from bot.core.errors import DcsTransportError
from bot.core.flow.tracker import Tracker, TrackerOptions
from bot.core.ports import CloudMap
from bot.core.rules.backup_request import RequestState
from bot.core.rules.messages import BackupFinished, WatchedBackupEnded
from tests.factories import NOW, make_instance, make_record, submitted_request
from tests.fakes import FakeDcs, Fakes, make_fakes

ALERTS = "CALERTS1"
DE_PROD = make_instance("redis-prod", "11111111-2222-3333-4444-555555555555")
NL_PROD = make_instance("redis-prod", "33333333-2222-3333-4444-555555555555")


def two_clouds(policy: str = "") -> tuple[Fakes, FakeDcs, Tracker]:
    fakes = make_fakes(policy, DE_PROD)
    nl = FakeDcs(NL_PROD, clock=fakes.clock)
    tracker = Tracker(
        clouds=CloudMap({"eu-de": fakes.dcs, "eu-nl": nl}),
        requests=fakes.requests,
        watch=fakes.watch,
        notifier=fakes.notifier,
        audit=fakes.audit,
        policy=lambda: fakes.policy,
        clock=fakes.clock,
        options=TrackerOptions(interval=15),
    )
    return fakes, nl, tracker


async def test_a_backup_is_followed_in_its_own_cloud() -> None:
    fakes, nl, tracker = two_clouds()
    request = submitted_request(instance=NL_PROD, cloud="eu-nl", backup_id="b-nl", message_ts="1.1")
    await fakes.requests.add(request)
    nl.add_record(
        NL_PROD.instance_id, make_record("b-nl", "succeed", instance_id=NL_PROD.instance_id, ended=NOW)
    )

    await tracker.cycle()

    assert fakes.dcs.calls_to("list_backups") == [] and len(nl.calls_to("list_backups")) == 1
    assert (await fakes.requests.get(request.request_id)).state == RequestState.FINISHED  # type: ignore[union-attr]
    [finished] = fakes.notifier.notices_of(BackupFinished)
    assert finished.request.cloud == "eu-nl"


async def test_a_watch_limited_to_one_cloud_watches_only_there_and_names_it() -> None:
    fakes, nl, tracker = two_clouds(
        f'[[watch]]\ninstances = ["redis-prod"]\nclouds = ["eu-nl"]\nchannel = "{ALERTS}"\n'
    )
    await tracker.cycle()  # the watch begins
    for dcs, target in ((fakes.dcs, DE_PROD), (nl, NL_PROD)):
        dcs.add_record(
            target.instance_id,
            make_record(
                f"auto-{target.instance_id[:4]}", "failed", backup_type="auto", ended=fakes.clock.advance(5)
            ),
        )
    await tracker.cycle()

    [notice] = fakes.notifier.notices_of(WatchedBackupEnded)
    assert notice.cloud == "eu-nl" and notice.record.backup_id == "auto-3333"
    assert fakes.dcs.calls_to("list_backups") == []
    assert {e.cloud for e in fakes.audit.entries if e.detail.get("watch")} <= {"eu-nl"}


async def test_a_cloud_that_cannot_list_its_instances_does_not_stop_the_others_watch() -> None:
    fakes, nl, tracker = two_clouds(f'[[watch]]\ninstances = ["redis-prod"]\nchannel = "{ALERTS}"\n')
    fakes.dcs.fail("list_instances", DcsTransportError("connection refused"), times=100)
    await tracker.cycle()
    nl.add_record(
        NL_PROD.instance_id,
        make_record("auto-nl", "failed", backup_type="auto", ended=fakes.clock.advance(5)),
    )
    report = await tracker.cycle()

    assert report.polled == [NL_PROD.instance_id]
    [notice] = fakes.notifier.notices_of(WatchedBackupEnded)
    assert notice.cloud == "eu-nl"
    # The failing cloud backs off: the second cycle did not ask it again.
    assert len(fakes.dcs.calls_to("list_instances")) == 1
