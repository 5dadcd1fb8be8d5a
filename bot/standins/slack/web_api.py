"""Slack's Web API methods the bot uses, answered from a configurable workspace and a timeline."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.standins.slack.timeline import Content, JsonDict, Message, Timeline

#: Methods that take the app-level token (``xapp-…``) instead of the bot token.
APP_LEVEL_METHODS = frozenset({"apps.connections.open"})


@dataclass
class Channel:
    id: str
    name: str
    #: False models a private channel the bot was not invited to, or a public one without chat:write.public.
    bot_member: bool = True


@dataclass
class Workspace:
    """Who and what exists in the emulated Slack workspace."""

    team_id: str
    team_domain: str
    team_name: str
    bot_user_id: str
    bot_id: str
    bot_name: str
    app_id: str
    accept_unknown_channels: bool = True
    channels: dict[str, Channel] = field(default_factory=dict)
    user_names: dict[str, str] = field(default_factory=dict)
    usergroups: dict[str, list[str]] = field(default_factory=dict)
    usergroup_handles: dict[str, str] = field(default_factory=dict)
    usergroups_error: str | None = None

    def user_name(self, user_id: str) -> str:
        if user_id == self.bot_user_id:
            return self.bot_name
        return self.user_names.get(user_id, user_id.lower())

    def channel_name(self, channel_id: str) -> str:
        channel = self.channels.get(channel_id)
        return channel.name if channel is not None else channel_id

    def resolve_channel(self, value: str) -> tuple[str, str | None]:
        """The channel id for ``value`` (an id or a name) and Slack's error if the bot may not post there."""
        channel = self.channels.get(value)
        if channel is None:
            wanted = value.removeprefix("#")
            channel = next((c for c in self.channels.values() if c.name == wanted), None)
        if channel is None:
            if not value or not self.accept_unknown_channels:
                return value, "channel_not_found"
            return value, None
        if not channel.bot_member:
            return channel.id, "not_in_channel"
        return channel.id, None


@dataclass(frozen=True)
class ApiReply:
    body: JsonDict
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ApiCall:
    """One recorded Web API request and the answer it got."""

    method: str
    params: JsonDict
    #: Case-insensitive, like HTTP headers.
    headers: Mapping[str, str]
    http_method: str
    reply: ApiReply

    @property
    def ok(self) -> bool:
        return bool(self.reply.body.get("ok"))


def ok(**fields: Any) -> ApiReply:
    return ApiReply({"ok": True, **fields})


def error(name: str, *, status: int = 200, headers: Mapping[str, str] | None = None) -> ApiReply:
    return ApiReply({"ok": False, "error": name}, status=status, headers=headers or {})


