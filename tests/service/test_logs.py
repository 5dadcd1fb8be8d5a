"""Logs: one JSON object per line with BOT_LOG_FORMAT=json, and no secret in any of them."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import PurePosixPath

import pytest

from bot.logs import REDACTED, configure_logging
from tests.e2e.conftest import OPS
from tests.service.conftest import SECRETS, Service, ServiceFactory

TOKEN = "xoxb-secret-bot-token-12345"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("json", [TOKEN, PASSWORD], stream=stream)
    yield stream
    logging.getLogger().handlers.clear()


def parsed(stream: io.StringIO) -> list[dict[str, object]]:
    """Every line as a JSON object with the four fields every line has."""
    entries = []
    for line in stream.getvalue().splitlines():
        entry = json.loads(line)
        assert isinstance(entry, dict), line
        assert {"time", "level", "logger", "message"} <= entry.keys(), line
        entries.append(entry)
    return entries


def test_a_secret_logged_on_purpose_is_redacted_everywhere(captured: io.StringIO) -> None:
    log = logging.getLogger("bot.test")

    log.warning(f"token {TOKEN} in the message")
    log.warning("password %s in the arguments", PASSWORD)
    log.info(
        "in extra fields",
        extra={
            "token": TOKEN,
            "nested": {"auth": [f"Bearer {TOKEN}"]},
            "n": 3,
            "path": PurePosixPath("/run/secrets") / TOKEN,
            "where": PurePosixPath("/run/public"),
        },
    )
    try:
        raise RuntimeError(f"login failed for password {PASSWORD!r}")
    except RuntimeError:
        log.exception("in a traceback")
    log.error("in a stack", stack_info=True, extra={"hint": PASSWORD})

    text = captured.getvalue()
    assert TOKEN not in text and PASSWORD not in text
    entries = parsed(captured)
    assert [e["message"] for e in entries] == [
        f"token {REDACTED} in the message",
        f"password {REDACTED} in the arguments",
        "in extra fields",
        "in a traceback",
        "in a stack",
    ]
    assert entries[2]["token"] == REDACTED and entries[2]["nested"] == {"auth": [f"Bearer {REDACTED}"]}
    assert (entries[2]["n"], entries[2]["where"]) == (3, "/run/public")
    assert entries[2]["path"] == f"/run/secrets/{REDACTED}"
    assert "RuntimeError" in str(entries[3]["exception"]) and REDACTED in str(entries[3]["exception"])
    assert (entries[4]["level"], entries[4]["logger"], entries[4]["hint"]) == ("error", "bot.test", REDACTED)
    assert "test_a_secret_logged_on_purpose_is_redacted_everywhere" in str(entries[4]["stack"])


def test_text_logs_redact_too() -> None:
    stream = io.StringIO()
    configure_logging("text", [TOKEN], stream=stream)
    try:
        logging.getLogger("bot.test").error("calling with %s", TOKEN)
    finally:
        logging.getLogger().handlers.clear()

    assert TOKEN not in stream.getvalue() and f"calling with {REDACTED}" in stream.getvalue()


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({}, id="http-aksk"),
        pytest.param({"socket_mode": True, "iam": True}, id="socket-iam"),
    ],
)
async def test_a_whole_flow_logs_json_lines_without_secrets(
    service_factory: ServiceFactory, options: dict[str, bool]
) -> None:
    service: Service = await service_factory(**options)
    if options.get("socket_mode"):
        await service.slack.wait_for_socket()
    card = await service.card('redis-prod aof "logged"')
    await service.click(card, "backup_confirm")
    started = await service.channel_message(OPS)
    await service.thread_replies(started.ts)
    await service.command("redis-prod --frobnicate")
    await service.health()
    await service.get("/metrics")

    entries = parsed(service.log)
    assert len(entries) > 10, "the flow was logged"
    assert {e["logger"] for e in entries} >= {"aiohttp.access"}
    leaked = [s for s in SECRETS if s in service.log.getvalue()]
    assert leaked == []
