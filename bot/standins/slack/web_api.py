"""The Slack Web API methods the bot calls, answered from the workspace and the timeline.

``chat.postMessage`` (channel notices; ``reply_broadcast`` is kept on the message), ``chat.update`` (a
message the bot posted in a channel, by channel and ``ts``; every version is kept in its history),
``usergroups.users.list`` (group rules), ``apps.connections.open`` (Socket Mode, with the app-level token)
and ``auth.test`` (who the bot token belongs to). Any other method answers ``unknown_method``, as Slack
does, so a bot calling something new is noticed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.standins.slack.timeline import Content, JsonDict, Timeline
from bot.standins.slack.workspace import Workspace

#: Methods that take the app-level token (``xapp-…``) instead of the bot token.
APP_LEVEL_METHODS = frozenset({"apps.connections.open"})


@dataclass(frozen=True)
class ApiReply:
    body: JsonDict
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)


def ok(**fields: Any) -> ApiReply:
    return ApiReply({"ok": True, **fields})


def error(name: str, *, status: int = 200, headers: Mapping[str, str] | None = None) -> ApiReply:
    return ApiReply({"ok": False, "error": name}, status=status, headers=headers or {})


def _str(params: Mapping[str, Any], key: str) -> str:
    value = params.get(key)
    return "" if value is None else str(value)


def _flag(params: Mapping[str, Any], key: str) -> bool:
    """A boolean parameter: JSON ``true`` or, in form bodies, ``"true"``/``"1"``."""
    value = params.get(key)
    return value is True or (isinstance(value, str) and value.lower() in ("true", "1"))


class _InvalidBlocksError(Exception):
    pass


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
        self._methods: dict[str, Callable[[JsonDict], ApiReply]] = {
            "apps.connections.open": self._apps_connections_open,
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "usergroups.users.list": self._usergroups_users_list,
        }

    @property
    def methods(self) -> frozenset[str]:
        return frozenset(self._methods)

    def refusal(self, method: str, *, token: str | None, token_in_header: bool = True) -> ApiReply | None:
        """Slack's answer when the token does not admit the call, else None."""
        app_level = method in APP_LEVEL_METHODS
        if app_level and not token_in_header:
            # Slack documents that apps.connections.open errors when the token comes as a POST parameter.
            token = None
        if not token:
            return error("not_authed")
        if method == "auth.test" and token != self._bot_token:
            # The bot checks its bot token at start-up; any other token is simply not it.
            return error("invalid_auth")
        if token != (self._app_token if app_level else self._bot_token):
            known = token in (self._bot_token, self._app_token)
            return error("not_allowed_token_type" if known else "invalid_auth")
        return None

    def call(self, method: str, params: JsonDict) -> ApiReply:
        """Carries out an admitted call."""
        handler = self._methods.get(method)
        if handler is None:
            return error("unknown_method")
        try:
            return handler(params)
        except _InvalidBlocksError:
            return error("invalid_blocks")

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

    def _chat_post_message(self, params: JsonDict) -> ApiReply:
        channel, problem = self._ws.resolve_channel(_str(params, "channel"))
        if problem:
            return error(problem)
        text = _str(params, "text")
        blocks = _blocks(params) or []
        if not text and not blocks:
            return error("no_text")
        message = self._timeline.post(
            channel=channel,
            author=self._ws.bot_user_id,
            content=Content(text=text, blocks=blocks),
            thread_ts=_str(params, "thread_ts") or None,
            source="chat.postMessage",
            reply_broadcast=_flag(params, "reply_broadcast"),
        )
        return ok(channel=channel, ts=message.ts, message=self._ws.message_json(message))

    def _chat_update(self, params: JsonDict) -> ApiReply:
        channel, problem = self._ws.resolve_channel(_str(params, "channel"))
        if problem:
            return error(problem)
        ts = _str(params, "ts")
        message = next(
            (
                m
                for m in self._timeline.messages
                if m.channel == channel and m.ts == ts and not m.deleted and not m.is_ephemeral
            ),
            None,
        )
        if message is None:
            return error("message_not_found")
        if message.author != self._ws.bot_user_id:
            return error("cant_update_message")
        text = _str(params, "text")
        blocks = _blocks(params)
        if not text and not blocks:
            return error("no_text")
        # Slack keeps the blocks when an update gives none, and the text when it gives none.
        content = Content(text=text or message.text, blocks=message.blocks if blocks is None else blocks)
        self._timeline.replace(message, content)
        return ok(channel=channel, ts=message.ts, text=content.text)

    def _usergroups_users_list(self, params: JsonDict) -> ApiReply:
        if self._ws.usergroups_error is not None:
            return error(self._ws.usergroups_error)
        members = self._ws.usergroups.get(_str(params, "usergroup"))
        if members is None:
            return error("no_such_subteam")
        return ok(users=list(members))
