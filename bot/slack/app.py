"""The Bolt app, its Web API client, and the HTTP entry point for ``POST /slack/events``."""

from __future__ import annotations

import logging
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
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.listeners import register_listeners
from bot.slack.listeners.runner import Runner
from bot.slack.middleware.shutdown_gate import ShutdownGate

log = logging.getLogger(__name__)


def retry_handlers() -> list[AsyncRetryHandler]:
    return [
        AsyncConnectionErrorRetryHandler(max_retry_count=1),
        AsyncRateLimitErrorRetryHandler(max_retry_count=2),
        AsyncServerErrorRetryHandler(max_retry_count=1),
    ]


def bolt_app(client: AsyncWebClient, signing_secret: str | None, runner: Runner) -> AsyncApp:
    logger = logging.getLogger("slack_bolt.app")
    # Bolt warns at construction that SLACK_BOT_TOKEN from the environment goes unused because a client is
    # given; the client carries that very token, so the warning would only alarm operators.
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        app = AsyncApp(
            client=client,
            # Socket Mode has no signatures to check; Bolt still insists on a non-empty secret in HTTP mode.
            signing_secret=signing_secret or "unused-in-socket-mode",
            request_verification_enabled=signing_secret is not None,
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
    register_listeners(app, runner)
    return app


async def to_bolt_request(request: web.Request) -> AsyncBoltRequest:
    raw = await request.text()
    bolt_request = AsyncBoltRequest(body=raw, query=request.query_string, headers=dict(request.headers))
    if not bolt_request.body and raw and not raw.startswith("{"):
        # Bolt takes any form body containing the substring "payload" for an interactivity payload and
        # parses it to {} when there is no payload field, so a command mentioning "payload" would reach
        # no listener. Parse such bodies as the plain form they are; the raw body still gets verified.
        form = dict(parse_qsl(raw, keep_blank_values=True))
        if "payload" not in form:
            bolt_request.body = form
            bolt_request.context = build_async_context(AsyncBoltContext({}), form)
    return bolt_request


async def handle_events(app: AsyncApp, request: web.Request) -> web.Response:
    bolt_response = await app.async_dispatch(await to_bolt_request(request))
    return await to_aiohttp_response(bolt_response)
