"""The Slack Web API methods the bot calls, answered from the workspace, the timeline and the views.

``chat.postMessage`` (channel notices, thread replies, ``reply_broadcast``), ``chat.update`` (a message it
posted, each version kept), ``chat.postEphemeral`` (a message only one person sees), ``views.open`` (a
modal, for a trigger id the stand-in issued less than 3 s ago and not used yet), ``views.update`` and
``views.publish`` (a person's Home tab, every version kept), ``usergroups.users.list`` (group rules),
``apps.connections.open`` (Socket Mode, with the app-level token) and ``auth.test`` (who the bot token
belongs to). Views are checked as
Slack checks them (:mod:`~bot.standins.slack.view_checks`): a bad one is ``invalid_arguments`` with the
reasons in ``response_metadata.messages``. Any other method answers ``unknown_method``, as Slack does, so a
bot calling something new is noticed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.standins.slack.timeline import Content, JsonDict, Timeline
from bot.standins.slack.view_checks import view_problems
from bot.standins.slack.views import Trigger, View, Views
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


def invalid_arguments(messages: list[str]) -> ApiReply:
    """Slack's answer to a call whose arguments it refuses, with its reasons."""
    return ApiReply({"ok": False, "error": "invalid_arguments", "response_metadata": {"messages": messages}})


def _str(params: Mapping[str, Any], key: str) -> str:
    value = params.get(key)
    return "" if value is None else str(value)


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


def _json_param(params: Mapping[str, Any], key: str) -> Any:
    """A JSON object argument: as such in JSON bodies, JSON-encoded in form bodies; None when absent."""
    raw = params.get(key)
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _flag(params: Mapping[str, Any], key: str) -> bool:
    value = params.get(key)
    return value is True or (isinstance(value, str) and value.lower() in ("true", "1"))


class WebApi:
    """Answers ``/api/{method}`` calls the way Slack would for this workspace."""

    def __init__(
        self,
        workspace: Workspace,
        timeline: Timeline,
        views: Views,
        *,
        bot_token: str,
        app_token: str | None = None,
        open_socket: Callable[[], str] | None = None,
    ) -> None:
        """``app_token`` turns Socket Mode on: apps.connections.open answers with ``open_socket()``."""
        self._ws = workspace
        self._timeline = timeline
        self._views = views
        self._bot_token = bot_token
        if app_token is not None and open_socket is None:
            raise ValueError("an app_token needs open_socket to issue Socket Mode URLs")
        self._app_token = app_token
        self._open_socket = open_socket
        self._methods: dict[str, Callable[[JsonDict], ApiReply]] = {
            "apps.connections.open": self._apps_connections_open,
            "auth.test": self._auth_test,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "usergroups.users.list": self._usergroups_users_list,
            "views.open": self._views_open,
            "views.publish": self._views_publish,
            "views.update": self._views_update,
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
        thread_ts = _str(params, "thread_ts") or None
        message = self._timeline.post(
            channel=channel,
            author=self._ws.bot_user_id,
            content=Content(text=text, blocks=blocks),
            thread_ts=thread_ts,
            source="chat.postMessage",
            # Slack ignores reply_broadcast outside a thread.
            broadcast=thread_ts is not None and _flag(params, "reply_broadcast"),
        )
        return ok(channel=channel, ts=message.ts, message=self._ws.message_json(message))

    def _chat_post_ephemeral(self, params: JsonDict) -> ApiReply:
        channel, problem = self._ws.resolve_channel(_str(params, "channel"))
        if problem:
            return error(problem)
        user_id = _str(params, "user")
        if not user_id:
            return error("user_not_in_channel")
        text = _str(params, "text")
        blocks = _blocks(params) or []
        if not text and not blocks:
            return error("no_text")
        message = self._timeline.post(
            channel=channel,
            author=self._ws.bot_user_id,
            content=Content(text=text, blocks=blocks),
            thread_ts=_str(params, "thread_ts") or None,
            visible_to=user_id,
            source="chat.postEphemeral",
        )
        return ok(message_ts=message.ts)

    def _chat_update(self, params: JsonDict) -> ApiReply:
        channel, problem = self._ws.resolve_channel(_str(params, "channel"))
        if problem == "channel_not_found":
            return error(problem)
        message = self._timeline.find(channel, _str(params, "ts"))
        if message is None or message.deleted:
            return error("message_not_found")
        if message.author != self._ws.bot_user_id:
            return error("cant_update_message")
        text = _str(params, "text")
        blocks = _blocks(params)
        if not text and not blocks:
            return error("no_text")
        # Blocks left out keep the message's own; text alone replaces them only when blocks are given.
        content = Content(text=text, blocks=message.blocks if blocks is None else blocks)
        self._timeline.replace(message, content)
        return ok(channel=channel, ts=message.ts, text=text, message=self._ws.message_json(message))

    def _view_json(self, view: View) -> JsonDict:
        return view.json(team_id=self._ws.team_id, app_id=self._ws.app_id, bot_id=self._ws.bot_id)

    def _checked_view(self, params: JsonDict, expected_type: str) -> JsonDict | ApiReply:
        definition = _json_param(params, "view")
        if definition is None:
            return invalid_arguments(["[ERROR] missing required field: view"])
        problems = view_problems(definition, expected_type=expected_type)
        if problems:
            return invalid_arguments(problems)
        assert isinstance(definition, dict)  # view_problems refuses anything else
        return definition

    def _views_open(self, params: JsonDict) -> ApiReply:
        trigger_id = _str(params, "trigger_id")
        if not trigger_id:
            return invalid_arguments(["[ERROR] missing required field: trigger_id"])
        definition = self._checked_view(params, "modal")
        if isinstance(definition, ApiReply):
            return definition
        # The view is checked first: a refused view does not use the trigger up.
        trigger = self._views.exchange(trigger_id)
        if not isinstance(trigger, Trigger):
            return error(trigger)
        return ok(view=self._view_json(self._views.open(trigger.user_id, definition)))

    def _views_update(self, params: JsonDict) -> ApiReply:
        view_id, external_id = _str(params, "view_id"), _str(params, "external_id")
        if not view_id and not external_id:
            return invalid_arguments(["[ERROR] view_id or external_id is required"])
        view = self._views.get(view_id) if view_id else self._views.by_external_id(external_id)
        if view is None:
            return error("not_found")
        definition = self._checked_view(params, view.type)
        if isinstance(definition, ApiReply):
            return definition
        wanted_hash = _str(params, "hash")
        if wanted_hash and wanted_hash != view.hash:
            return error("hash_conflict")
        self._views.replace(view, definition)
        return ok(view=self._view_json(view))

    def _views_publish(self, params: JsonDict) -> ApiReply:
        user_id = _str(params, "user_id")
        if not user_id:
            return invalid_arguments(["[ERROR] missing required field: user_id"])
        definition = self._checked_view(params, "home")
        if isinstance(definition, ApiReply):
            return definition
        home = self._views.home_of(user_id)
        wanted_hash = _str(params, "hash")
        if home is not None and wanted_hash and wanted_hash != home.hash:
            return error("hash_conflict")
        return ok(view=self._view_json(self._views.publish(user_id, definition)))

    def _usergroups_users_list(self, params: JsonDict) -> ApiReply:
        if self._ws.usergroups_error is not None:
            return error(self._ws.usergroups_error)
        members = self._ws.usergroups.get(_str(params, "usergroup"))
        if members is None:
            return error("no_such_subteam")
        return ok(users=list(members))
