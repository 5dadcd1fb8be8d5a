"""Slack's response_urls: short-lived webhooks bound to one user, one channel and, for clicks, one message."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from bot.standins.faults import Fault
from bot.standins.slack.timeline import Content, JsonDict, Message, Timeline

#: Slack documents both limits: a response_url works up to five times within thirty minutes.
MAX_USES = 5
LIFETIME_SECONDS = 30 * 60

# Slack's exact answers for a bad response_url are unconfirmed; these follow its incoming-webhook style
# (HTTP status plus a short plain-text error name).
UNKNOWN_URL = "invalid_token"
EXPIRED_URL = "expired_url"
USED_URL = "used_url"
INVALID_PAYLOAD = "invalid_payload"
NO_TEXT = "no_text"
MESSAGE_NOT_FOUND = "message_not_found"


class Origin(StrEnum):
    SLASH_COMMAND = "slash_command"
    BLOCK_ACTIONS = "block_actions"


@dataclass
class ResponseUrl:
    token: str
    url: str
    origin: Origin
    channel_id: str
    user_id: str
    created_at: float
    #: What replace_original and delete_original act on: the clicked message, for block_actions; the
    #: command's immediate reply (its ack), for a slash command that had one.
    message: Message | None = None
    uses: int = 0


@dataclass(frozen=True)
class ResponsePost:
    """One recorded POST to a response_url, with Slack's answer and the message it produced or changed."""

    token: str
    body: JsonDict
    raw: str
    status: int
    answer: str
    response_url: ResponseUrl | None
    message: Message | None
    #: The injected fault that shaped what the app got instead of ``status`` and ``answer``, if any.
    fault: Fault | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass(frozen=True)
class _Outcome:
    status: int
    answer: str
    message: Message | None = None


def _parse(raw: str) -> JsonDict | None:
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _content(body: JsonDict) -> Content | None:
    text = body.get("text")
    blocks = body.get("blocks")
    if not isinstance(blocks, list):
        blocks = []
    if not text and not blocks:
        return None
    return Content(text="" if text is None else str(text), blocks=[b for b in blocks if isinstance(b, dict)])


class ResponseUrls:
    """Issues response_urls and applies what apps post to them."""

    def __init__(self, timeline: Timeline, *, bot_user_id: str, clock: Callable[[], float]) -> None:
        self._timeline = timeline
        self._bot_user_id = bot_user_id
        self._clock = clock
        self._urls: dict[str, ResponseUrl] = {}

    def issue(
        self, base_url: str, *, origin: Origin, channel_id: str, user_id: str, message: Message | None = None
    ) -> ResponseUrl:
        token = secrets.token_urlsafe(18)
        entry = ResponseUrl(
            token=token,
            url=f"{base_url}/response/{token}",
            origin=origin,
            channel_id=channel_id,
            user_id=user_id,
            created_at=self._clock(),
            message=message,
        )
        self._urls[token] = entry
        return entry

    def get(self, token: str) -> ResponseUrl | None:
        return self._urls.get(token)

    def post(self, token: str, raw: str, *, apply: bool = True) -> ResponsePost:
        """Applies what an app posted to the response_url ``token``; with ``apply=False`` (a fault kept
        the post from taking effect) only records it, with status 0."""
        entry = self._urls.get(token)
        body = _parse(raw)
        outcome = self._apply(entry, body) if apply else _Outcome(0, "")
        return ResponsePost(
            token=token,
            body=body or {},
            raw=raw,
            status=outcome.status,
            answer=outcome.answer,
            response_url=entry,
            message=outcome.message,
        )

    def _apply(self, entry: ResponseUrl | None, body: JsonDict | None) -> _Outcome:
        if entry is None:
            return _Outcome(404, UNKNOWN_URL)
        if self._clock() - entry.created_at > LIFETIME_SECONDS:
            return _Outcome(404, EXPIRED_URL)
        if entry.uses >= MAX_USES:
            return _Outcome(404, USED_URL)
        if body is None:
            return _Outcome(400, INVALID_PAYLOAD)
        outcome = self._act(entry, body)
        if outcome.status == 200:
            entry.uses += 1
        return outcome

    def _act(self, entry: ResponseUrl, body: JsonDict) -> _Outcome:
        original = entry.message
        if body.get("delete_original"):
            if original is None:
                # A slash command's response_url has no original message; treated as a no-op (unconfirmed).
                return _Outcome(200, "ok")
            if original.deleted:
                return _Outcome(404, MESSAGE_NOT_FOUND)
            self._timeline.delete(original)
            return _Outcome(200, "ok", original)
        content = _content(body)
        if content is None:
            return _Outcome(400, NO_TEXT)
        # A slash command's response_url replaces only the command's immediate reply (the ack); a message
        # posted through the URL is never its "original", so replacing that posts anew (bolt-python#1268,
        # bolt-js#2287). Slack does not document the ack case; reports differ, so this is unconfirmed.
        if body.get("replace_original") and original is not None:
            if original.deleted:
                return _Outcome(404, MESSAGE_NOT_FOUND)
            # The replacement keeps the original's audience: an ephemeral card stays ephemeral.
            self._timeline.replace(original, content)
            return _Outcome(200, "ok", original)
        thread_ts = body.get("thread_ts")
        message = self._timeline.post(
            channel=entry.channel_id,
            author=self._bot_user_id,
            content=content,
            thread_ts=str(thread_ts) if thread_ts else None,
            visible_to=None if body.get("response_type") == "in_channel" else entry.user_id,
            source="response_url",
        )
        return _Outcome(200, "ok", message)
