"""The supervisor: keeps every background task, drains them at shutdown, refuses work once closing."""

from __future__ import annotations

import asyncio

import pytest

from bot.supervisor import Supervisor


async def test_work_runs_and_is_forgotten_when_done() -> None:
    supervisor = Supervisor()
    done = asyncio.Event()

    async def work() -> None:
        done.set()

    assert supervisor.spawn(work(), name="work")
    await done.wait()
    await asyncio.sleep(0)
    assert supervisor.running == 0


async def test_failures_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    supervisor = Supervisor()

    async def broken() -> None:
        raise ValueError("boom")

    supervisor.spawn(broken(), name="broken")
    await supervisor.drain(timeout=1)
    assert "background task broken failed" in caplog.text


async def test_drain_waits_for_running_work_and_then_refuses_more() -> None:
    supervisor = Supervisor()
    release = asyncio.Event()
    finished: list[str] = []

    async def in_flight() -> None:
        await release.wait()
        finished.append("in flight")

    supervisor.spawn(in_flight(), name="in flight")
    draining = asyncio.create_task(supervisor.drain(timeout=5))
    await asyncio.sleep(0)
    assert not supervisor.accepting

    async def late() -> None:
        finished.append("late")

    assert not supervisor.spawn(late(), name="late")
    release.set()
    await draining
    assert finished == ["in flight"]


async def test_drain_cancels_what_outlives_the_timeout(caplog: pytest.LogCaptureFixture) -> None:
    supervisor = Supervisor()
    cancelled = asyncio.Event()

    async def stuck() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    supervisor.spawn(stuck(), name="stuck")
    await asyncio.sleep(0)
    await supervisor.drain(timeout=0.01)
    assert cancelled.is_set()
    assert "cancelling stuck at shutdown" in caplog.text