class ScriptedReplies:
    """Per-method stacks of canned answers that take precedence over the emulated behaviour, once each."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[ApiReply]] = {}

    def push(self, method: str, reply: ApiReply, times: int = 1) -> None:
        self._queues.setdefault(method, deque()).extend([reply] * times)

    def pop(self, method: str) -> ApiReply | None:
        queue = self._queues.get(method)
        return queue.popleft() if queue else None

    def pending(self, method: str) -> int:
        return len(self._queues.get(method, ()))

    def clear(self) -> None:
        self._queues.clear()


def _str(params: Mapping[str, Any], key: str) -> str:
    value = params.get(key)
    return "" if value is None else str(value)


def _blocks(params: Mapping[str, Any]) -> list[JsonDict] | None:
    """Blocks arrive as a JSON array (JSON bodies) or as a JSON-encoded string (form bodies)."""
    raw = params.get("blocks")
    if raw is None or raw == "":
        return None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise _InvalidBlocksError from exc
    if not isinstance(raw, list) or not all(isinstance(b, dict) for b in raw):
        raise _InvalidBlocksError
    return raw


class _InvalidBlocksError(Exception):
    pass


class WebApi:
    """Answers ``/api/{method}`` calls the way Slack would for this workspace."""

    def __init__(
        self,
        workspace: Workspace,
        timeline: Timeline,
        *,
        bot_token: str,
        app_token: str | None = None,
        open_socket: Callable[[], str] | None = None,
    ) -> None:
        """``app_token`` turns Socket Mode on: apps.connections.open answers with ``open_socket()``."""
        self._ws = workspace
        self._timeline = timeline
        self._bot_token = bot_token
        if app_token is not None and open_socket is None:
            raise ValueError("an app_token needs open_socket to issue Socket Mode URLs")
        self._app_token = app_token
        self._open_socket = open_socket
        self.scripted = ScriptedReplies()
        self._methods: dict[str, Callable[[JsonDict], ApiReply]] = {
            "apps.connections.open": self._apps_connections_open,
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "conversations.info": self._conversations_info,
            "users.info": self._users_info,
            "usergroups.list": self._usergroups_list,
            "usergroups.users.list": self._usergroups_users_list,
        }

    def handle(
        self, method: str, params: JsonDict, *, token: str | None, token_in_header: bool = True
    ) -> ApiReply:
        app_level = method in APP_LEVEL_METHODS
        if app_level and not token_in_header:
            # Slack documents that apps.connections.open errors when the token comes as a POST parameter.
            token = None
        if not token:
            return error("not_authed")
        if token != (self._app_token if app_level else self._bot_token):
            known = token in (self._bot_token, self._app_token)
            return error("not_allowed_token_type" if known else "invalid_auth")
        scripted = self.scripted.pop(method)
        if scripted is not None:
            return scripted
        handler = self._methods.get(method)
        if handler is None:
            return ok()
        try:
            return handler(params)
        except _InvalidBlocksError:
            return error("invalid_blocks")

    def message_json(self, message: Message) -> JsonDict:
        """A message the way Slack serialises it in API answers and interaction payloads."""
        body: JsonDict = {
            "type": "message",
            "ts": message.ts,
            "text": message.text,
            "blocks": message.blocks,
            "team": self._ws.team_id,
        }
        if message.author == self._ws.bot_user_id:
            body.update(user=self._ws.bot_user_id, bot_id=self._ws.bot_id, app_id=self._ws.app_id)
        else:
            body["user"] = message.author
        if message.thread_ts is not None:
            body["thread_ts"] = message.thread_ts
        return body

    def _apps_connections_open(self, params: JsonDict) -> ApiReply:
        assert self._open_socket is not None  # checked in __init__ whenever an app token can match
        return ok(url=self._open_socket())

    def _auth_test(self, params: JsonDict) -> ApiReply:
        return ok(
            url=f"https://{self._ws.team_domain}.slack.com/",
            team=self._ws.team_name,
            team_id=self._ws.team_id,
            user=self._ws.bot_name.lower().replace(" ", "-"),
            user_id=self._ws.bot_user_id,
            bot_id=self._ws.bot_id,
            is_enterprise_install=False,
        )

    def _content(self, params: JsonDict) -> Content | None:
        text = _str(params, "text")
        blocks = _blocks(params) or []
        if not text and not blocks:
            return None
        return Content(text=text, blocks=blocks)

    def _chat_post_message(self, params: JsonDict) -> ApiReply:
        channel, problem = self._ws.resolve_channel(_str(params, "channel"))
        if problem:
            return error(problem)
        content = self._content(params)
        if content is None:
            return error("no_text")
        message = self._timeline.post(
            channel=channel,
            author=self._ws.bot_user_id,
            content=content,
            thread_ts=_str(params, "thread_ts") or None,
            source="chat.postMessage",
        )
        return ok(channel=channel, ts=message.ts, message=self.message_json(message))

    def _chat_post_ephemeral(self, params: JsonDict) -> ApiReply:
        # Same channel rules as chat.postMessage; that Slack answers not_in_channel here too is unconfirmed.
        channel, problem = self._ws.resolve_channel(_str(params, "channel"))
        if problem:
            return error(problem)
        user = _str(params, "user")
        if not user:
            return error("user_not_in_channel")
        content = self._content(params)
        if content is None:
            return error("no_text")
        message = self._timeline.post(
            channel=channel,
            author=self._ws.bot_user_id,
            content=content,
            thread_ts=_str(params, "thread_ts") or None,
            visible_to=user,
            source="chat.postEphemeral",
        )
        return ok(message_ts=message.ts)

    def _own_message(self, params: JsonDict) -> Message | ApiReply:
        channel, _ = self._ws.resolve_channel(_str(params, "channel"))
        message = self._timeline.find(channel, _str(params, "ts"))
        # Ephemeral messages are not stored server-side, so Slack cannot find them by ts.
        if message is None or message.deleted or message.is_ephemeral:
            return error("message_not_found")
        if message.author != self._ws.bot_user_id:
            return error("cant_update_message")
        return message

    def _chat_update(self, params: JsonDict) -> ApiReply:
        found = self._own_message(params)
        if isinstance(found, ApiReply):
            return found
        # Omitted fields keep their old value; an empty blocks list removes the blocks.
        blocks = _blocks(params)
        text = params.get("text")
        content = Content(
            text=found.text if text is None else str(text),
            blocks=(blocks or []) if "blocks" in params else found.blocks,
        )
        self._timeline.replace(found, content)
        return ok(channel=found.channel, ts=found.ts, text=content.text, message=self.message_json(found))

    def _chat_delete(self, params: JsonDict) -> ApiReply:
        found = self._own_message(params)
        if isinstance(found, ApiReply):
            return found
        self._timeline.delete(found)
        return ok(channel=found.channel, ts=found.ts)

    def _conversations_info(self, params: JsonDict) -> ApiReply:
        channel = self._ws.channels.get(_str(params, "channel"))
        if channel is None:
            return error("channel_not_found")
        return ok(
            channel={
                "id": channel.id,
                "name": channel.name,
                "is_channel": True,
                "is_member": channel.bot_member,
            }
        )

    def _users_info(self, params: JsonDict) -> ApiReply:
        user_id = _str(params, "user")
        if not user_id:
            return error("user_not_found")
        name = self._ws.user_name(user_id)
        return ok(
            user={
                "id": user_id,
                "team_id": self._ws.team_id,
                "name": name,
                "real_name": name,
                "is_bot": user_id == self._ws.bot_user_id,
                "deleted": False,
                "profile": {"display_name": name, "real_name": name},
            }
        )

    def _usergroups_list(self, params: JsonDict) -> ApiReply:
        if self._ws.usergroups_error is not None:
            return error(self._ws.usergroups_error)
        return ok(
            usergroups=[
                {
                    "id": group_id,
                    "team_id": self._ws.team_id,
                    "handle": self._ws.usergroup_handles.get(group_id, group_id.lower()),
                    "name": self._ws.usergroup_handles.get(group_id, group_id.lower()),
                    "user_count": len(members),
                }
                for group_id, members in self._ws.usergroups.items()
            ]
        )

    def _usergroups_users_list(self, params: JsonDict) -> ApiReply:
        if self._ws.usergroups_error is not None:
            return error(self._ws.usergroups_error)
        members = self._ws.usergroups.get(_str(params, "usergroup"))
        if members is None:
            return error("no_such_subteam")
        return ok(users=list(members))
