"""A fake DCS + IAM served on 127.0.0.1 that checks every signature with the Huawei SDK's own signer."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import RawTestServer
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from multidict import CIMultiDict

from bot.dcs.auth import AkSkAuth, Clock, TokenAuth, utc_now
from bot.dcs.client import Backoff, DcsClient

ACCESS_KEY = "AKTESTEXAMPLE1234567"
SECRET_KEY = "sk-TEST-secret-3f9a1c77e2"
PROJECT_ID = "0123456789abcdef0123456789abcdef"
INSTANCE_ID = "11111111-2222-3333-4444-555555555555"
USERNAME = "backup-bot"
PASSWORD = "pw-TEST-secret-91b2e0"
DOMAIN = "OTC-EU-DE-00000000001000000001"
TOKEN_PREFIX = "tok-TEST-secret-"
REQUIRED_SIGNED_HEADERS = {"content-type", "host", "x-project-id", "x-sdk-date"}
TIMEOUT = 0.2
#: Retries fast enough for several to fit into TIMEOUT.
FAST_BACKOFF = Backoff(initial=0.01, maximum=0.02, jitter=0.005)

_SIGNED_HEADERS = re.compile(r"SignedHeaders=([^,\s]+)")


@dataclass(frozen=True)
class Received:
    method: str
    raw_path: str
    raw_query: str
    headers: CIMultiDict[str]
    body: bytes
    #: ``time.monotonic()`` when it arrived.
    at: float = field(default_factory=time.monotonic)

    def json(self) -> object:
        return json.loads(self.body)


@dataclass(frozen=True)
class Canned:
    """One prepared answer. ``hang`` keeps the connection open until the test ends; ``close`` closes it
    without an answer."""

    status: int = 200
    body: object = None
    raw_body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    hang: bool = False
    close: bool = False

    def encoded_body(self) -> bytes:
        if self.raw_body is not None:
            return self.raw_body
        return b"" if self.body is None else json.dumps(self.body).encode()


def oracle_sign(received: Received, signed_headers: list[str]) -> tuple[str, str]:
    """(Authorization, uri) as huaweicloudsdkcore would produce them for the received request."""
    pairs = [part.partition("=") for part in received.raw_query.split("&")] if received.raw_query else []
    request = SdkRequest(
        method=received.method,
        schema="http",
        host=received.headers["Host"],
        resource_path=received.raw_path,
        query_params=[(unquote(key), unquote(value)) for key, _, value in pairs],
        header_params={name: received.headers[name] for name in signed_headers},
        body=received.body,
    )
    Signer(BasicCredentials(ACCESS_KEY, SECRET_KEY)).sign(request)
    return str(request.header_params["Authorization"]), str(request.uri)


class FakeCloud:
    """Plays DCS (answers queued with :meth:`reply`) and IAM (issues tokens unless told otherwise)."""

    def __init__(self) -> None:
        self.base_url = ""
        self.dcs_requests: list[Received] = []
        self.iam_requests: list[Received] = []
        self.problems: list[str] = []
        self.issued_tokens: list[str] = []
        self.token_lifetime = timedelta(hours=24)
        self.iam_clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.iam_gate: asyncio.Event | None = None
        self.iam_arrived = asyncio.Event()
        self.released = asyncio.Event()
        self._dcs_replies: deque[Canned] = deque()
        self._iam_replies: deque[Canned] = deque()
        self._revoked: set[str] = set()

    def reply(self, *answers: Canned) -> None:
        self._dcs_replies.extend(answers)

    def iam_reply(self, *answers: Canned) -> None:
        self._iam_replies.extend(answers)

    def revoke_tokens(self) -> None:
        """From now on, DCS refuses every token issued so far (IAM keeps the list for the tests)."""
        self._revoked.update(self.issued_tokens)

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        received = Received(
            method=request.method,
            raw_path=request.rel_url.raw_path,
            raw_query=request.rel_url.raw_query_string,
            headers=CIMultiDict(request.headers),
            body=await request.read(),
        )
        if received.raw_path == "/v3/auth/tokens":
            return await self._iam(received, request)
        return await self._dcs(received, request)

    async def _dcs(self, received: Received, request: web.BaseRequest) -> web.StreamResponse:
        self.dcs_requests.append(received)
        refusal = self._authenticate(received)
        if refusal is not None:
            return refusal
        if not self._dcs_replies:
            self.problems.append(f"no reply queued for {received.method} {received.raw_path}")
            return web.Response(status=599)
        return await self._answer(self._dcs_replies.popleft(), request)

    def _authenticate(self, received: Received) -> web.Response | None:
        if "Authorization" in received.headers:
            problem = self._signature_problem(received)
            if problem is None:
                return None
            self.problems.append(problem)
            return _error(401, "APIGW.0301", "Incorrect IAM authentication information")
        token = received.headers.get("X-Auth-Token")
        if token in self.issued_tokens and token not in self._revoked:
            return None
        return _error(401, "DCS.1001", "Invalid token")

    def _signature_problem(self, received: Received) -> str | None:
        match = _SIGNED_HEADERS.search(received.headers["Authorization"])
        if match is None:
            return "Authorization header without SignedHeaders"
        signed = match[1].split(";")
        if missing := REQUIRED_SIGNED_HEADERS - set(signed):
            return f"headers not signed: {sorted(missing)}"
        if received.headers.get("X-Project-Id") != PROJECT_ID:
            return "wrong X-Project-Id"
        if received.headers["Content-Type"] != "application/json":
            return "wrong Content-Type"
        expected, uri = oracle_sign(received, signed)
        if received.headers["Authorization"] != expected:
            return f"signature mismatch: got {received.headers['Authorization']!r}, expected {expected!r}"
        wire = received.raw_path + (f"?{received.raw_query}" if received.raw_query else "")
        if uri != wire:
            return f"wire URI {wire!r} is not the canonical {uri!r}"
        return None

    async def _iam(self, received: Received, request: web.BaseRequest) -> web.StreamResponse:
        self.iam_requests.append(received)
        self.iam_arrived.set()
        if self.iam_gate is not None:
            await self.iam_gate.wait()
        if self._iam_replies:
            return await self._answer(self._iam_replies.popleft(), request)
        if not self._valid_credentials(received):
            return web.json_response(
                {
                    "error": {
                        "code": 401,
                        "message": "The username or password is wrong.",
                        "title": "Unauthorized",
                    }
                },
                status=401,
            )
        return self._issue_token()

    def _valid_credentials(self, received: Received) -> bool:
        expected = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {"name": USERNAME, "password": PASSWORD, "domain": {"name": DOMAIN}}
                    },
                },
                "scope": {"project": {"id": PROJECT_ID}},
            }
        }
        return received.raw_query == "nocatalog=true" and received.json() == expected

    def _issue_token(self) -> web.Response:
        token = TOKEN_PREFIX + secrets.token_hex(8)
        self.issued_tokens.append(token)
        issued_at = self.iam_clock()
        body = {
            "token": {
                "issued_at": issued_at.isoformat().replace("+00:00", "Z"),
                "expires_at": (issued_at + self.token_lifetime).isoformat().replace("+00:00", "Z"),
                "project": {"id": PROJECT_ID, "name": "eu-de"},
            }
        }
        return web.json_response(body, status=201, headers={"X-Subject-Token": token})

    async def _answer(self, canned: Canned, request: web.BaseRequest) -> web.StreamResponse:
        if canned.hang:
            await self.released.wait()
        if canned.close:
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=499)
        return web.Response(status=canned.status, body=canned.encoded_body(), headers=dict(canned.headers))


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error_code": code, "error_msg": message}, status=status)


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def unused_port() -> int:
    """A port nothing listens on (the OS just handed it out and it was closed again)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
