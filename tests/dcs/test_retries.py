"""Reads (GET) are tried again on 429, 5xx and lost connections, with jittered exponential backoff that
honours ``Retry-After``, the whole call within the client's timeout; CreateBackup is sent once."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import tenacity
from hypothesis import given
from hypothesis import strategies as st

from bot.core.errors import DcsApiError, DcsError, DcsTransportError
from bot.core.rules.instances import BackupFormat
from bot.dcs.auth import AkSkAuth
from bot.dcs.client import RETRY_REASONS, Backoff, DcsClient, retry_reason
from bot.dcs.errors import NoAnswerError, is_transient
from tests.dcs.conftest import (
    ACCESS_KEY,
    FAST_BACKOFF,
    INSTANCE_ID,
    PROJECT_ID,
    SECRET_KEY,
    TIMEOUT,
    Canned,
    FakeCloud,
    token_auth,
)
from tests.dcs.test_client import BACKUP_ID, BACKUP_RECORD, SHOWN_INSTANCE

Read = Callable[[DcsClient], Awaitable[Any]]

READS: dict[str, tuple[Read, Canned]] = {
    "show_instance": (lambda client: client.show_instance(INSTANCE_ID), Canned(body=SHOWN_INSTANCE)),
    "list_instances": (
        lambda client: client.list_instances(name="redis-prod"),
        Canned(body={"instance_num": 1, "instances": [SHOWN_INSTANCE]}),
    ),
    "list_backups": (
        lambda client: client.list_backups(INSTANCE_ID),
        Canned(body={"total_num": 1, "backup_record_response": [BACKUP_RECORD]}),
    ),
}

UNAVAILABLE = Canned(status=503, body={"error_code": "DCS.5000", "error_msg": "Service unavailable"})
BAD_GATEWAY_PAGE = Canned(status=502, raw_body=b"<html><body>502 Bad Gateway</body></html>")
RATE_LIMITED = Canned(status=429, raw_body=b"")
CLOSED = Canned(close=True)

PASSING = {
    "503": [UNAVAILABLE],
    "502-html": [BAD_GATEWAY_PAGE],
    "500": [Canned(status=500, body={"error_code": "DCS.5000", "error_msg": "Internal error"})],
    "429-without-retry-after": [RATE_LIMITED],
    "429-retry-after-0": [Canned(status=429, raw_body=b"", headers={"Retry-After": "0"})],
    # aiohttp sends an idempotent request again by itself once after a kept-alive connection closes.
    "connection-closed": [CLOSED, CLOSED],
    "several": [UNAVAILABLE, RATE_LIMITED, CLOSED, CLOSED],
}


def client_for(
    cloud: FakeCloud,
    session: aiohttp.ClientSession,
    *,
    timeout: float = TIMEOUT,
    backoff: Backoff = FAST_BACKOFF,
    **hooks: Any,
) -> DcsClient:
    auth = AkSkAuth(ACCESS_KEY, SECRET_KEY, PROJECT_ID)
    return DcsClient(
        session,
        endpoint=cloud.base_url,
        project_id=PROJECT_ID,
        auth=auth,
        timeout=timeout,
        backoff=backoff,
        **hooks,
    )


@pytest.mark.parametrize("operation", sorted(READS))
@pytest.mark.parametrize("failures", PASSING.values(), ids=PASSING.keys())
async def test_a_read_survives_passing_failures(
    cloud: FakeCloud, aksk_client: DcsClient, operation: str, failures: list[Canned]
) -> None:
    read, success = READS[operation]
    cloud.reply(*failures, success)

    await read(aksk_client)

    assert len(cloud.dcs_requests) == len(failures) + 1
    assert len({(r.method, r.raw_path, r.raw_query) for r in cloud.dcs_requests}) == 1, "the same request"


async def test_retry_after_is_waited_for(cloud: FakeCloud, session: aiohttp.ClientSession) -> None:
    client = client_for(cloud, session, timeout=2)
    cloud.reply(Canned(status=429, raw_body=b"", headers={"Retry-After": "0.3"}), Canned(body=SHOWN_INSTANCE))

    await client.show_instance(INSTANCE_ID)

    first, second = cloud.dcs_requests
    assert second.at - first.at >= 0.3


async def test_a_retry_after_beyond_the_timeout_ends_the_call_at_once(
    cloud: FakeCloud, aksk_client: DcsClient
) -> None:
    cloud.reply(Canned(status=429, raw_body=b"", headers={"Retry-After": "7"}))
    started = time.monotonic()

    with pytest.raises(DcsApiError) as caught:
        await aksk_client.list_backups(INSTANCE_ID)

    # Far below the 7 s asked for: the call gives up at once instead of waiting past its deadline.
    assert time.monotonic() - started < 1.0
    assert (caught.value.status, caught.value.retry_after) == (429, 7.0)
    assert len(cloud.dcs_requests) == 1


@pytest.mark.parametrize(
    "replies",
    [
        pytest.param([UNAVAILABLE] * FAST_BACKOFF.attempts, id="always-503"),
        pytest.param([UNAVAILABLE, Canned(hang=True)], id="503-then-silence"),
        pytest.param([Canned(hang=True)], id="silence"),
    ],
)
async def test_the_whole_call_ends_within_the_timeout(
    cloud: FakeCloud, session: aiohttp.ClientSession, replies: list[Canned]
) -> None:
    # Slow enough backoff that the attempts cannot run out before the time does.
    client = client_for(cloud, session, backoff=Backoff(initial=0.04, maximum=0.04, jitter=0.01))
    cloud.reply(*replies)
    started = time.monotonic()

    with pytest.raises(DcsError):
        await client.show_instance(INSTANCE_ID)

    # The deadline ends it; the margin is for a busy machine, not for another attempt or wait.
    assert time.monotonic() - started < TIMEOUT + 0.5


async def test_a_timeout_names_the_whole_budget(cloud: FakeCloud, aksk_client: DcsClient) -> None:
    cloud.reply(UNAVAILABLE, Canned(hang=True))

    with pytest.raises(NoAnswerError, match=r"^DCS did not answer within 0\.2 s$"):
        await aksk_client.show_instance(INSTANCE_ID)

    assert len(cloud.dcs_requests) == 2


async def test_attempts_are_bounded_even_with_time_left(
    cloud: FakeCloud, session: aiohttp.ClientSession
) -> None:
    client = client_for(cloud, session, timeout=5)
    cloud.reply(*[UNAVAILABLE] * FAST_BACKOFF.attempts)

    with pytest.raises(DcsApiError) as caught:
        await client.list_instances()

    assert caught.value.status == 503
    assert len(cloud.dcs_requests) == FAST_BACKOFF.attempts


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(UNAVAILABLE, id="503"),
        pytest.param(RATE_LIMITED, id="429"),
        pytest.param(BAD_GATEWAY_PAGE, id="502-html"),
        pytest.param(Canned(status=504, raw_body=b""), id="504"),
        pytest.param(CLOSED, id="connection-closed"),
        pytest.param(Canned(hang=True), id="timeout"),
    ],
)
async def test_create_backup_is_sent_once(cloud: FakeCloud, aksk_client: DcsClient, answer: Canned) -> None:
    # A second closed connection would show whether aiohttp itself sent the POST again.
    cloud.reply(answer, CLOSED)

    with pytest.raises(DcsError):
        await aksk_client.create_backup(INSTANCE_ID, backup_format=BackupFormat.RDB, remark="once")

    assert [request.method for request in cloud.dcs_requests] == ["POST"]


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(Canned(status=400, body={"error_code": "DCS.4800", "error_msg": "bad"}), id="400"),
        pytest.param(Canned(status=403, body={"error_code": "DCS.2003", "error_msg": "no"}), id="403"),
        pytest.param(Canned(status=404, body={"error_code": "DCS.3022", "error_msg": "gone"}), id="404"),
        pytest.param(Canned(raw_body=b"<html>maintenance</html>"), id="unreadable-200"),
        pytest.param(Canned(status=302, headers={"Location": "http://127.0.0.1:1/"}), id="redirect"),
    ],
)
async def test_answers_that_would_not_change_are_not_retried(
    cloud: FakeCloud, aksk_client: DcsClient, answer: Canned
) -> None:
    cloud.reply(answer)

    with pytest.raises(DcsError):
        await aksk_client.show_instance(INSTANCE_ID)

    assert len(cloud.dcs_requests) == 1


async def test_iam_trouble_while_reading_is_retried(cloud: FakeCloud, session: aiohttp.ClientSession) -> None:
    client = DcsClient(
        session,
        endpoint=cloud.base_url,
        project_id=PROJECT_ID,
        auth=token_auth(cloud, session),
        timeout=TIMEOUT,
        backoff=FAST_BACKOFF,
    )
    cloud.iam_reply(Canned(status=503, raw_body=b"busy"), Canned(close=True), Canned(close=True))
    cloud.reply(Canned(body=SHOWN_INSTANCE))

    instance = await client.show_instance(INSTANCE_ID)

    assert instance.instance_id == INSTANCE_ID
    assert len(cloud.iam_requests) == 4
    assert len(cloud.dcs_requests) == 1


async def test_every_attempt_and_retry_is_observed(cloud: FakeCloud, session: aiohttp.ClientSession) -> None:
    attempts: list[tuple[str, int]] = []
    retries: list[tuple[str, str]] = []
    client = client_for(
        cloud,
        session,
        observer=lambda operation, status, _: attempts.append((operation, status)),
        on_retry=lambda operation, reason: retries.append((operation, reason)),
    )
    cloud.reply(RATE_LIMITED, UNAVAILABLE, CLOSED, CLOSED, Canned(status=204))
    cloud.reply(UNAVAILABLE, Canned(body={"backup_id": BACKUP_ID}))

    await client.list_backups(INSTANCE_ID)
    with pytest.raises(DcsApiError):
        await client.create_backup(INSTANCE_ID, backup_format=BackupFormat.RDB, remark="")

    assert attempts == [
        ("list_backups", 429),
        ("list_backups", 503),
        ("list_backups", 0),
        ("list_backups", 204),
        ("create_backup", 503),
    ]
    assert retries == [
        ("list_backups", "rate_limited"),
        ("list_backups", "server_error"),
        ("list_backups", "no_answer"),
    ]
    assert {reason for _, reason in retries} <= set(RETRY_REASONS)


def test_what_is_transient() -> None:
    assert is_transient(DcsApiError(429, None, "slow down"))
    assert is_transient(DcsApiError(503, "DCS.5000", "unavailable"))
    assert is_transient(NoAnswerError("DCS did not answer within 1 s"))
    assert not is_transient(DcsApiError(400, "DCS.4096", "backuping"))
    assert not is_transient(DcsTransportError("DCS answered with an unreadable body"))
    assert not is_transient(ValueError("no DCS error"))
    assert retry_reason(None) == "no_answer"


@given(
    initial=st.floats(0.001, 2),
    maximum=st.floats(0.001, 10),
    jitter=st.floats(0, 1),
    attempt=st.integers(1, 50),
)
def test_backoff_grows_exponentially_within_its_bounds(
    initial: float, maximum: float, jitter: float, attempt: int
) -> None:
    waits = Backoff(initial=initial, maximum=maximum, jitter=jitter).waits()
    state = tenacity.RetryCallState(retry_object=tenacity.AsyncRetrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt

    wait = waits(state)

    base = min(initial * 2 ** (attempt - 1), maximum)
    assert base - 1e-9 <= wait <= base + jitter + 1e-9
