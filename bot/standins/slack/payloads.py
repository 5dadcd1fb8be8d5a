"""What Slack sends to an app: slash-command forms, block_actions payloads, and request signatures.

Pure builders: no I/O, so the same payloads can travel over HTTP or, later, inside Socket Mode envelopes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

from bot.standins.slack.timeline import Button, JsonDict

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class AppContext:
    """The workspace and app a payload comes from."""

    team_id: str
    team_domain: str
    api_app_id: str
    #: The deprecated verification token Slack still puts in every slash-command form.
    verification_token: str


@dataclass(frozen=True)
class Person:
    id: str
    name: str


@dataclass(frozen=True)
class Place:
    """A conversation: channel id and name."""

    id: str
    name: str


def slack_escape(text: str) -> str:
    """Slack's escaping of user-typed text: only ``&``, ``<`` and ``>``."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def new_trigger_id() -> str:
    return f"{secrets.randbelow(10**13)}.{secrets.randbelow(10**13)}.{secrets.token_hex(16)}"


def slash_command_form(
    app: AppContext,
    *,
    user: Person,
    channel: Place,
    command: str,
    text: str,
    response_url: str,
    trigger_id: str,
) -> dict[str, str]:
    """The form fields of a slash-command request, in Slack's order. ``text`` must already be escaped."""
    return {
        "token": app.verification_token,
        "team_id": app.team_id,
        "team_domain": app.team_domain,
        "channel_id": channel.id,
        "channel_name": channel.name,
        "user_id": user.id,
        "user_name": user.name,
        "command": command,
        "text": text,
        "api_app_id": app.api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def block_actions_payload(
    app: AppContext,
    *,
    user: Person,
    channel: Place,
    message_ts: str,
    is_ephemeral: bool,
    message: JsonDict | None,
    button: Button,
    value: str | None,
    response_url: str,
    trigger_id: str,
    action_ts: str,
) -> JsonDict:
    """A ``block_actions`` payload for one button click.

    ``message`` is the clicked message as Slack serialises it; Slack leaves it out for ephemeral messages
    (unconfirmed), so apps must rely on ``container``.
    """
    payload: JsonDict = {
        "type": "block_actions",
        "team": {"id": app.team_id, "domain": app.team_domain},
        "user": {"id": user.id, "username": user.name, "name": user.name, "team_id": app.team_id},
        "api_app_id": app.api_app_id,
        "token": app.verification_token,
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel.id,
            "is_ephemeral": is_ephemeral,
        },
        "trigger_id": trigger_id,
        "channel": {"id": channel.id, "name": channel.name},
        "is_enterprise_install": False,
        "enterprise": None,
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [button_action(button, action_ts, value=value)],
    }
    if message is not None:
        payload["message"] = message
    return payload


def app_home_opened_event(
    app: AppContext, *, user: Person, bot_user_id: str, view: JsonDict | None, event_id: str, event_ts: str
) -> JsonDict:
    """The Events API ``event_callback`` Slack sends when ``user`` opens the app's Home tab; ``view`` is
    the Home view published to them before, absent the first time."""
    event: JsonDict = {
        "type": "app_home_opened",
        "user": user.id,
        "channel": f"D{user.id.removeprefix('U')}",
        "tab": "home",
        "event_ts": event_ts,
    }
    if view is not None:
        event["view"] = view
    return {
        "token": app.verification_token,
        "team_id": app.team_id,
        "api_app_id": app.api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(float(event_ts)),
        "authorizations": [
            {"enterprise_id": None, "team_id": app.team_id, "user_id": bot_user_id, "is_bot": True}
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-{secrets.token_hex(8)}",
    }


def button_action(button: Button, action_ts: str, *, value: str | None = None) -> JsonDict:
    """The ``actions`` entry of a ``block_actions`` payload for a press of ``button`` (``value``: one
    forged in place of the button's own)."""
    action: JsonDict = {
        "action_id": button.action_id,
        "block_id": button.block_id,
        "type": "button",
        "text": {"type": "plain_text", "text": button.label, "emoji": True},
        "action_ts": action_ts,
    }
    if (value := button.value if value is None else value) is not None:
        action["value"] = value
    if button.style is not None:
        action["style"] = button.style
    return action


def encode_form(fields: Mapping[str, str]) -> str:
    return urlencode(fields)


def encode_interactive(payload: JsonDict) -> str:
    return urlencode({"payload": json.dumps(payload)})


def signed_headers(
    body: str | bytes,
    *,
    secret: str,
    timestamp: int | None = None,
    content_type: str = FORM_CONTENT_TYPE,
) -> dict[str, str]:
    """Headers Slack sends with ``body``: signed with ``secret`` at ``timestamp`` (default: now).

    Pass an old timestamp or another secret to forge a request the app must reject. Bytes are signed as
    they are, even when they are not UTF-8 (slack_sdk's own signer would decode them first).
    """
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    if isinstance(body, bytes):
        mac = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256)
        signature: str | None = "v0=" + mac.hexdigest()
    else:
        signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
    assert signature is not None  # only None when the timestamp is None, which it never is here
    return {
        "x-slack-request-timestamp": stamp,
        "x-slack-signature": signature,
        "content-type": content_type,
    }


