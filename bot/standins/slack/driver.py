"""The user's side of the Slack stand-in: a person typing slash commands, pressing buttons, using a
shortcut, typing into a modal's select menu and submitting the modal.

It builds the payloads Slack would send (signed forms over HTTP, or envelopes over the bot's Socket Mode
link), delivers them to the bot, and shows the bot's answer the way Slack does (an ephemeral ack, or
Slackbot's error when the bot failed to answer in time; a modal closed, kept open with errors on its
fields, or updated), recording it all on the timeline and the views. Each payload carries a fresh trigger
id the views know, so the bot can open a modal with it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.standins.slack.delivery import (
    SLACK_ACK_TIMEOUT,
    BotReply,
    Delivery,
    HttpDelivery,
    Inbound,
    PayloadKind,
)
from bot.standins.slack.payloads import (
    AppContext,
    app_home_opened_event,
    block_actions_payload,
    block_suggestion_payload,
    button_action,
    shortcut_payload,
    signed_headers,
    slack_escape,
    slash_command_form,
    view_block_actions_payload,
    view_submission_payload,
)
from bot.standins.slack.response_urls import Origin, ResponseUrl, ResponseUrls
from bot.standins.slack.socket_mode import SocketConnection, SocketModeDelivery, SocketModeServer
from bot.standins.slack.timeline import (
    SLACKBOT_USER_ID,
    Button,
    Content,
    JsonDict,
    Message,
    Timeline,
    find_buttons,
)
from bot.standins.slack.view_checks import suggestion_problems, view_problems
from bot.standins.slack.view_state import view_state
from bot.standins.slack.views import View, Views
from bot.standins.slack.workspace import Workspace


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


@dataclass(frozen=True)
class Suggestions:
    """The bot's answer to a block_suggestion: the options Slack would list, and what Slack would refuse
    in the answer (then it lists none)."""

    reply: BotReply
    options: list[JsonDict]
    problems: list[str]

    @property
    def labels(self) -> list[str]:
        return [
            str(o.get("text", {}).get("text", "")) for o in self.options if isinstance(o.get("text"), dict)
        ]

    @property
    def values(self) -> list[str]:
        return [str(o.get("value", "")) for o in self.options]


@dataclass(frozen=True)
class Submitted:
    """The bot's answer to a view_submission and what became of the modal."""

    reply: BotReply
    view: View
    #: The errors shown on the modal's fields (``response_action: errors``), by block_id.
    errors: dict[str, str]
    #: What Slack would refuse in the answer (then the person sees a generic error, the modal stays).
    problems: list[str]
    #: Whether the answer closed the modal.
    closed: bool = False


