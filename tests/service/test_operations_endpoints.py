"""The operations endpoints of INTERFACE §10: /livez, /readyz, /healthz, /metrics, and BOT_OPS_PORT.

Liveness never asks anyone; readiness asks the database, the policy and (Socket Mode) the link to Slack,
never DCS or IAM, so an IAM outage cannot make an orchestrator restart every replica in a loop.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.typedefs import Handler

from bot.config import ConfigError
from bot.standins.dcs.control import DEFAULT_PASSWORD
from bot.standins.faults import Answer, Fault
from tests.e2e.conftest import DEFAULT_POLICY, OPS, DcsGate, Driver, StandIns, bot_environment
from tests.service.conftest import SECRETS, Service, ServiceFactory
from tests.service.process import free_port, running_bot, wait_until_closed, wait_until_serving

# Much more than a probe may take; the emulator's IAM holds its answer this long in the "hangs" case.
IAM_HANG = 3.0


class CreateBackupGate(DcsGate):
    """Holds only CreateBackup calls (POST …/backups); everything else reaches the emulator at once."""

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "POST" and request.path.endswith("/backups"):
            return await super().middleware(request, handler)
        return await handler(request)


async def body(service: Service, path: str) -> tuple[int, dict[str, object]]:
    status, text = await service.get(path)
    loaded: dict[str, object] = json.loads(text)
    return status, loaded


async def probes(service: Service) -> dict[str, int]:
    """The status of each probe, asked at the same time."""
    paths = ("/livez", "/readyz", "/healthz")
    answers = await asyncio.gather(*(service.get(path) for path in paths))
    return {path: status for path, (status, _) in zip(paths, answers, strict=True)}


async def test_each_endpoint_answers(service: Service) -> None:
    assert await body(service, "/livez") == (200, {"ok": True})
    assert await body(service, "/readyz") == (200, {"ok": True})
    status, checks = await service.health()
    metrics_status, metrics = await service.get("/metrics")

    assert status == 200
    assert checks == {
        "database": "ok",
        "policy": "ok (3 rules, 0 watches)",
        "dcs": {"default": "unknown (no DCS call yet; AK/SK signing)"},
        "socket": "not used (HTTP mode)",
    }
    assert metrics_status == 200 and "dcs_bot_commands_total" in metrics


async def test_the_dcs_check_tells_the_last_call_without_making_one(service: Service) -> None:
    card = await service.card("redis-prod rdb")
    await service.click(card, "backup_confirm")
    await service.channel_message(OPS)
    calls = len(service.dcs.log.calls)

    check = await service.dcs_check()

    assert check.startswith("ok (last call "), check
    assert "HTTP 200" in check and check.endswith("; AK/SK signing)")
    # Only the tracker may have polled meanwhile; the probe itself never calls DCS.
    assert {c.endpoint for c in service.dcs.log.calls[calls:]} <= {"list_backups"}


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(Fault(Answer.ERROR, target="iam_token", status=503, times=100), id="refuses"),
        pytest.param(Fault(Answer.NORMAL, target="iam_token", delay=IAM_HANG, times=100), id="hangs"),
    ],
)
async def test_an_iam_outage_leaves_the_bot_live_and_ready(
    service_factory: ServiceFactory, fault: Fault
) -> None:
    service = await service_factory(iam=True, dcs_timeout=1)
    service.dcs.inject(fault)

    started = time.monotonic()
    statuses = await probes(service)
    took = time.monotonic() - started

    assert statuses == {"/livez": 200, "/readyz": 200, "/healthz": 200}
    assert took < 2.0, "no probe waits for IAM"  # IAM hangs for IAM_HANG (3 s)
    assert service.dcs.calls_to("iam_token") == [], "no probe asks IAM"

    # People still get an answer; the probes then say what the bot learnt.
    await service.command("list redis-prod")
    reply = await service.reply_to("UALICE1")
    check = await service.dcs_check()

    assert "I could not get an answer from DCS" in reply.shown, reply.shown
    assert await probes(service) == {"/livez": 200, "/readyz": 200, "/healthz": 200}
    assert check.startswith("error (last call list_instances "), check
    assert "no answer" in check and "no answer since start-up" in check
    assert "no IAM token cached; the last request for one failed" in check
    assert DEFAULT_PASSWORD not in check


async def test_a_refused_iam_password_is_reported_once_the_bot_has_tried(
    service_factory: ServiceFactory,
) -> None:
    service = await service_factory(iam=True, dcs_password="not-the-password")

    assert await service.dcs_check() == "unknown (no DCS call yet; no IAM token cached)"
    await service.command("list redis-prod")
    await service.reply_to("UALICE1")
    status, _ = await service.health()
    check = await service.dcs_check()

    assert status == 200
    assert "the last request for one failed" in check and "IAM refused a token" in check, check
    assert "not-the-password" not in check and DEFAULT_PASSWORD not in check


async def test_an_iam_token_is_reported_as_cached(service_factory: ServiceFactory) -> None:
    service = await service_factory(iam=True)

    await service.command("list redis-prod")
    await service.reply_to("UALICE1")
    check = await service.dcs_check()

    assert check.startswith("ok (last call list_backups "), check
    assert "HTTP 204; IAM token cached, renewed after " in check
    assert len(service.dcs.calls_to("iam_token")) == 1
    assert not [secret for secret in SECRETS if secret in check + "\n".join(service.log_lines())]


async def test_a_dcs_outage_leaves_the_bot_ready(service: Service) -> None:
    service.dcs.inject(Fault(Answer.HTML, status=502, times=100))

    await service.command("list redis-prod")
    await service.reply_to("UALICE1")
    check = await service.dcs_check()

    assert await probes(service) == {"/livez": 200, "/readyz": 200, "/healthz": 200}
    assert check.startswith("error (last call list_instances "), check
    assert "HTTP 502" in check and "no answer since start-up" in check


async def test_a_database_that_is_gone_makes_the_bot_unready_but_not_dead(service: Service) -> None:
    await service.bot.database.close()

    ready_status, ready = await body(service, "/readyz")
    status, checks = await service.health()

    assert ready_status == 503 and ready == {"ok": False, "failing": {"database": "error: ValueError"}}
    assert status == 503 and checks["database"] == "error: ValueError"
    assert checks["policy"].startswith("ok")
    assert await body(service, "/livez") == (200, {"ok": True})


async def test_a_bot_that_is_stopping_is_unready(service: Service) -> None:
    service.bot.lifecycle.stopping = True

    ready_status, ready = await body(service, "/readyz")
    status, checks = await service.health()

    assert ready_status == 503 and ready["failing"] == {"shutdown": "stopping: taking no new work"}
    assert status == 503 and checks["shutdown"] == "stopping: taking no new work"
    assert (await service.get("/livez"))[0] == 200


async def test_while_in_flight_work_drains_the_ops_port_says_unready(
    service_factory: ServiceFactory,
) -> None:
    gate = CreateBackupGate()
    service = await service_factory(dcs_gate=gate, bot_ops_port=free_port())
    card = await service.card("redis-prod rdb")
    await service.click(card, "backup_confirm")
    await gate.held("POST")

    closing = asyncio.create_task(service.server.close())
    ready = 200
    async with asyncio.timeout(5):
        while ready == 200:
            await asyncio.sleep(0.02)
            ready, _ = await service.get("/readyz")
    live, _ = await service.get("/livez")
    gate.open()
    await closing

    assert (ready, live) == (503, 200)
    # The backup call in flight finished and its result was posted before the bot stopped.
    assert service.backups_created() == 1
    assert "backup" in (await service.channel_message(OPS)).shown.lower()
    await wait_until_closed(f"{service.ops_url}/livez")


async def test_an_ops_port_in_use_is_named(service_factory: ServiceFactory) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(ConfigError, match=f"BOT_OPS_PORT: cannot listen on {port} "):
            await service_factory(bot_ops_port=port)


async def wait_until_answering(url: str, timeout: float = 10.0) -> None:
    """Polls ``url`` with short sleeps until something answers there, whatever the status."""
    async with asyncio.timeout(timeout), aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url) as response:
                    await response.read()
                    return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)


async def test_bot_ops_port_splits_the_ports_of_a_real_process(tmp_path: Path, stand_ins: StandIns) -> None:
    port, ops_port = free_port(), free_port()
    settings = bot_environment(
        tmp_path, stand_ins, DEFAULT_POLICY, port, BOT_OPS_PORT=str(ops_port), BOT_LOG_FORMAT="json"
    )
    events = f"http://127.0.0.1:{port}/slack/events"
    ops = f"http://127.0.0.1:{ops_port}"

    async with running_bot(["serve"], settings, cwd=tmp_path) as bot:
        await wait_until_serving(f"{ops}/livez", bot)
        # The operations port opens as the bot starts, just before PORT does.
        await wait_until_answering(f"http://127.0.0.1:{port}/livez")
        driver = Driver(stand_ins=stand_ins, bot_url=events)
        card = await driver.card("redis-prod rdb")
        async with aiohttp.ClientSession() as session:
            statuses = {}
            for url in (
                f"{ops}/livez",
                f"{ops}/readyz",
                f"{ops}/healthz",
                f"{ops}/metrics",
                f"http://127.0.0.1:{port}/livez",
                f"http://127.0.0.1:{port}/readyz",
                f"http://127.0.0.1:{port}/healthz",
                f"http://127.0.0.1:{port}/metrics",
            ):
                async with session.get(url) as response:
                    statuses[url.removeprefix("http://127.0.0.1:")] = response.status
            async with session.post(f"{ops}/slack/events", data=b"") as response:
                events_on_ops = response.status
        bot.signal(signal.SIGTERM)
        code = await bot.exit_code()

    assert driver.slack.buttons(card), "/slack/events is served on PORT"
    assert statuses == {
        f"{ops_port}/livez": 200,
        f"{ops_port}/readyz": 200,
        f"{ops_port}/healthz": 200,
        f"{ops_port}/metrics": 200,
        f"{port}/livez": 404,
        f"{port}/readyz": 404,
        f"{port}/healthz": 404,
        f"{port}/metrics": 404,
    }
    assert events_on_ops == 404
    assert code == 0
    started = next(line for line in bot.stderr if "dcs-bot starting" in line)
    assert f"on port {ops_port}" in started
    assert "Traceback" not in "\n".join(bot.stderr)