async def cloud() -> AsyncIterator[FakeCloud]:
    fake = FakeCloud()
    server = RawTestServer(fake.handle, host="127.0.0.1")
    await server.start_server()
    fake.base_url = str(server.make_url("")).rstrip("/")
    try:
        yield fake
    finally:
        fake.released.set()
        if fake.iam_gate is not None:
            fake.iam_gate.set()
        await server.close()
    assert fake.problems == []


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
def aksk_client(cloud: FakeCloud, session: aiohttp.ClientSession) -> DcsClient:
    auth = AkSkAuth(ACCESS_KEY, SECRET_KEY, PROJECT_ID)
    return DcsClient(
        session,
        endpoint=cloud.base_url,
        project_id=PROJECT_ID,
        auth=auth,
        timeout=TIMEOUT,
        backoff=FAST_BACKOFF,
    )


def token_auth(cloud: FakeCloud, session: aiohttp.ClientSession, *, clock: Clock = utc_now) -> TokenAuth:
    return TokenAuth(session, cloud.base_url, USERNAME, PASSWORD, DOMAIN, PROJECT_ID, TIMEOUT, clock=clock)


@pytest.fixture
def token_client(cloud: FakeCloud, session: aiohttp.ClientSession) -> DcsClient:
    return DcsClient(
        session,
        endpoint=cloud.base_url,
        project_id=PROJECT_ID,
        auth=token_auth(cloud, session),
        timeout=TIMEOUT,
        backoff=FAST_BACKOFF,
    )
