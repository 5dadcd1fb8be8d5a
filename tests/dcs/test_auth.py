"""AK/SK signing headers and the IAM token cache, against the fake IAM on 127.0.0.1."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
import yarl
from pydantic import SecretStr

from bot.core.errors import DcsApiError, DcsError, DcsTransportError
from bot.dcs.auth import AkSkAuth, DcsAuth, TokenAuth, TokenState, host_header, redact, refresh_margin
from tests.dcs.conftest import (
    ACCESS_KEY,
    DOMAIN,
    PASSWORD,
    PROJECT_ID,
    SECRET_KEY,
    TIMEOUT,
    TOKEN_PREFIX,
    USERNAME,
    Canned,
    FakeClock,
    FakeCloud,
    token_auth,
    unused_port,
)

START = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
DCS_VECTOR_URL = yarl.URL(
    "https://dcs.eu-de.otc.t-systems.com/v2/0123456789abcdef0123456789abcdef/instances/"
    "11111111-2222-3333-4444-555555555555/backups",
    encoded=True,
)


# --- AK/SK


async def test_aksk_reproduces_the_dcs_backup_vector() -> None:
    auth = AkSkAuth(
        "AKEXAMPLE", SecretStr("SKEXAMPLE"), "0123456789abcdef0123456789abcdef", clock=lambda: START
    )
    headers = {"Content-Type": "application/json"}

    await auth.apply("POST", DCS_VECTOR_URL, headers, b'{"remark":"nightly","backup_format":"aof"}')

    assert headers == {
        "Content-Type": "application/json",
        "X-Sdk-Date": "20240102T030405Z",
        "Host": "dcs.eu-de.otc.t-systems.com",
        "X-Project-Id": "0123456789abcdef0123456789abcdef",
        "Authorization": "SDK-HMAC-SHA256 Access=AKEXAMPLE, "
        "SignedHeaders=content-type;host;x-project-id;x-sdk-date, "
        "Signature=31f02c1b062be9b152b236ca4cac9fb128339429e8d3a42fc983c512044bc073",
    }


async def test_aksk_dates_each_request_in_utc() -> None:
    clock = FakeClock(datetime(2024, 1, 2, 5, 4, 5, tzinfo=UTC).astimezone())
    auth = AkSkAuth(ACCESS_KEY, SECRET_KEY, PROJECT_ID, clock=clock)
    first: dict[str, str] = {}
    second: dict[str, str] = {}

    await auth.apply("GET", DCS_VECTOR_URL, first, b"")
    clock.advance(timedelta(seconds=61))
    await auth.apply("GET", DCS_VECTOR_URL, second, b"")

    assert first["X-Sdk-Date"] == "20240102T050405Z"
    assert second["X-Sdk-Date"] == "20240102T050506Z"


def test_aksk_is_never_refreshed() -> None:
    auth = AkSkAuth(ACCESS_KEY, SECRET_KEY, PROJECT_ID)

    auth.invalidate()

    assert auth.refreshable is False


def test_aksk_repr_hides_the_secret_key() -> None:
    auth = AkSkAuth(ACCESS_KEY, SecretStr(SECRET_KEY), PROJECT_ID)

    assert SECRET_KEY not in repr(auth)
    assert SECRET_KEY not in str(auth)
    assert ACCESS_KEY in repr(auth)


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://dcs.eu-de.otc.t-systems.com/v2", "dcs.eu-de.otc.t-systems.com"),
        ("https://dcs.eu-de.otc.t-systems.com:443/v2", "dcs.eu-de.otc.t-systems.com"),
        ("http://127.0.0.1:80/v2", "127.0.0.1"),
        ("https://127.0.0.1:8443/v2", "127.0.0.1:8443"),
        ("http://[::1]:9000/", "[::1]:9000"),
    ],
)
def test_host_header_is_what_aiohttp_sends(url: str, host: str) -> None:
    assert host_header(yarl.URL(url)) == host


def test_host_header_needs_an_absolute_url() -> None:
    with pytest.raises(ValueError, match="absolute"):
        host_header(yarl.URL("/v2/x"))


def test_both_auths_satisfy_the_protocol(session: aiohttp.ClientSession) -> None:
    auths: list[DcsAuth] = [
        AkSkAuth(ACCESS_KEY, SECRET_KEY, PROJECT_ID),
        TokenAuth(session, "https://iam.example", USERNAME, PASSWORD, DOMAIN, PROJECT_ID, TIMEOUT),
    ]

    assert [auth.refreshable for auth in auths] == [False, True]


# --- IAM token


async def test_token_request_follows_the_iam_contract(
    cloud: FakeCloud, session: aiohttp.ClientSession
) -> None:
    auth = token_auth(cloud, session)
    headers: dict[str, str] = {}

    await auth.apply("GET", DCS_VECTOR_URL, headers, b"")

    (request,) = cloud.iam_requests
    assert request.method == "POST"
    assert request.raw_query == "nocatalog=true"
    assert request.headers["Content-Type"] == "application/json;charset=utf8"
    assert request.json() == {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": USERNAME, "password": PASSWORD, "domain": {"name": DOMAIN}}},
            },
            "scope": {"project": {"id": PROJECT_ID}},
        }
    }
    assert headers == {"X-Auth-Token": cloud.issued_tokens[0]}


async def test_token_is_cached(cloud: FakeCloud, session: aiohttp.ClientSession) -> None:
    auth = token_auth(cloud, session)

    tokens = [await auth.token() for _ in range(5)]

    assert len(cloud.iam_requests) == 1
    assert {token.get_secret_value() for token in tokens} == {cloud.issued_tokens[0]}


async def test_concurrent_callers_share_one_fetch(cloud: FakeCloud, session: aiohttp.ClientSession) -> None:
    auth = token_auth(cloud, session)
    cloud.iam_gate = asyncio.Event()

    callers = [asyncio.create_task(auth.token()) for _ in range(20)]
    await cloud.iam_arrived.wait()
    cloud.iam_gate.set()
    tokens = await asyncio.gather(*callers)

    assert len(cloud.iam_requests) == 1
    assert {token.get_secret_value() for token in tokens} == {cloud.issued_tokens[0]}


async def test_token_is_refreshed_before_it_expires(cloud: FakeCloud, session: aiohttp.ClientSession) -> None:
    clock = FakeClock(START)
    auth = token_auth(cloud, session, clock=clock)
    first = await auth.token()

    # A 24 h token is refreshed once less than 10 % (2 h 24 min) of its lifetime is left.
    clock.advance(timedelta(hours=21, minutes=35))
    still_first = await auth.token()
    clock.advance(timedelta(minutes=1))
    second = await auth.token()

    assert still_first == first
    assert second != first
    assert len(cloud.iam_requests) == 2


async def test_refresh_uses_iam_lifetime_not_local_clock(
    cloud: FakeCloud, session: aiohttp.ClientSession
) -> None:
    # IAM's clock runs a day ahead of ours; the token must still be used for most of its lifetime.
    cloud.iam_clock = lambda: START + timedelta(days=1)
    cloud.token_lifetime = timedelta(hours=1)
    clock = FakeClock(START)
    auth = token_auth(cloud, session, clock=clock)
    first = await auth.token()

    clock.advance(timedelta(minutes=50))
    assert await auth.token() == first
    clock.advance(timedelta(minutes=6))
    assert await auth.token() != first


async def test_invalidate_forces_a_new_token(cloud: FakeCloud, session: aiohttp.ClientSession) -> None:
    auth = token_auth(cloud, session)
    first = await auth.token()

    auth.invalidate()
    second = await auth.token()

    assert second != first
    assert len(cloud.iam_requests) == 2


@pytest.mark.parametrize(
    ("lifetime", "margin"),
    [
        (timedelta(hours=24), timedelta(hours=2, minutes=24)),
        (timedelta(hours=1), timedelta(minutes=6)),
        (timedelta(minutes=30), timedelta(minutes=5)),
        (timedelta(minutes=4), timedelta(minutes=2)),
    ],
)
def test_refresh_margin(lifetime: timedelta, margin: timedelta) -> None:
    assert refresh_margin(lifetime) == margin


async def test_wrong_password_is_an_api_error(cloud: FakeCloud, session: aiohttp.ClientSession) -> None:
    auth = TokenAuth(session, cloud.base_url, USERNAME, "wrong-password", DOMAIN, PROJECT_ID, TIMEOUT)

    with pytest.raises(DcsApiError) as caught:
        await auth.token()

    assert caught.value.status == 401
    assert caught.value.error_code == "401"
    assert (
        caught.value.error_msg
        == f"IAM refused a token for user {USERNAME!r}: The username or password is wrong."
    )
    assert "wrong-password" not in str(caught.value)


async def test_iam_error_keeps_request_id_and_hides_an_echoed_password(
    cloud: FakeCloud, session: aiohttp.ClientSession
) -> None:
    cloud.iam_reply(
        Canned(
            status=400,
            body={"error_code": "IAM.0011", "error_msg": f"bad request body: {PASSWORD}"},
            headers={"X-Request-Id": "req-iam-1"},
        )
    )

    with pytest.raises(DcsApiError) as caught:
        await token_auth(cloud, session).token()

    assert (caught.value.status, caught.value.error_code, caught.value.request_id) == (
        400,
        "IAM.0011",
        "req-iam-1",
    )
    assert PASSWORD not in str(caught.value)
    assert "***" in caught.value.error_msg


async def test_iam_non_json_error(cloud: FakeCloud, session: aiohttp.ClientSession) -> None:
    cloud.iam_reply(Canned(status=503, raw_body=b"<html>down</html>", headers={"Retry-After": "30"}))

    with pytest.raises(DcsApiError) as caught:
        await token_auth(cloud, session).token()

    assert caught.value.error_code is None
    assert caught.value.error_msg.endswith("HTTP 503 Service Unavailable from IAM")
    assert caught.value.retry_after == 30.0
    assert caught.value.is_retryable


@pytest.mark.parametrize(
    ("canned", "message"),
    [
        (Canned(status=201, body={"token": {"expires_at": "2099-01-01T00:00:00Z"}}), "X-Subject-Token"),
        (Canned(status=201, raw_body=b"not json", headers={"X-Subject-Token": "t"}), "expires_at"),
        (Canned(status=201, body={"token": {}}, headers={"X-Subject-Token": "t"}), "expires_at"),
        (
            Canned(
                status=201,
                body={"token": {"issued_at": "2024-01-02T00:00:00Z", "expires_at": "2024-01-01T00:00:00Z"}},
                headers={"X-Subject-Token": "t"},
            ),
            "already expired",
        ),
    ],
)
async def test_unusable_token_answers_are_transport_errors(
    cloud: FakeCloud, session: aiohttp.ClientSession, canned: Canned, message: str
) -> None:
    cloud.iam_reply(canned)

    with pytest.raises(DcsTransportError, match=message):
        await token_auth(cloud, session).token()


async def test_iam_timeout(cloud: FakeCloud, session: aiohttp.ClientSession) -> None:
    cloud.iam_reply(Canned(hang=True))

    with pytest.raises(DcsTransportError, match=re.escape("IAM did not answer within 0.2 s")):
        await token_auth(cloud, session).token()


async def test_iam_unreachable(session: aiohttp.ClientSession) -> None:
    auth = TokenAuth(
        session, f"http://127.0.0.1:{unused_port()}", USERNAME, PASSWORD, DOMAIN, PROJECT_ID, TIMEOUT
    )

    with pytest.raises(DcsTransportError, match=re.escape("IAM is unreachable: cannot connect to 127.0.0.1")):
        await auth.token()


async def test_a_failed_fetch_is_not_cached(cloud: FakeCloud, session: aiohttp.ClientSession) -> None:
    auth = token_auth(cloud, session)
    cloud.iam_reply(Canned(status=500, body={"error_code": "IAM.0001", "error_msg": "boom"}))

    with pytest.raises(DcsApiError):
        await auth.token()
    token = await auth.token()

    assert token.get_secret_value() == cloud.issued_tokens[0]


async def test_the_token_state_is_told_without_asking_iam(
    cloud: FakeCloud, session: aiohttp.ClientSession
) -> None:
    clock = FakeClock(START)
    auth = token_auth(cloud, session, clock=clock)
    assert auth.state() == TokenState(refresh_at=None, usable=False)

    cloud.iam_reply(Canned(status=503, body={"error_code": "IAM.0001", "error_msg": "down"}))
    with pytest.raises(DcsApiError):
        await auth.token()
    failed = auth.state()
    await auth.token()
    cached = auth.state()
    clock.advance(timedelta(hours=23))
    due = auth.state()

    assert (failed.refresh_at, failed.usable, failed.failed_at) == (None, False, START)
    assert failed.failure is not None and "IAM.0001" in failed.failure
    # 24 h tokens are renewed when 10 % of their lifetime is left.
    assert cached == TokenState(refresh_at=START + timedelta(hours=21, minutes=36), usable=True)
    assert due == TokenState(refresh_at=cached.refresh_at, usable=False)
    assert len(cloud.iam_requests) == 2, "state() never asks IAM"


async def test_token_auth_never_shows_secrets(cloud: FakeCloud, session: aiohttp.ClientSession) -> None:
    auth = TokenAuth(session, cloud.base_url, USERNAME, SecretStr(PASSWORD), DOMAIN, PROJECT_ID, TIMEOUT)
    token = await auth.token()
    cloud.iam_reply(Canned(status=401, body={"error_msg": "nope"}))
    auth.invalidate()

    with pytest.raises(DcsError) as caught:
        await auth.token()

    texts = [repr(auth), str(auth), repr(token), str(token), str(caught.value), repr(caught.value)]
    for text in texts:
        assert PASSWORD not in text
        assert TOKEN_PREFIX not in text


def test_iam_endpoint_must_be_absolute(session: aiohttp.ClientSession) -> None:
    with pytest.raises(ValueError, match="absolute"):
        TokenAuth(session, "iam.example", USERNAME, PASSWORD, DOMAIN, PROJECT_ID, TIMEOUT)


def test_redact_ignores_empty_secrets() -> None:
    assert redact("pw=hunter2", ["", "hunter2"]) == "pw=***"
