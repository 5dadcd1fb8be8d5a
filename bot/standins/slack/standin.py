"""A local stand-in for Slack, playing both sides.

Towards the bot it is Slack's Web API (``/api/{method}``), response_urls (``/response/{token}``) and, with
an app-level token, Socket Mode (``apps.connections.open`` and the WebSocket links), served by an aiohttp
application. Towards the user it is the Slack client: it sends slash commands and button clicks to the
bot, signed over HTTP or as envelopes over Socket Mode. In between it keeps a timeline of what people see,
for assertions and for the demo transcript.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from bot.standins.slack.delivery import (
    SLACK_ACK_TIMEOUT,
    BotReply,
    Delivery,
    HttpDelivery,
    Inbound,
    PayloadKind,
)
from bot.standins.slack.payloads import (
    FORM_CONTENT_TYPE,
    AppContext,
    Person,
    Place,
    block_actions_payload,
    new_trigger_id,
    signed_headers,
    slack_escape,
    slash_command_form,
)
from bot.standins.slack.render import Directory, render_transcript
from bot.standins.slack.response_urls import Origin, ResponsePost, ResponseUrl, ResponseUrls
from bot.standins.slack.socket_mode import SOCKET_PATH, SocketConnection, SocketModeDelivery, SocketModeServer
from bot.standins.slack.timeline import (
    SLACKBOT_USER_ID,
    Button,
    Content,
    JsonDict,
    Message,
    Timeline,
    find_buttons,
)
from bot.standins.slack.web_api import ApiCall, ApiReply, Channel, WebApi, Workspace, error

__all__ = ["SLACK_STANDIN", "CommandResult", "SlackStandIn"]


@dataclass(frozen=True)
class CommandResult:
    """The bot's HTTP answer to a slash command, and the message Slack showed for it (if any)."""

    status: int
    body: str
    response_url: str
    reply: BotReply
    message: Message | None

    def json(self) -> JsonDict | None:
        return self.reply.json()


