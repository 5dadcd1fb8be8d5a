"""The load: signed slash commands, sent as Slack sends them, over loopback at a fixed concurrency."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp

from bot.standins.slack.payloads import (
    AppContext,
    Person,
    Place,
    encode_form,
    new_trigger_id,
    signed_headers,
    slash_command_form,
)

APP = AppContext(
    team_id="T0DEMO", team_domain="demo", api_app_id="A0DCSBACKUP", verification_token="bench-token"
)
#: Slack gives up on an answer after 3 s; the benchmark waits a little longer, to see how late it was.
ANSWER_TIMEOUT = 10.0


@dataclass(frozen=True)
class Prepared:
    """One signed request, ready to send; ``token`` names its response_url."""

    token: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Sample:
    token: str
    sent: float
    answered: float
    status: int

    @property
    def seconds(self) -> float:
        return self.answered - self.sent


def command(
    *, user: str, channel: str, text: str, response_url: str, secret: str, timestamp: int | None = None
) -> Prepared:
    """``/dcs-backup text`` typed by ``user`` in ``channel``, signed with ``secret`` as Slack signs it."""
    form = slash_command_form(
        APP,
        user=Person(id=user, name=user.lower()),
        channel=Place(id=channel, name="bench"),
        command="/dcs-backup",
        text=text,
        response_url=response_url,
        trigger_id=new_trigger_id(),
    )
    body = encode_form(form)
    token = response_url.rstrip("/").rsplit("/", 1)[-1]
    return Prepared(token, body.encode(), signed_headers(body, secret=secret, timestamp=timestamp))


def client_session(concurrency: int) -> aiohttp.ClientSession:
    """Kept-alive connections, at most ``concurrency`` of them, so connecting is not what is measured."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency),
        timeout=aiohttp.ClientTimeout(total=ANSWER_TIMEOUT),
    )


async def burst(
    session: aiohttp.ClientSession, url: str, requests: list[Prepared], concurrency: int
) -> list[Sample]:
    """Sends every request, ``concurrency`` at a time (each worker sends its next one as soon as its last
    is answered); a request without an answer in time gets status 0."""
    samples: list[Sample] = []
    queue = iter(requests)

    async def worker() -> None:
        for request in queue:
            sent = time.monotonic()
            try:
                async with session.post(url, data=request.body, headers=request.headers) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            samples.append(Sample(request.token, sent, time.monotonic(), status))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return samples
