"""Slack's Socket Mode side of the stand-in: WebSocket links the app opens, envelopes in, acks out.

The app calls ``apps.connections.open`` with its app-level token and gets a one-time URL. When it connects,
the server greets it with ``hello``; from then on every slash command or interaction travels as an envelope
``{envelope_id, type, payload, accepts_response_payload}`` over one of the app's open links, and the app
answers with ``{envelope_id, payload?}`` within Slack's three seconds. The ack's payload plays the role of
the HTTP response body in HTTP mode, so ``SocketModeDelivery`` fits the same ``Delivery`` protocol.

With several links open (several replicas of an app, each its own), envelopes are spread over them in
turn, as Slack spreads them; a ``SocketModeDelivery`` pinned to one link sends there only, so a test can
put a command on one replica and its click on another.

Test hooks model what goes wrong in production: Slack asking the app to reconnect (``disconnect``
messages), links closed by the server or cut without a close frame, an outage in which new links are
refused, and a half-open link that silently swallows everything (the "connected but deaf" state).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import WSCloseCode, WSMessage, WSMsgType, web

from bot.standins.slack.delivery import (
    DISPATCH_FAILED,
    OPERATION_TIMEOUT,
    SLACK_ACK_TIMEOUT,
    BotReply,
    Inbound,
    PayloadKind,
)
from bot.standins.slack.timeline import JsonDict

__all__ = [
    "SOCKET_PATH",
    "DisconnectReason",
    "SocketConnection",
    "SocketEnvelope",
    "SocketModeDelivery",
    "SocketModeServer",
]

#: The route the one-time WebSocket URLs point at; ``{ticket}`` is what ``apps.connections.open`` issued.
SOCKET_PATH = "/socket/{ticket}"

#: Why Slack asks an app to reconnect: ``warning`` comes shortly before a link is closed,
#: ``refresh_requested`` when Slack recycles it, ``link_disabled`` when Socket Mode was switched off,
#: ``too_many_websockets`` above Slack's limit of connections per app.
DisconnectReason = Literal["warning", "refresh_requested", "link_disabled", "too_many_websockets"]

_HOST = "applink-standin"
# Slack reports roughly how long it will keep a link before recycling it; nothing here acts on the value.
_APPROXIMATE_CONNECTION_SECONDS = 18_060
# Bounds the wait for a closed link's handler to finish, so a misbehaving peer cannot hang a test.
_CLOSE_WAIT = 5.0
# Interaction types whose ack payload Slack uses (errors, a new view, options); for clicks it is ignored.
_RESPONSE_PAYLOAD_INTERACTIONS = frozenset({"view_submission", "block_suggestion"})


@dataclass
class SocketConnection:
    """What the stand-in knows about one WebSocket link from the app. Live instances update in place."""

    number: int
    opened_at: float
    #: Set once ``hello`` went out: from then on envelopes may be sent here.
    ready: bool = False
    closed_at: float | None = None
    #: ``"server"`` when the stand-in closed or cut the link, ``"client"`` when the app did (or vanished).
    closed_by: Literal["server", "client"] | None = None
    #: The WebSocket close code; 1006 (abnormal closure) when the stand-in cut the link without a frame.
    close_code: int | None = None
    #: The ``disconnect`` reason sent on this link, if any.
    disconnect_reason: DisconnectReason | None = None
    #: Half-open: everything from the app is swallowed and nothing is sent to it.
    stalled: bool = False
    pings: int = 0
    last_ping_at: float | None = None
    envelopes_sent: int = 0

    @property
    def live(self) -> bool:
        return self.ready and self.closed_at is None


@dataclass
class SocketEnvelope:
    """One envelope the stand-in sent (or, on a stalled link, believes it sent) and what came back."""

    envelope_id: str
    type: str
    payload: JsonDict
    accepts_response_payload: bool
    connection: int
    sent_at: float
    acked_at: float | None = None
    #: The ack's ``payload`` exactly as the app sent it (None when the ack carried none).
    ack_payload: Any = None
    #: The link the ack arrived on; Slack matches acks by envelope_id, so it may differ after a reconnect.
    ack_connection: int | None = None
    #: The ack came after the stand-in had already given up and shown the user an error.
    late: bool = False

    @property
    def acked(self) -> bool:
        return self.acked_at is not None

    def message(self) -> JsonDict:
        return {
            "envelope_id": self.envelope_id,
            "type": self.type,
            "payload": self.payload,
            "accepts_response_payload": self.accepts_response_payload,
        }


@dataclass(eq=False)
class _Link:
    record: SocketConnection
    ws: web.WebSocketResponse
    request: web.Request
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    closing_by_server: bool = False

    @property
    def open(self) -> bool:
        return self.record.closed_at is None and not self.ws.closed

    async def send(self, message: JsonDict) -> bool:
        """False when the link is already gone; a stalled link swallows the message and says True."""
        if self.record.stalled:
            return True
        try:
            await self.ws.send_str(json.dumps(message))
        except (ConnectionError, RuntimeError):
            return False
        return True


def _accepts_response_payload(inbound: Inbound) -> bool:
    if inbound.kind is PayloadKind.SLASH_COMMANDS:
        return True
    return inbound.payload.get("type") in _RESPONSE_PAYLOAD_INTERACTIONS


class SocketModeServer:
    """Socket Mode for one app: issues WebSocket URLs, keeps the links, sends envelopes and matches acks."""

    def __init__(
        self,
        *,
        app_id: str,
        clock: Callable[[], float] = time.time,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._app_id = app_id
        self._clock = clock
        self._on_change = on_change
        self._tickets: set[str] = set()
        self._links: list[_Link] = []
        self._envelopes: dict[str, SocketEnvelope] = {}
        self._pending: dict[str, asyncio.Future[None]] = {}
        self._stray_messages: list[str] = []
        self._numbers = itertools.count(1)
        self._turn = 0
        self._refusing = False
        self._refused_handshakes = 0

    # ---- state ----------------------------------------------------------------------------------------

    @property
    def connections(self) -> list[SocketConnection]:
        """Every link ever opened, oldest first."""
        return [link.record for link in self._links]

    @property
    def live(self) -> list[SocketConnection]:
        """Links that got their ``hello`` and are not closed, oldest first."""
        return [link.record for link in self._links if link.record.live]

    @property
    def envelopes(self) -> list[SocketEnvelope]:
        return list(self._envelopes.values())

    @property
    def stray_messages(self) -> list[str]:
        """Text frames from the app that were no ack of a known envelope (malformed, unknown, repeated)."""
        return list(self._stray_messages)

    @property
    def refusing(self) -> bool:
        return self._refusing

    @property
    def refused_handshakes(self) -> int:
        """How often an app tried to connect while refused: proof that it noticed it was cut off."""
        return self._refused_handshakes

    # ---- connecting -----------------------------------------------------------------------------------

    def issue_url(self, base_url: str) -> str:
        """A one-time WebSocket URL under ``base_url`` (``http`` becomes ``ws``): apps.connections.open's."""
        ticket = secrets.token_urlsafe(16)
        self._tickets.add(ticket)
        scheme, separator, rest = base_url.rstrip("/").partition("://")
        ws_scheme = {"http": "ws", "https": "wss"}.get(scheme, scheme)
        return f"{ws_scheme}{separator}{rest}{SOCKET_PATH.format(ticket=ticket)}"

    def refuse_connections(self, refuse: bool = True) -> None:
        """While refusing, WebSocket handshakes fail with 503 (an outage); issued URLs stay valid."""
        self._refusing = refuse
        self._on_change()

    async def handle_websocket(self, request: web.Request) -> web.StreamResponse:
        """The aiohttp handler for ``SOCKET_PATH``."""
        if self._refusing:
            self._refused_handshakes += 1
            self._on_change()
            return web.Response(status=503, text="Socket Mode is unavailable")
        ticket = request.match_info["ticket"]
        if ticket not in self._tickets:
            return web.Response(status=401, text="unknown or already used Socket Mode URL")
        # autoping off: pings are answered by hand, so a stalled link can stop answering them.
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        self._tickets.discard(ticket)
        link = _Link(SocketConnection(number=next(self._numbers), opened_at=self._clock()), ws, request)
        self._links.append(link)
        try:
            if await link.send(self._hello()):
                link.record.ready = True
                self._on_change()
                async for message in ws:
                    await self._receive(link, message)
        finally:
            link.record.closed_at = self._clock()
            link.record.closed_by = "server" if link.closing_by_server else "client"
            if link.record.close_code is None:
                link.record.close_code = ws.close_code
            link.finished.set()
            self._on_change()
        return ws

    def _hello(self) -> JsonDict:
        return {
            "type": "hello",
            "num_connections": len(self.live) + 1,
            "debug_info": {
                "host": _HOST,
                "build_number": 1,
                "approximate_connection_time": _APPROXIMATE_CONNECTION_SECONDS,
            },
            "connection_info": {"app_id": self._app_id},
        }

    async def _receive(self, link: _Link, message: WSMessage) -> None:
        if message.type is WSMsgType.PING:
            link.record.pings += 1
            link.record.last_ping_at = self._clock()
            if not link.record.stalled:
                await link.ws.pong(message.data)
            self._on_change()
        elif message.type is WSMsgType.TEXT and not link.record.stalled:
            self._take_ack(link, str(message.data))

    def _take_ack(self, link: _Link, raw: str) -> None:
        try:
            ack = json.loads(raw)
        except ValueError:
            ack = None
        envelope_id = ack.get("envelope_id") if isinstance(ack, dict) else None
        envelope = self._envelopes.get(envelope_id) if isinstance(envelope_id, str) else None
        if ack is None or envelope is None or envelope.acked:
            self._stray_messages.append(raw)
            self._on_change()
            return
        envelope.acked_at = self._clock()
        envelope.ack_payload = ack.get("payload")
        envelope.ack_connection = link.record.number
        waiter = self._pending.pop(envelope.envelope_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        else:
            envelope.late = True
        self._on_change()

    # ---- delivering -----------------------------------------------------------------------------------

    async def dispatch(
        self,
        inbound: Inbound,
        *,
        ack_timeout: float | None = SLACK_ACK_TIMEOUT,
        connection: SocketConnection | None = None,
    ) -> BotReply:
        """Sends ``inbound`` as an envelope over one live link and waits for the app's ack.

        The link is the next live one in round-robin order, or ``connection`` when given. The
        reply looks like an HTTP answer: status 200 and the ack payload as a JSON body. With no live link
        (or ``connection`` closed) it is ``dispatch_failed``; without an ack in time, ``operation_timeout``.
        """
        envelope_id = str(uuid.uuid4())
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Registered before sending: the ack can arrive while the send is still draining.
        self._pending[envelope_id] = waiter
        try:
            envelope = await self._send_to_one(inbound, envelope_id, connection)
            if envelope is None:
                return BotReply(status=0, error=DISPATCH_FAILED)
            try:
                async with asyncio.timeout(ack_timeout):
                    await waiter
            except TimeoutError:
                return BotReply(status=0, error=OPERATION_TIMEOUT)
        finally:
            self._pending.pop(envelope_id, None)
        if envelope.ack_payload is None:
            return BotReply(status=200)
        return BotReply(status=200, body=json.dumps(envelope.ack_payload), content_type="application/json")

    async def _send_to_one(
        self, inbound: Inbound, envelope_id: str, connection: SocketConnection | None
    ) -> SocketEnvelope | None:
        order = self._delivery_order()
        if connection is not None:
            order = [link for link in order if link.record is connection]
        for link in order:
            envelope = SocketEnvelope(
                envelope_id=envelope_id,
                type=inbound.kind.value,
                payload=dict(inbound.payload),
                accepts_response_payload=_accepts_response_payload(inbound),
                connection=link.record.number,
                sent_at=self._clock(),
            )
            self._envelopes[envelope_id] = envelope
            if await link.send(envelope.message()):
                link.record.envelopes_sent += 1
                self._on_change()
                return envelope
            del self._envelopes[envelope_id]
        return None

    def _delivery_order(self) -> list[_Link]:
        """Live links in round-robin order, those not asked to reconnect first (Slack spreads the load)."""
        live = [link for link in self._links if link.record.live and link.open]
        preferred = [link for link in live if link.record.disconnect_reason is None]
        others = [link for link in live if link.record.disconnect_reason is not None]
        self._turn += 1
        if preferred:
            shift = self._turn % len(preferred)
            preferred = preferred[shift:] + preferred[:shift]
        return preferred + others

    # ---- things going wrong ---------------------------------------------------------------------------

    async def drop(
        self,
        connection: SocketConnection | None = None,
        *,
        reason: DisconnectReason | None = None,
        grace: float = 0.0,
        abrupt: bool = False,
    ) -> list[SocketConnection]:
        """Ends ``connection`` (default: every open link) from Slack's side and returns the links affected.

        ``reason`` sends ``{"type": "disconnect", "reason": ...}`` first; ``grace`` then gives the app that
        many seconds to close the link itself (returning as soon as it has). What is still open afterwards
        is closed with a close frame, or with ``abrupt`` cut without one, like a network failure.
        Returns once the affected links are recorded as closed.
        """
        links = [
            link for link in self._links if link.open and (connection is None or link.record is connection)
        ]
        if reason is not None:
            for link in links:
                link.record.disconnect_reason = reason
                await link.send({"type": "disconnect", "reason": reason, "debug_info": {"host": _HOST}})
            self._on_change()
        if grace > 0:
            await _wait_finished(links, grace)
        for link in links:
            if link.finished.is_set():
                continue
            link.closing_by_server = True
            transport = link.request.transport
            if abrupt and transport is not None:
                link.record.close_code = WSCloseCode.ABNORMAL_CLOSURE
                transport.close()
            else:
                link.record.close_code = WSCloseCode.GOING_AWAY
                await link.ws.close(code=WSCloseCode.GOING_AWAY, message=b"closed by the Slack stand-in")
        await _wait_finished(links, _CLOSE_WAIT)
        return [link.record for link in links]

    def stall(self, connection: SocketConnection | None = None) -> list[SocketConnection]:
        """Makes ``connection`` (default: every open link) half-open: pings go unanswered, acks are lost,
        and envelopes for it vanish, while the stand-in still counts it as live. Only the app can notice."""
        links = [
            link for link in self._links if link.open and (connection is None or link.record is connection)
        ]
        for link in links:
            link.record.stalled = True
        self._on_change()
        return [link.record for link in links]

    async def shutdown(self, app: web.Application | None = None) -> None:
        """Closes every link as a server going away; an aiohttp ``on_shutdown`` hook."""
        await self.drop()


async def _wait_finished(links: Sequence[_Link], seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            for link in links:
                await link.finished.wait()


class SocketModeDelivery:
    """Sends payloads the way Slack does in Socket Mode: as envelopes over one of the app's WebSocket
    links."""

    def __init__(
        self,
        server: SocketModeServer,
        *,
        ack_timeout: float | None = SLACK_ACK_TIMEOUT,
        connection: SocketConnection | None = None,
    ) -> None:
        """``connection`` pins every delivery to that link (``dispatch_failed`` once it is closed); without
        it each delivery takes the next live link in turn."""
        self.server = server
        self._ack_timeout = ack_timeout
        self._connection = connection

    async def deliver(self, inbound: Inbound) -> BotReply:
        return await self.server.dispatch(inbound, ack_timeout=self._ack_timeout, connection=self._connection)