class _ChangeSignal:
    """Wakes every waiter whenever something is recorded, so waiting never polls."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait_until(self, predicate: Callable[[], bool], seconds: float) -> bool:
        try:
            async with asyncio.timeout(seconds):
                while not predicate():
                    await self._event.wait()
        except TimeoutError:
            return predicate()
        return True


def _bearer(headers: Mapping[str, str]) -> str | None:
    value = headers.get("Authorization", "")
    scheme, _, credentials = value.partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None


class _BadRequestBodyError(Exception):
    pass


async def _read_params(request: web.Request) -> JsonDict:
    """Query parameters merged with a JSON or form body, as Slack accepts all three."""
    params: JsonDict = dict(request.query)
    if not request.body_exists:
        return params
    if request.content_type == "application/json":
        raw = await request.text()
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            raise _BadRequestBodyError from exc
        if not isinstance(body, dict):
            raise _BadRequestBodyError
        params.update(body)
    elif request.content_type in (FORM_CONTENT_TYPE, "multipart/form-data"):
        form = await request.post()
        params.update({key: value for key, value in form.items() if isinstance(value, str)})
    return params


class SlackStandIn:
    """Slack for one workspace with one app installed. See the module docstring."""

    def __init__(
        self,
        *,
        signing_secret: str,
        bot_token: str,
        app_token: str | None = None,
        team_id: str = "T0DEMO",
        team_domain: str = "demo",
        team_name: str = "Demo Workspace",
        app_id: str = "A0DCSBACKUP",
        bot_user_id: str = "U0DCSBOT",
        bot_id: str = "B0DCSBOT",
        bot_name: str = "DCS Backup",
        verification_token: str = "emulated-verification-token",
        accept_unknown_channels: bool = True,
        ack_timeout: float | None = SLACK_ACK_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``app_token`` (``xapp-…``) enables Socket Mode. ``clock`` drives message timestamps, response_url
        expiry and Socket Mode records (request signatures always use real time, because the bot checks
        them against its own clock)."""
        self.signing_secret = signing_secret
        self.bot_token = bot_token
        self.app_token = app_token
        self.ack_timeout = ack_timeout
        self._context = AppContext(
            team_id=team_id, team_domain=team_domain, api_app_id=app_id, verification_token=verification_token
        )
        self._workspace = Workspace(
            team_id=team_id,
            team_domain=team_domain,
            team_name=team_name,
            bot_user_id=bot_user_id,
            bot_id=bot_id,
            bot_name=bot_name,
            app_id=app_id,
            accept_unknown_channels=accept_unknown_channels,
        )
        self._changes = _ChangeSignal()
        self._timeline = Timeline(clock=clock, on_change=self._changes.notify)
        self._socket = SocketModeServer(app_id=app_id, clock=clock, on_change=self._changes.notify)
        self._webapi = WebApi(
            self._workspace,
            self._timeline,
            bot_token=bot_token,
            app_token=app_token,
            open_socket=self._open_socket_url,
        )
        self._response_urls = ResponseUrls(self._timeline, bot_user_id=bot_user_id, clock=clock)
        self._calls: list[ApiCall] = []
        self._response_posts: list[ResponsePost] = []
        self._channel_labels: dict[str, str] = {}
        self._base_url: str | None = None
        self._app: web.Application | None = None
        self._runner: web.AppRunner | None = None

    # ---- serving ---------------------------------------------------------------------------------------

    def app(self) -> web.Application:
        """The aiohttp application serving the Web API, response_urls and Socket Mode (one per stand-in)."""
        if self._app is None:
            app = web.Application()
            app[SLACK_STANDIN] = self
            app.router.add_route("*", "/api/{method}", self._handle_api)
            app.router.add_post("/response/{token}", self._handle_response_url)
            app.router.add_get(SOCKET_PATH, self._socket.handle_websocket)
            # Open WebSocket handlers would otherwise hold up the server's shutdown.
            app.on_shutdown.append(self._socket.shutdown)
            self._app = app
        return self._app

    def bind(self, base_url: str) -> None:
        """Tells the stand-in where it is served; response_urls it hands out point there."""
        self._base_url = base_url.rstrip("/")

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("SlackStandIn is not bound to a URL yet: call bind() or start() first")
        return self._base_url

    @property
    def api_url(self) -> str:
        """The Web API base URL for ``AsyncWebClient(base_url=...)``, with the trailing slash it needs."""
        return f"{self.base_url}/api/"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serves the app (port 0 picks a free one) and returns the base URL."""
        runner = web.AppRunner(self.app())
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        self._runner = runner
        bound_port = runner.addresses[0][1]
        self.bind(f"http://{host}:{bound_port}")
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: JsonDict = {}
        try:
            params = await _read_params(request)
        except _BadRequestBodyError:
            reply: ApiReply = error("invalid_json")
        else:
            bearer = _bearer(request.headers)
            token = bearer or str(params.get("token") or "") or None
            reply = self._webapi.handle(method, params, token=token, token_in_header=bearer is not None)
        self._calls.append(
            ApiCall(
                method=method,
                params=params,
                headers=CIMultiDict(request.headers),
                http_method=request.method,
                reply=reply,
            )
        )
        self._changes.notify()
        return web.json_response(reply.body, status=reply.status, headers=dict(reply.headers))

    def _open_socket_url(self) -> str:
        return self._socket.issue_url(self.base_url)

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        raw = await request.text()
        post = self._response_urls.post(request.match_info["token"], raw)
        self._response_posts.append(post)
        self._changes.notify()
        return web.Response(status=post.status, text=post.answer)

    # ---- configuring the workspace ---------------------------------------------------------------------

    def add_channel(self, channel_id: str, name: str, *, bot_member: bool = True) -> None:
        """``bot_member=False``: the bot may not post there (``not_in_channel``), e.g. a private channel."""
        self._workspace.channels[channel_id] = Channel(id=channel_id, name=name, bot_member=bot_member)

    def set_user(self, user_id: str, name: str) -> None:
        self._workspace.user_names[user_id] = name

    def set_usergroup(self, group_id: str, members: list[str], *, handle: str | None = None) -> None:
        self._workspace.usergroups[group_id] = list(members)
        if handle is not None:
            self._workspace.usergroup_handles[group_id] = handle

    def fail_usergroups(self, error_name: str | None) -> None:
        """Every usergroups.* call answers ``error_name`` (e.g. ``plan_upgrade_required``); None resets."""
        self._workspace.usergroups_error = error_name

    def fail(
        self,
        method: str,
        error: str = "ratelimited",
        *,
        status: int | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """The next ``times`` calls of ``method`` fail with ``error``.

        ``ratelimited`` defaults to HTTP 429 with ``Retry-After: 1`` as Slack sends it; others to HTTP 200.
        """
        rate_limited = error == "ratelimited"
        if rate_limited and retry_after is None:
            retry_after = 1
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        reply = ApiReply(
            {"ok": False, "error": error},
            status=status if status is not None else (429 if rate_limited else 200),
            headers=headers,
        )
        self._webapi.scripted.push(method, reply, times)

    def respond_with(
        self,
        method: str,
        body: JsonDict,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """The next ``times`` calls of ``method`` get exactly this answer."""
        self._webapi.scripted.push(method, ApiReply(body, status=status, headers=dict(headers or {})), times)

    # ---- recorded traffic ------------------------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[ApiCall]:
        return [c for c in self._calls if method is None or c.method == method]

    def response_posts(self) -> list[ResponsePost]:
        return list(self._response_posts)

    def clear_calls(self) -> None:
        """Forgets recorded API calls and response_url posts (not the timeline), e.g. between test phases."""
        self._calls.clear()
        self._response_posts.clear()

    async def wait_until(
        self,
        predicate: Callable[[], bool],
        *,
        timeout: float = 5.0,
        what: str = "",
    ) -> None:
        """Returns once ``predicate()`` holds, re-checking whenever something is recorded."""
        if not await self._changes.wait_until(predicate, timeout):
            seen = ", ".join(c.method for c in self._calls) or "none"
            raise TimeoutError(
                f"Slack stand-in: gave up after {timeout}s waiting for {what or 'a condition'}; "
                f"API calls so far: {seen}; response_url posts: {len(self._response_posts)}; "
                f"Socket Mode links: {len(self._socket.live)} live of {len(self._socket.connections)}"
            )

    async def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[ApiCall]:
        """Waits for at least ``count`` calls of ``method`` (since the last clear) and returns all of them."""
        await self.wait_until(
            lambda: len(self.calls(method)) >= count, timeout=timeout, what=f"{count}x {method}"
        )
        return self.calls(method)

    async def wait_for_responses(self, count: int = 1, timeout: float = 5.0) -> list[ResponsePost]:
        """Waits for at least ``count`` response_url posts (since the last clear) and returns all of them."""
        await self.wait_until(
            lambda: len(self._response_posts) >= count, timeout=timeout, what=f"{count} response_url post(s)"
        )
        return self.response_posts()

    async def wait_for_message(
        self,
        predicate: Callable[[Message], bool],
        *,
        timeout: float = 5.0,
    ) -> Message:
        """Waits for a (not deleted) message matching ``predicate``; replaced messages are re-checked."""
        found: list[Message] = []

        def match() -> bool:
            found[:] = [m for m in self._timeline.messages if not m.deleted and predicate(m)]
            return bool(found)

        await self.wait_until(match, timeout=timeout, what="a matching message")
        return found[0]

    # ---- Socket Mode -----------------------------------------------------------------------------------

    @property
    def socket(self) -> SocketModeServer:
        """Socket Mode state (links, envelopes) and hooks (drop, stall, refuse_connections)."""
        return self._socket

    def socket_delivery(self) -> SocketModeDelivery:
        """A delivery target for ``send_command``/``click``: envelopes over the bot's Socket Mode link."""
        return SocketModeDelivery(self._socket, ack_timeout=self.ack_timeout)

    async def wait_for_socket(
        self,
        *,
        count: int = 1,
        newer_than: SocketConnection | None = None,
        timeout: float = 5.0,
    ) -> SocketConnection:
        """Waits until ``count`` links are live (got ``hello``, not closed) and returns the newest.

        ``newer_than`` only counts links opened after that one, e.g. to wait for a reconnect.
        """

        def ready() -> list[SocketConnection]:
            floor = 0 if newer_than is None else newer_than.number
            return [c for c in self._socket.live if c.number > floor]

        wanted = f"{count} live Socket Mode link(s)" + (
            "" if newer_than is None else f" opened after link {newer_than.number}"
        )
        await self.wait_until(lambda: len(ready()) >= count, timeout=timeout, what=wanted)
        return ready()[-1]

    # ---- what people see -------------------------------------------------------------------------------

    @property
    def timeline(self) -> Timeline:
        return self._timeline

    def messages(self) -> list[Message]:
        return [m for m in self._timeline.messages if not m.deleted]

    def channel_messages(self, channel_id: str) -> list[Message]:
        return self._timeline.channel_messages(channel_id)

    def thread(self, channel_id: str, ts: str) -> list[Message]:
        return self._timeline.thread(channel_id, ts)

    def ephemeral_for(self, user_id: str, channel_id: str | None = None) -> list[Message]:
        return self._timeline.ephemeral_for(user_id, channel_id)

    def visible_to(self, user_id: str, channel_id: str | None = None) -> list[Message]:
        return self._timeline.visible_to(user_id, channel_id)

    @staticmethod
    def buttons(message: Message) -> list[Button]:
        return find_buttons(message.blocks)

    def directory(self) -> Directory:
        channel_names = dict(self._channel_labels)
        channel_names.update({c.id: c.name for c in self._workspace.channels.values()})
        return Directory(
            bot_user_id=self._workspace.bot_user_id,
            bot_name=self._workspace.bot_name,
            user_names=dict(self._workspace.user_names),
            channel_names=channel_names,
        )

    def render_transcript(self) -> str:
        return render_transcript(self._timeline.events, self.directory())

    # ---- playing the Slack client ----------------------------------------------------------------------

    def issue_response_url(self, *, channel_id: str, user_id: str, message: Message | None = None) -> str:
        """A fresh response_url: bound to ``message`` when given (like a click's), else like a command's."""
        origin = Origin.SLASH_COMMAND if message is None else Origin.BLOCK_ACTIONS
        return self._issue(origin, channel_id=channel_id, user_id=user_id, message=message).url

    def response_url_state(self, url: str) -> ResponseUrl | None:
        return self._response_urls.get(url.rstrip("/").rsplit("/", 1)[-1])

    def _issue(
        self, origin: Origin, *, channel_id: str, user_id: str, message: Message | None
    ) -> ResponseUrl:
        return self._response_urls.issue(
            self.base_url, origin=origin, channel_id=channel_id, user_id=user_id, message=message
        )

    def signed_headers(
        self, body: str | bytes, *, timestamp: int | None = None, secret: str | None = None
    ) -> dict[str, str]:
        """Slack's headers for ``body``; pass an old ``timestamp`` or another ``secret`` to forge them."""
        return signed_headers(body, secret=secret or self.signing_secret, timestamp=timestamp)

    def _delivery(self, target: str | Delivery) -> Delivery:
        if isinstance(target, str):
            return HttpDelivery(target, signing_secret=self.signing_secret, ack_timeout=self.ack_timeout)
        return target

    def _person(self, user_id: str, user_name: str | None) -> Person:
        if user_name is not None and user_id not in self._workspace.user_names:
            self._workspace.user_names[user_id] = user_name
        return Person(id=user_id, name=user_name or self._workspace.user_name(user_id))

    def _place(self, channel_id: str, channel_name: str | None) -> Place:
        if channel_name is not None:
            self._channel_labels.setdefault(channel_id, channel_name)
        known = self._workspace.channels.get(channel_id)
        return Place(id=channel_id, name=channel_name or (known.name if known else channel_id))

    async def send_command(
        self,
        bot_events_url: str | Delivery,
        *,
        user_id: str,
        text: str,
        channel_id: str,
        user_name: str | None = None,
        channel_name: str | None = None,
        command: str = "/dcs-backup",
    ) -> CommandResult:
        """Types ``command text`` as ``user_id`` in ``channel_id`` and delivers it to the bot as Slack does.

        ``text`` is what the person typed; Slack's escaping of ``& < >`` is applied here.
        """
        user = self._person(user_id, user_name)
        channel = self._place(channel_id, channel_name)
        response_url = self._issue(Origin.SLASH_COMMAND, channel_id=channel.id, user_id=user.id, message=None)
        form = slash_command_form(
            self._context,
            user=user,
            channel=channel,
            command=command,
            text=slack_escape(text),
            response_url=response_url.url,
            trigger_id=new_trigger_id(),
        )
        self._timeline.command_typed(channel=channel.id, user_id=user.id, command=command, text=text)
        reply = await self._delivery(bot_events_url).deliver(Inbound(PayloadKind.SLASH_COMMANDS, form))
        message = self._show_command_reply(reply, channel=channel.id, user_id=user.id, command=command)
        return CommandResult(
            status=reply.status, body=reply.body, response_url=response_url.url, reply=reply, message=message
        )

    def _show_command_reply(
        self, reply: BotReply, *, channel: str, user_id: str, command: str
    ) -> Message | None:
        if reply.error is not None:
            # What Slack shows when the app fails to answer; the exact wording is unconfirmed.
            text = f'{command} failed with the error "{reply.error}"'
            return self._timeline.post(
                channel=channel,
                author=SLACKBOT_USER_ID,
                content=Content(text=text),
                visible_to=user_id,
                source="ack",
            )
        body = reply.json()
        if body is None:
            if not reply.body.strip():
                return None
            body = {"text": reply.body}
        ack_text = body.get("text")
        blocks = body.get("blocks") if isinstance(body.get("blocks"), list) else []
        if not ack_text and not blocks:
            return None
        return self._timeline.post(
            channel=channel,
            author=self._workspace.bot_user_id,
            content=Content(text=str(ack_text or ""), blocks=list(blocks or [])),
            visible_to=None if body.get("response_type") == "in_channel" else user_id,
            source="ack",
        )

    def build_click(
        self,
        *,
        user_id: str,
        message: Message,
        action_id: str,
        value: str | None = None,
        force: bool = False,
    ) -> tuple[JsonDict, Button]:
        """The block_actions payload for ``user_id`` pressing the button ``action_id`` of ``message``.

        ``value`` replaces the button's value (a forged click). ``force`` skips the checks a real client
        implies (the user can see the message, it still exists).
        """
        if not force:
            if message.deleted:
                raise LookupError(f"message {message.ts} was deleted; nobody can click it")
            if not message.visible_for(user_id):
                raise PermissionError(f"{user_id} cannot see message {message.ts}, so cannot click it")
        buttons = find_buttons(message.blocks)
        button = next((b for b in buttons if b.action_id == action_id), None)
        if button is None:
            available = ", ".join(b.action_id for b in buttons) or "none"
            raise LookupError(f"no button {action_id!r} in message {message.ts} (buttons: {available})")
        response_url = self._issue(
            Origin.BLOCK_ACTIONS, channel_id=message.channel, user_id=user_id, message=message
        )
        payload = block_actions_payload(
            self._context,
            user=self._person(user_id, None),
            channel=self._place(message.channel, None),
            message_ts=message.ts,
            is_ephemeral=message.is_ephemeral,
            message=None if message.is_ephemeral else self._webapi.message_json(message),
            button=button,
            value=button.value if value is None else value,
            response_url=response_url.url,
            trigger_id=new_trigger_id(),
            action_ts=self._timeline.next_ts(),
        )
        return payload, button

    async def click(
        self,
        bot_events_url: str | Delivery,
        *,
        user_id: str,
        message: Message,
        action_id: str,
        value: str | None = None,
        force: bool = False,
    ) -> int:
        """Presses a button as ``user_id`` and returns the HTTP status of the bot's answer (0: no answer)."""
        payload, button = self.build_click(
            user_id=user_id, message=message, action_id=action_id, value=value, force=force
        )
        self._timeline.button_clicked(user_id=user_id, message=message, button=button)
        reply = await self.send_interactive(bot_events_url, payload)
        return reply.status

    async def send_interactive(self, bot_events_url: str | Delivery, payload: Mapping[str, Any]) -> BotReply:
        """Delivers any interaction payload, e.g. a crafted or forged one, correctly signed."""
        return await self._delivery(bot_events_url).deliver(Inbound(PayloadKind.INTERACTIVE, payload))


SLACK_STANDIN = web.AppKey("slack_standin", SlackStandIn)
