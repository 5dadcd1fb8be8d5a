"""Posting to a ``response_url`` on the bot's one aiohttp session, with the Slack retry handlers.

slack_sdk's ``AsyncWebhookClient`` is bound to one URL, so the notifier built one per post — and each one
works out its User-Agent and reads the proxy settings again. This poster is built once. Its retry loop is
slack_sdk's own (``AsyncWebhookClient._perform_http_request``): after an answer of HTTP 400 or more, or a
failed connection, the first handler that agrees to retry (e.g. 429 with ``Retry-After``, one retry on a
lost connection or a 5xx) prepares the next attempt; otherwise the answer is returned, or the error raised,
for :mod:`bot.slack.errors` to read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.proxy_env_variable_loader import load_http_proxy_from_env
from slack_sdk.web.internal_utils import get_user_agent

log = logging.getLogger(__name__)

# slack_sdk's own guard against a handler that would retry forever.
_MAX_ATTEMPTS = 100


@dataclass(frozen=True)
class PostAnswer:
    status: int
    body: str


class ResponseUrlPoster:
    def __init__(self, session: aiohttp.ClientSession, retry_handlers: list[AsyncRetryHandler]) -> None:
        self._session = session
        self._retry_handlers = list(retry_handlers)
        self._headers = {"User-Agent": get_user_agent(), "Content-Type": "application/json;charset=utf-8"}
        self._proxy = load_http_proxy_from_env(log)

    async def post(self, url: str, body: Mapping[str, Any]) -> PostAnswer:
        """Posts ``body`` (None values left out) as JSON; raises what the last attempt raised."""
        payload = {key: value for key, value in body.items() if value is not None}
        # Bytes, so aiohttp sends them as they are; the retry handlers' view of the request is built only
        # when one of them is asked (most posts are answered at once).
        data = json.dumps(payload).encode()
        request = _LazyRequest(url, self._headers, payload)
        state = RetryState()
        for _ in range(_MAX_ATTEMPTS):
            state.next_attempt_requested = False
            try:
                async with self._session.post(
                    url, data=data, headers=self._headers, proxy=self._proxy
                ) as answer:
                    status, headers, text = answer.status, answer.headers, await answer.text()
            except Exception as error:
                if await self._retry(state, request.get(), None, error):
                    continue
                raise
            if status < 400:
                return PostAnswer(status, text)
            response = HttpResponse(
                status_code=status,
                headers=headers,  # type: ignore[arg-type]
                data=text.encode("utf-8"),
            )
            if not await self._retry(state, request.get(), response, None):
                return PostAnswer(status, text)
        raise RuntimeError("response_url: the retry handlers never stopped retrying")

    async def _retry(
        self, state: RetryState, request: HttpRequest, response: HttpResponse | None, error: Exception | None
    ) -> bool:
        for handler in self._retry_handlers:
            if await handler.can_retry_async(state=state, request=request, response=response, error=error):
                await handler.prepare_for_next_attempt_async(
                    state=state, request=request, response=response, error=error
                )
                return True
        return False


class _LazyRequest:
    def __init__(self, url: str, headers: Mapping[str, str], payload: dict[str, Any]) -> None:
        self._url, self._headers, self._payload = url, headers, payload
        self._request: HttpRequest | None = None

    def get(self) -> HttpRequest:
        if self._request is None:
            self._request = HttpRequest(
                method="POST", url=self._url, headers=dict(self._headers), body_params=self._payload
            )
        return self._request
