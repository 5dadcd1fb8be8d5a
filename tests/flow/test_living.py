"""Keeping channel messages current (:mod:`bot.core.flow.living`), on the fakes: at most one update per
channel per second, none when nothing visible changed, the latest state rather than a backlog, a final
state kept until Slack takes it, a message that is gone left alone, Retry-After honoured."""

from __future__ import annotations

from bot.core.flow.living import LiveMessages
from bot.core.ports import UpdateResult
from bot.core.rules.living import percent, shown_state
from bot.core.rules.messages import BackupStarted
from tests.factories import submitted_request
from tests.fakes import FakeClock, FakeNotifier

OPS, ALERTS = "COPS1", "CALERTS1"
REQUEST = submitted_request(request_id="r1", backup_id="b1", message_ts="1.1")


def running(progress: str) -> BackupStarted:
    return BackupStarted(REQUEST, status="backuping", progress=progress)


def live() -> tuple[LiveMessages, FakeNotifier, FakeClock]:
    notifier, clock = FakeNotifier(), FakeClock()
    return LiveMessages(notifier, clock), notifier, clock


async def show(messages: LiveMessages, notice: BackupStarted, ts: str = "1.1", channel: str = OPS) -> None:
    final = notice.final is not None
    await messages.show(channel, ts, notice, shows=shown_state(notice), final=final)


async def test_updates_in_one_channel_wait_a_second_and_send_the_latest_state() -> None:
    messages, notifier, clock = live()

    await show(messages, running("10.0"))
    clock.advance(0.3)
    await show(messages, running("20.0"))
    await show(messages, running("30.0"))
    await show(messages, running("30.0"), ts="2.2", channel=ALERTS)  # another channel has its own turn
    await messages.flush()
    clock.advance(0.7)
    await messages.flush()
    await messages.flush()

    shown = [(u.channel_id, u.ts, u.content) for u in notifier.updates]
    assert shown == [
        (OPS, "1.1", running("10.0")),
        (ALERTS, "2.2", running("30.0")),
        (OPS, "1.1", running("30.0")),
    ]


async def test_nothing_visible_changed_means_no_update() -> None:
    messages, notifier, clock = live()
    messages.known(OPS, "1.1", shown_state(BackupStarted(REQUEST)))

    await show(messages, BackupStarted(REQUEST, status="waiting"))
    await show(messages, running("12.1"))
    clock.advance(2)
    await show(messages, running("12.9"))  # still 12 %

    assert [u.content for u in notifier.updates] == [running("12.1")]


async def test_a_final_state_is_kept_until_slack_takes_it_and_retry_after_is_honoured() -> None:
    messages, notifier, clock = live()
    notifier.update_results = [UpdateResult("refused", retry_after=5.0)]
    ended = BackupStarted(REQUEST, status="succeed")

    await messages.show(OPS, "1.1", ended, shows=("ended", "succeed"), final=True)
    await show(messages, running("99.0"))  # a late progress never replaces the end
    clock.advance(3)
    await messages.flush()
    assert len(notifier.updates) == 1, "Slack asked for 5 s"
    clock.advance(3)
    await messages.flush()

    assert [u.result.outcome for u in notifier.updates] == ["refused", "updated"]
    assert notifier.updates[-1].content == ended


async def test_a_message_that_is_gone_is_left_alone() -> None:
    messages, notifier, clock = live()
    notifier.update_results = [UpdateResult("gone")]

    await show(messages, running("10.0"))
    clock.advance(5)
    await show(messages, running("50.0"))
    await messages.flush()

    assert len(notifier.updates) == 1
    assert messages.is_gone(OPS, "1.1")


def test_progress_reads_as_a_whole_percent() -> None:
    assert (percent("42.99"), percent("100.00"), percent("-3"), percent(None), percent("n/a")) == (
        42,
        100,
        0,
        None,
        None,
    )
    assert percent("nan") is None and percent("inf") is None