def _user(app: AppContext, user: Person) -> JsonDict:
    return {"id": user.id, "username": user.name, "name": user.name, "team_id": app.team_id}


def _team(app: AppContext) -> JsonDict:
    return {"id": app.team_id, "domain": app.team_domain}


def view_submission_payload(
    app: AppContext, *, user: Person, view: JsonDict, trigger_id: str, response_urls: list[JsonDict]
) -> JsonDict:
    """A ``view_submission``: ``view`` as Slack serialises it, its ``state.values`` filled in.
    ``response_urls`` is empty unless the view asked for some (``response_url_enabled`` inputs)."""
    return {
        "type": "view_submission",
        "team": _team(app),
        "user": _user(app, user),
        "api_app_id": app.api_app_id,
        "token": app.verification_token,
        "trigger_id": trigger_id,
        "view": view,
        "response_urls": response_urls,
        "is_enterprise_install": False,
        "enterprise": None,
    }


def block_suggestion_payload(
    app: AppContext, *, user: Person, view: JsonDict, block_id: str, action_id: str, value: str
) -> JsonDict:
    """A ``block_suggestion``: the options request of an ``external_select`` in a view, for ``value`` (what
    the person has typed so far)."""
    return {
        "type": "block_suggestion",
        "user": _user(app, user),
        "container": {"type": "view", "view_id": view["id"]},
        "api_app_id": app.api_app_id,
        "token": app.verification_token,
        "action_id": action_id,
        "block_id": block_id,
        "value": value,
        "team": _team(app),
        "enterprise": None,
        "is_enterprise_install": False,
        "view": view,
    }


def shortcut_payload(
    app: AppContext, *, user: Person, callback_id: str, trigger_id: str, action_ts: str
) -> JsonDict:
    """A global ``shortcut`` (from the shortcuts menu or the search bar): no channel, no response_url."""
    return {
        "type": "shortcut",
        "token": app.verification_token,
        "action_ts": action_ts,
        "team": _team(app),
        "user": {"id": user.id, "username": user.name, "team_id": app.team_id},
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": callback_id,
        "trigger_id": trigger_id,
    }


def view_block_actions_payload(
    app: AppContext,
    *,
    user: Person,
    view: JsonDict,
    action: JsonDict,
    trigger_id: str,
) -> JsonDict:
    """A ``block_actions`` from an element of a view (a modal or the Home tab): ``container`` names the
    view, and there is no channel and no response_url."""
    return {
        "type": "block_actions",
        "user": _user(app, user),
        "api_app_id": app.api_app_id,
        "token": app.verification_token,
        "container": {"type": "view", "view_id": view["id"]},
        "trigger_id": trigger_id,
        "team": _team(app),
        "enterprise": None,
        "is_enterprise_install": False,
        "view": view,
        "actions": [action],
    }
