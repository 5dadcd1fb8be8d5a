"""The Bolt app, its Web API client, and the HTTP entry point for ``POST /slack/events``.

A request to ``/slack/events`` is verified on its raw bytes before anything parses them: unsigned, badly
signed or too old is 401; signed but unreadable (not UTF-8, a ``payload`` that is no JSON object, a
form that is no form, JSON that is no object) is 400. Neither reaches Bolt, and neither logs a traceback.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Mapping
from urllib.parse import parse_qsl

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import SystemClock
from bot.core.ports import Clock, EventDeliveries
from bot.slack.authorization import Authorize
from bot.slack.listeners import register_listeners
from bot.slack.listeners.runner import Runner
from bot.slack.middleware.event_deduplication import EventDeduplication
from bot.slack.middleware.shutdown_gate import ShutdownGate

log = logging.getLogger(__name__)


def retry_handlers() -> list[AsyncRetryHandler]:
    return [
        AsyncConnectionErrorRetryHandler(max_retry_count=1),
        AsyncRateLimitErrorRetryHandler(max_retry_count=2),
        AsyncServerErrorRetryHandler(max_retry_count=1),
    ]


def bolt_app(
    client: AsyncWebClient,
    signing_secret: str | None,
    runner: Runner,
    *,
    authorize: Authorize,
    deliveries: EventDeliveries | None = None,
    clock: Clock | None = None,
    on_redelivery: Callable[[], None] = lambda: None,
) -> AsyncApp:
    """``authorize`` (see bot.slack.authorization) stands in for Bolt's own ``auth.test`` per app.
    With ``deliveries``, an Events API event Slack delivers again is acknowledged without reaching a
    listener (``on_redelivery`` counts it); without, every delivery is handled."""
    logger = logging.getLogger("slack_bolt.app")
    # Bolt warns at construction that the token (the client's, SLACK_BOT_TOKEN) goes unused because a
    # client and ``authorize`` are given; ``authorize`` hands Bolt that very token, so the warning would only
    # alarm operators.
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        app = AsyncApp(
            client=client,
            # Socket Mode has no signatures to check; Bolt still insists on a non-empty secret in HTTP mode.
            signing_secret=signing_secret or "unused-in-socket-mode",
            request_verification_enabled=signing_secret is not None,
            authorize=authorize,
            # The listener runs inline and its ack is the answer at once (HTTP response or Socket Mode
            # envelope ack). Without it Bolt runs the listener as a task and polls for the ack every
            # 10 ms. This is safe only because every listener acks first and hands the rest to the
            # runner (bot/slack/listeners/runner.py): nothing slow happens before the ack.
            process_before_response=True,
            logger=logger,
        )
    finally:
        logger.setLevel(level)
    app.use(ShutdownGate(lambda: runner.accepting))
    if deliveries is not None:
        app.use(EventDeduplication(deliveries, (clock or SystemClock()).now, on_redelivery))
    register_listeners(app, runner)
    return app


class UnreadableBodyError(ValueError):
    """A signed request whose body Bolt could not make sense of; ``str()`` says why, without the body."""


class RawBodyVerifier(SignatureVerifier):
    """slack_sdk's verifier over the bytes as they came: its own signature first decodes them as UTF-8,
    which fails on bytes that are not, before it could tell whether they were signed."""

    def generate_signature(self, *, timestamp: str, body: str | bytes) -> str | None:
        if timestamp is None:
            return None
        data = body if isinstance(body, bytes) else body.encode()
        signed = b"v0:" + timestamp.encode() + b":" + data
        return "v0=" + hmac.new(self.signing_secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_problem(verifier: SignatureVerifier, raw: bytes, headers: Mapping[str, str]) -> str | None:
    """Why ``raw`` is not a request Slack signed with the app's secret just now, or None if it is."""
    timestamp = headers.get("x-slack-request-timestamp")
    signature = headers.get("x-slack-signature")
    if not timestamp or not signature:
        return "no signature"
    try:
        valid = verifier.is_valid(body=raw, timestamp=timestamp, signature=signature)
    except (ValueError, OverflowError):
        return "a timestamp that is no number"
    return None if valid else "a signature that does not match, or a timestamp over 5 minutes off"


def to_bolt_request(raw: bytes, request: web.Request) -> AsyncBoltRequest:
    """The Bolt request for a verified body; :class:`UnreadableBodyError` if there is none to be made."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UnreadableBodyError("the body is not UTF-8") from None
    form = _check_shape(text, request.content_type)
    try:
        bolt_request = AsyncBoltRequest(body=text, query=request.query_string, headers=dict(request.headers))
    except Exception as error:  # Bolt builds its context from the body, whatever shape that has.
        raise UnreadableBodyError(f"Bolt cannot read the body ({type(error).__name__})") from None
    if form is not None and "payload" in text and "payload" not in form:
        # Bolt takes any form body containing the substring "payload" for an interactivity payload and
        # parses it to {} when there is no payload field, so a command mentioning "payload" would reach
        # no listener. Parse such bodies as the plain form they are; the raw body still gets verified.
        bolt_request.body = form
        bolt_request.context = build_async_context(AsyncBoltContext({}), form)
    return bolt_request


def _check_shape(text: str, content_type: str) -> dict[str, str] | None:
    """Checks the body has the shape Bolt will take it for (as Bolt decides: JSON when so declared or
    when it starts with ``{``, else a form); returns the form when it is one mentioning "payload"."""
    if not text:
        return None
    if content_type == "application/json" or text.startswith("{"):
        _json_object(text, "the JSON body")
        return None
    if any("=" not in field for field in text.split("&") if field):
        raise UnreadableBodyError("the body is not a form")
    if "payload" not in text:
        return None  # a plain form (a command): Bolt parses it, once
    form = dict(parse_qsl(text, keep_blank_values=True))
    if "payload" in form:
        _json_object(form["payload"], "the payload field")
    return form


def _json_object(text: str, what: str) -> None:
    try:
        document = json.loads(text)
    except ValueError:
        raise UnreadableBodyError(f"{what} is not JSON") from None
    if not isinstance(document, dict):
        raise UnreadableBodyError(f"{what} is not a JSON object")


async def handle_events(app: AsyncApp, request: web.Request, *, signing_secret: str) -> web.Response:
    raw = await request.read()
    problem = signature_problem(RawBodyVerifier(signing_secret), raw, request.headers)
    if problem is not None:
        log.info("refused a request to /slack/events with %s (HTTP 401)", problem)
        return web.json_response({"error": "invalid request"}, status=401)
    try:
        bolt_request = to_bolt_request(raw, request)
    except UnreadableBodyError as error:
        log.warning("refused a signed request to /slack/events: %s (HTTP 400)", error)
        return web.json_response({"error": "unreadable request"}, status=400)
    bolt_response = await app.async_dispatch(bolt_request)
    return await to_aiohttp_response(bolt_response)