class SlackUser:
    """People in the workspace, as the Slack client acts for them towards the bot."""

    def __init__(
        self,
        workspace: Workspace,
        timeline: Timeline,
        response_urls: ResponseUrls,
        socket: SocketModeServer,
        views: Views,
        *,
        signing_secret: str,
        verification_token: str,
        base_url: Callable[[], str],
        ack_timeout: float | None = SLACK_ACK_TIMEOUT,
    ) -> None:
        """``base_url`` tells where the stand-in is served (response_urls point there)."""
        self._workspace = workspace
        self._timeline = timeline
        self._response_urls = response_urls
        self._socket = socket
        self._views = views
        self._signing_secret = signing_secret
        self._base_url = base_url
        self._ack_timeout = ack_timeout
        self._context = AppContext(
            team_id=workspace.team_id,
            team_domain=workspace.team_domain,
            api_app_id=workspace.app_id,
            verification_token=verification_token,
        )

    def socket_delivery(self, connection: SocketConnection | None = None) -> SocketModeDelivery:
        """A delivery target for ``send_command``/``click``: envelopes over the bot's Socket Mode links, in
        turn, or over ``connection`` only."""
        return SocketModeDelivery(self._socket, ack_timeout=self._ack_timeout, connection=connection)

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
            self._base_url(), origin=origin, channel_id=channel_id, user_id=user_id, message=message
        )

    def signed_headers(
        self, body: str | bytes, *, timestamp: int | None = None, secret: str | None = None
    ) -> dict[str, str]:
        """Slack's headers for ``body``; pass an old ``timestamp`` or another ``secret`` to forge them."""
        return signed_headers(body, secret=secret or self._signing_secret, timestamp=timestamp)

    def _delivery(self, target: str | Delivery) -> Delivery:
        if isinstance(target, str):
            return HttpDelivery(target, signing_secret=self._signing_secret, ack_timeout=self._ack_timeout)
        return target

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
        user = self._workspace.person(user_id, user_name)
        channel = self._workspace.place(channel_id, channel_name)
        response_url = self._issue(Origin.SLASH_COMMAND, channel_id=channel.id, user_id=user.id, message=None)
        form = slash_command_form(
            self._context,
            user=user,
            channel=channel,
            command=command,
            text=slack_escape(text),
            response_url=response_url.url,
            trigger_id=self._views.issue_trigger(user.id),
        )
        self._timeline.command_typed(channel=channel.id, user_id=user.id, command=command, text=text)
        reply = await self._delivery(bot_events_url).deliver(Inbound(PayloadKind.SLASH_COMMANDS, form))
        message = self._show_command_reply(reply, channel=channel.id, user_id=user.id, command=command)
        if message is not None and message.author == self._workspace.bot_user_id:
            # The command's immediate reply is what its response_url's replace_original acts on.
            response_url.message = message
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
            user=self._workspace.person(user_id, None),
            channel=self._workspace.place(message.channel, None),
            message_ts=message.ts,
            is_ephemeral=message.is_ephemeral,
            message=None if message.is_ephemeral else self._workspace.message_json(message),
            button=button,
            value=button.value if value is None else value,
            response_url=response_url.url,
            trigger_id=self._views.issue_trigger(user_id),
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

    def home_opened_event(self, *, user_id: str, event_id: str | None = None) -> JsonDict:
        """The ``app_home_opened`` event_callback for ``user_id`` opening the app's Home tab now."""
        home = self._views.home_of(user_id)
        return app_home_opened_event(
            self._context,
            user=self._workspace.person(user_id, None),
            bot_user_id=self._workspace.bot_user_id,
            view=None if home is None else self._view_json(home),
            event_id=event_id or f"Ev{secrets.token_hex(5).upper()}",
            event_ts=self._timeline.next_ts(),
        )

    async def open_home(
        self, bot_events_url: str | Delivery, *, user_id: str, event_id: str | None = None
    ) -> BotReply:
        """``user_id`` opens the app's Home tab: Slack sends the bot ``app_home_opened``."""
        event = self.home_opened_event(user_id=user_id, event_id=event_id)
        return await self._delivery(bot_events_url).deliver(Inbound(PayloadKind.EVENTS_API, event))

    def build_home_click(
        self, *, user_id: str, action_id: str, value: str | None = None
    ) -> tuple[JsonDict, Button]:
        """The block_actions payload for ``user_id`` pressing, on their Home tab, the button ``action_id``
        (the one whose value is ``value``, when given). Like every click it carries a fresh trigger id, so
        the bot can open a modal from it."""
        home = self._views.home_of(user_id)
        buttons = [b for b in find_buttons(home.blocks) if b.action_id == action_id] if home else []
        button = next((b for b in buttons if value is None or b.value == value), None)
        if home is None or button is None:
            raise LookupError(f"no button {action_id!r} (value {value!r}) on the Home tab of {user_id}")
        return self._view_click_payload(
            user_id, home, button_action(button, self._timeline.next_ts())
        ), button

    async def click_home(
        self, bot_events_url: str | Delivery, *, user_id: str, action_id: str, value: str | None = None
    ) -> int:
        """Presses a button of ``user_id``'s Home tab; returns the HTTP status of the bot's answer."""
        payload, _ = self.build_home_click(user_id=user_id, action_id=action_id, value=value)
        reply = await self.send_interactive(bot_events_url, payload)
        return reply.status

    async def send_interactive(self, bot_events_url: str | Delivery, payload: Mapping[str, Any]) -> BotReply:
        """Delivers any interaction payload, e.g. a crafted or forged one, correctly signed."""
        return await self._delivery(bot_events_url).deliver(Inbound(PayloadKind.INTERACTIVE, payload))

    # ---- shortcuts and views ---------------------------------------------------------------------------

    def _view_json(self, view: View, state: JsonDict | None = None) -> JsonDict:
        ws = self._workspace
        return view.json(team_id=ws.team_id, app_id=ws.app_id, bot_id=ws.bot_id, state=state)

    async def send_shortcut(
        self, bot_events_url: str | Delivery, *, user_id: str, callback_id: str
    ) -> BotReply:
        """Picks the app's global shortcut ``callback_id`` from the shortcuts menu, as ``user_id``."""
        payload = shortcut_payload(
            self._context,
            user=self._workspace.person(user_id, None),
            callback_id=callback_id,
            trigger_id=self._views.issue_trigger(user_id),
            action_ts=self._timeline.next_ts(),
        )
        return await self.send_interactive(bot_events_url, payload)

    async def suggest(
        self, bot_events_url: str | Delivery, *, user_id: str, view: View, action_id: str, typed: str
    ) -> Suggestions:
        """Types ``typed`` into the external_select ``action_id`` of ``view``: the options request Slack
        sends, and the options it would list from the bot's answer."""
        found = view.element(action_id)
        if found is None or found[1].get("type") != "external_select":
            raise LookupError(f"no external_select {action_id!r} in view {view.view_id}")
        block, _ = found
        payload = block_suggestion_payload(
            self._context,
            user=self._workspace.person(user_id, None),
            view=self._view_json(view),
            block_id=str(block.get("block_id", "")),
            action_id=action_id,
            value=typed,
        )
        reply = await self.send_interactive(bot_events_url, payload)
        body = reply.json()
        if not reply.ok or body is None:
            return Suggestions(reply, [], [f"no options: HTTP {reply.status} {reply.error or ''}".rstrip()])
        problems = suggestion_problems(body)
        options = body.get("options")
        listed = (
            [o for o in options if isinstance(o, dict)] if isinstance(options, list) and not problems else []
        )
        return Suggestions(reply, listed, problems)

    async def submit_view(
        self,
        bot_events_url: str | Delivery,
        *,
        user_id: str,
        view: View,
        entered: Mapping[str, Any] | None = None,
        force: bool = False,
    ) -> Submitted:
        """Fills in ``view`` (see :mod:`~bot.standins.slack.view_state`) and presses its submit button.

        ``force`` sends what the Slack client would refuse to (a required field empty, a text longer than
        its input allows). The bot's answer is applied as Slack does: none (or ``clear``) closes the modal,
        ``errors`` shows them on the fields, ``update`` replaces it."""
        if view.closed and not force:
            raise LookupError(f"view {view.view_id} is closed; nobody can submit it")
        state = view_state(view.blocks, entered or {}, force=force)
        payload = view_submission_payload(
            self._context,
            user=self._workspace.person(user_id, None),
            view=self._view_json(view, state),
            trigger_id=self._views.issue_trigger(user_id),
            response_urls=[],
        )
        reply = await self.send_interactive(bot_events_url, payload)
        return self._apply_submission_answer(view, reply)

    def _apply_submission_answer(self, view: View, reply: BotReply) -> Submitted:
        if not reply.ok:
            return Submitted(reply, view, {}, [f"HTTP {reply.status} {reply.error or ''}".rstrip()])
        body = reply.json() if reply.body.strip() else {}
        if body is None:
            return Submitted(reply, view, {}, ["the answer is not a JSON object"])
        action = body.get("response_action")
        if action is None or action == "clear":
            self._views.close(view)
            return Submitted(reply, view, {}, [], closed=True)
        if action == "errors":
            errors = body.get("errors")
            if not isinstance(errors, dict) or not errors:
                return Submitted(reply, view, {}, ["response_action errors needs an errors object"])
            problems = [
                f"errors names {key!r}, which is no input block of the view"
                for key in errors
                if view.input_block(str(key)) is None
            ]
            if problems:
                return Submitted(reply, view, {}, problems)
            shown = {str(k): str(v) for k, v in errors.items()}
            self._views.show_errors(view, shown)
            return Submitted(reply, view, shown, [])
        if action == "update":
            problems = view_problems(body.get("view"), expected_type="modal")
            if not problems:
                self._views.replace(view, body["view"])
            return Submitted(reply, view, {}, problems)
        return Submitted(reply, view, {}, [f"response_action {action!r} is not handled by the stand-in"])

    async def click_in_view(
        self,
        bot_events_url: str | Delivery,
        *,
        user_id: str,
        view: View,
        action_id: str,
        value: str | None = None,
    ) -> BotReply:
        """Presses the button ``action_id`` of ``view`` (a modal or a Home tab) as ``user_id``."""
        found = view.element(action_id)
        if found is None:
            raise LookupError(f"no element {action_id!r} in view {view.view_id}")
        block, element = found
        text = element.get("text")
        action: JsonDict = {
            "action_id": action_id,
            "block_id": str(block.get("block_id", "")),
            "type": str(element.get("type")),
            "action_ts": self._timeline.next_ts(),
        }
        if isinstance(text, dict):
            action["text"] = text
        chosen = element.get("value") if value is None else value
        if chosen is not None:
            action["value"] = chosen
        return await self.send_interactive(bot_events_url, self._view_click_payload(user_id, view, action))

    def _view_click_payload(self, user_id: str, view: View, action: JsonDict) -> JsonDict:
        return view_block_actions_payload(
            self._context,
            user=self._workspace.person(user_id, None),
            view=self._view_json(view),
            action=action,
            trigger_id=self._views.issue_trigger(user_id),
        )
