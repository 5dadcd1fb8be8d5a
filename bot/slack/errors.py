"""One way to read what went wrong with a Slack call, whatever came back.

slack_sdk reports a failed call in several shapes. Slack's own refusal is a :class:`SlackApiError` whose
``response`` is an ``AsyncSlackResponse`` holding the JSON body (``{"ok": false, "error": "…"}``). But a
body that is not JSON reaches the bot too — a gateway's HTML error page, an empty or cut-off body — and
then ``response`` holds ``{}``, ``None`` or a ``str``, or is the raw ``aiohttp.ClientResponse`` (a body
that claims to be JSON and is not), and reading it as a dict raises. A connection that fails or closes
raises an ``aiohttp.ClientError``; an answer slower than the bot waits a ``TimeoutError``.

:func:`slack_error` turns any of these into a :class:`SlackFailure`; :func:`call_slack` makes a call with
a time limit and raises only :class:`SlackCallError`, so an adapter needs one ``except`` for every answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_slack_response import AsyncSlackResponse

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The reasons of failures that carry no Slack error name of their own.
TIMEOUT = "timeout"
UNREACHABLE = "unreachable"
UNREADABLE = "unreadable_answer"

# Slack error names that say "not now" rather than "no" (api.slack.com/web, "Errors" of each method).
_PASSING_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


#: Slack's answers that say a token itself is no good (auth.test, apps.connections.open).
TOKEN_REFUSALS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "not_allowed_token_type",
        "token_revoked",
        "token_expired",
        "account_inactive",
    }
)


@dataclass(frozen=True)
class SlackFailure:
    """What went wrong with one Slack call.

    ``reason`` is Slack's error name (``not_in_channel``, ``plan_upgrade_required`` …) when Slack gave
    one, else :data:`TIMEOUT`, :data:`UNREACHABLE` or :data:`UNREADABLE`. ``passing`` tells that asking
    again later may work (a timeout, a lost connection, a 5xx or 429, a body that is not Slack's JSON);
    otherwise Slack said no, and will again. ``retry_after`` is Slack's ``Retry-After`` in seconds.
    ``status`` is the HTTP status, when there was an answer.
    """

    reason: str
    passing: bool
    retry_after: float | None = None
    status: int | None = None

    @property
    def refuses_token(self) -> bool:
        """Slack said the token itself is no good (not a passing trouble)."""
        return self.reason in TOKEN_REFUSALS and not self.passing

    @property
    def summary(self) -> str:
        """A few words for people: Slack's error name, or what happened instead of an answer."""
        match self.reason:
            case "timeout":
                return "no answer in time"
            case "unreachable":
                return "no connection"
            case "unreadable_answer":
                return "an unreadable answer" + ("" if self.status is None else f", HTTP {self.status}")
        return self.reason

    def __str__(self) -> str:
        parts = [] if self.status is None else [f"HTTP {self.status}"]
        if self.retry_after is not None:
            parts.append(f"retry after {self.retry_after:g} s")
        return self.reason + (f" ({', '.join(parts)})" if parts else "")


class SlackCallError(Exception):
    """A Slack call that did not succeed, read by :func:`slack_error`."""

    def __init__(self, method: str, failure: SlackFailure) -> None:
        super().__init__(f"{method}: {failure}")
        self.method = method
        self.failure = failure


async def call_slack(method: str, call: Awaitable[T], *, timeout: float) -> T:
    """Awaits ``call`` (a slack_sdk call of ``method``) for at most ``timeout`` seconds in all, slack_sdk's
    own retries included; any failure raises :class:`SlackCallError`.

    The limit is the adapter's to keep: slack_sdk applies its client ``timeout`` only to sessions it
    opens itself, and the bot shares one session.
    """
    try:
        async with asyncio.timeout(timeout):
            return await call
    except Exception as error:  # every answer, however odd, becomes a failure; cancellation passes
        failure = slack_error(error)
        if failure.reason == UNREADABLE:
            log.debug("%s: Slack's answer could not be read (%s)", method, _describe(error))
        raise SlackCallError(method, failure) from None


def slack_error(error: BaseException) -> SlackFailure:
    """Reads ``error``, raised by a slack_sdk call, whatever shape it has."""
    if isinstance(error, SlackCallError):
        return error.failure
    if isinstance(error, TimeoutError):
        return SlackFailure(TIMEOUT, passing=True)
    if isinstance(error, aiohttp.ClientResponseError):
        return SlackFailure(UNREADABLE, passing=True, status=error.status)
    if isinstance(error, aiohttp.ClientError | OSError):
        return SlackFailure(UNREACHABLE, passing=True)
    if isinstance(error, SlackApiError):
        return _from_response(error.response)
    # slack_sdk itself fails on some bodies (a text/plain one, bytes it cannot decode).
    return SlackFailure(UNREADABLE, passing=True)


def _from_response(response: object) -> SlackFailure:
    status = _status_of(response)
    headers = _headers_of(response)
    retry_after = _retry_after(headers)
    data = response.data if isinstance(response, AsyncSlackResponse) else None
    name = data.get("error") if isinstance(data, dict) else None
    if not isinstance(name, str) or not name:
        return SlackFailure(UNREADABLE, passing=True, retry_after=retry_after, status=status)
    passing = name in _PASSING_ERRORS or (status is not None and (status == 429 or status >= 500))
    return SlackFailure(name, passing=passing, retry_after=retry_after, status=status)


def _status_of(response: object) -> int | None:
    if isinstance(response, AsyncSlackResponse):
        status: Any = response.status_code
    elif isinstance(response, aiohttp.ClientResponse):
        status = response.status
    else:
        return None
    return status if isinstance(status, int) else None


def _headers_of(response: object) -> Mapping[str, Any]:
    headers = getattr(response, "headers", None)
    return headers if isinstance(headers, Mapping) else {}


def _retry_after(headers: Mapping[str, Any]) -> float | None:
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) and value else value
            try:
                seconds = float(str(raw))
            except ValueError:
                return None
            return seconds if 0 <= seconds < float("inf") else None
    return None


def _describe(error: BaseException) -> str:
    status = _status_of(error.response) if isinstance(error, SlackApiError) else None
    return type(error).__name__ + ("" if status is None else f", HTTP {status}")
