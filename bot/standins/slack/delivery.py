"""How a Slack payload reaches the app: over HTTP here; ``socket_mode`` adds Socket Mode."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import aiohttp

from bot.standins.slack.payloads import (
    FORM_CONTENT_TYPE,
    encode_form,
    encode_interactive,
    signed_headers,
)
from bot.standins.slack.timeline import JsonDict

#: Slack gives an app three seconds to answer a slash command or an interaction.
SLACK_ACK_TIMEOUT = 3.0

# Error names Slack shows the user when an app does not answer properly. Unconfirmed beyond
# "dispatch_failed" and "operation_timeout", which users report seeing.
DISPATCH_FAILED = "dispatch_failed"
OPERATION_TIMEOUT = "operation_timeout"
HTTP_SERVICE_ERROR = "http_service_error"


class PayloadKind(StrEnum):
    """The names match Socket Mode envelope types."""

    SLASH_COMMANDS = "slash_commands"
    INTERACTIVE = "interactive"
    EVENTS_API = "events_api"


@dataclass(frozen=True)
class Inbound:
    """One payload for the app, independent of how it travels."""

    kind: PayloadKind
    payload: Mapping[str, Any]

    def http_body(self) -> str:
        """The body Slack would POST: plain form fields for commands, ``payload=<json>`` for interactions,
        the JSON itself for Events API events."""
        if self.kind is PayloadKind.SLASH_COMMANDS:
            return encode_form({k: str(v) for k, v in self.payload.items()})
        if self.kind is PayloadKind.EVENTS_API:
            return json.dumps(dict(self.payload))
        return encode_interactive(dict(self.payload))

    @property
    def content_type(self) -> str:
        return "application/json" if self.kind is PayloadKind.EVENTS_API else FORM_CONTENT_TYPE


@dataclass(frozen=True)
class BotReply:
    """The app's answer. ``status`` is 0 and ``error`` is set when no HTTP answer arrived in time."""

    status: int
    body: str = ""
    content_type: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status == 200

    def json(self) -> JsonDict | None:
        """The body as a JSON object, or None when it is empty or not a JSON object."""
        if not self.body.strip():
            return None
        try:
            parsed = json.loads(self.body)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None


class Delivery(Protocol):
    async def deliver(self, inbound: Inbound) -> BotReply: ...


async def post_raw(
    url: str, body: str | bytes, headers: Mapping[str, str], *, ack_timeout: float | None = SLACK_ACK_TIMEOUT
) -> BotReply:
    """POSTs ``body`` as is (re-encoding would break its signature); reports the answer as Slack sees it."""
    data = body.encode() if isinstance(body, str) else body
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=ack_timeout)) as session,
            session.post(url, data=data, headers=dict(headers)) as response,
        ):
            text = await response.text()
            error = None if 200 <= response.status < 300 else HTTP_SERVICE_ERROR
            return BotReply(
                status=response.status, body=text, content_type=response.content_type, error=error
            )
    except TimeoutError:
        return BotReply(status=0, error=OPERATION_TIMEOUT)
    except aiohttp.ClientConnectionError:
        return BotReply(status=0, error=DISPATCH_FAILED)


class HttpDelivery:
    """Sends payloads the way Slack does in HTTP mode: a signed form POST to the app's request URL."""

    def __init__(
        self, url: str, *, signing_secret: str, ack_timeout: float | None = SLACK_ACK_TIMEOUT
    ) -> None:
        self.url = url
        self._signing_secret = signing_secret
        self._ack_timeout = ack_timeout

    async def deliver(self, inbound: Inbound) -> BotReply:
        body = inbound.http_body()
        headers = signed_headers(body, secret=self._signing_secret, content_type=inbound.content_type)
        return await post_raw(self.url, body, headers, ack_timeout=self._ack_timeout)
