"""The supervisor: keeps every background task, drains them at shutdown, refuses work once closing."""

from __future__ import annotations

import asyncio

import pytest

from bot.supervisor import Admission, Supervisor, Work


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


# --- the worker pool -------------------------------------------------------------------------------------


async def test_the_pool_runs_work_in_arrival_order_with_at_most_its_workers_at_once() -> None:
    supervisor = Supervisor()
    pool = supervisor.pool("test", workers=2, capacity=10)
    release = asyncio.Event()
    started: list[int] = []
    running = 0
    most = 0

    def item(number: int) -> Work:
        async def work() -> None:
            nonlocal running, most
            started.append(number)
            running += 1
            most = max(most, running)
            await release.wait()
            running -= 1

        return work

    for number in range(6):
        assert await pool.offer(item(number), name=f"item {number}") is Admission.QUEUED
    for _ in range(5):
        await asyncio.sleep(0)
    assert started == [0, 1] and pool.queued == 4
    release.set()
    await supervisor.drain(timeout=5)
    assert started == [0, 1, 2, 3, 4, 5] and most == 2


async def test_a_full_queue_refuses_at_once_or_after_waiting_for_room() -> None:
    supervisor = Supervisor()
    pool = supervisor.pool("test", workers=1, capacity=1)
    release = asyncio.Event()

    async def blocked() -> None:
        await release.wait()

    assert await pool.offer(blocked, name="running") is Admission.QUEUED
    await asyncio.sleep(0)  # the worker takes it; its queue slot is free again
    assert await pool.offer(blocked, name="waiting") is Admission.QUEUED
    assert await pool.offer(blocked, name="refused") is Admission.FULL
    assert await pool.offer(blocked, name="refused after a wait", wait=0.01) is Admission.FULL

    waiting = asyncio.create_task(pool.offer(blocked, name="gets room", wait=5))
    await asyncio.sleep(0)
    release.set()
    assert await waiting is Admission.QUEUED
    await supervisor.drain(timeout=5)


async def test_drain_finishes_the_queue_then_the_pool_takes_nothing_more() -> None:
    supervisor = Supervisor()
    pool = supervisor.pool("test", workers=1, capacity=10)
    done: list[int] = []
    release = asyncio.Event()

    def item(number: int) -> Work:
        async def work() -> None:
            await release.wait()
            done.append(number)

        return work

    for number in range(3):
        await pool.offer(item(number), name=f"item {number}")
    draining = asyncio.create_task(supervisor.drain(timeout=5))
    await asyncio.sleep(0)
    assert await pool.offer(item(9), name="late") is Admission.CLOSED
    release.set()
    await draining
    assert done == [0, 1, 2] and pool.queued == 0 and supervisor.running == 0


async def test_a_failing_item_is_logged_and_the_worker_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    supervisor = Supervisor()
    pool = supervisor.pool("test", workers=1, capacity=10)
    done: list[str] = []

    async def broken() -> None:
        raise ValueError("boom")

    async def fine() -> None:
        done.append("fine")

    await pool.offer(broken, name="broken item")
    await pool.offer(fine, name="fine item")
    await supervisor.drain(timeout=5)
    assert "background task broken item failed" in caplog.text and done == ["fine"]


async def test_drain_cancels_queued_work_that_outlives_the_timeout() -> None:
    supervisor = Supervisor()
    pool = supervisor.pool("test", workers=1, capacity=10)
    done: list[str] = []

    async def stuck() -> None:
        await asyncio.Event().wait()

    async def behind() -> None:
        done.append("behind")

    await pool.offer(stuck, name="stuck")
    await pool.offer(behind, name="behind")
    await supervisor.drain(timeout=0.01)
    assert done == [] and supervisor.running == 0
