"""Reading the error answers of DCS and IAM: the error body's code and message in any of its shapes,
``Retry-After``, the plain-language hint, and a secret-free description of a transport failure.

Shared by :mod:`bot.dcs.client` and :mod:`bot.dcs.auth`, so neither needs the other's internals.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus

import aiohttp

from bot.core.errors import DcsApiError, DcsTransportError, InstanceNotFoundError
from bot.dcs.explain import api_error_hint

_ERROR_FIELD_PAIRS = (("error_code", "error_msg"), ("errorCode", "errorMsg"), ("code", "message"))
# DCS's answers for an instance it does not know, or an ID that cannot be one.
_NOT_FOUND_CODES = frozenset({"DCS.3022", "DCS.4061"})


class NoAnswerError(DcsTransportError):
    """No answer arrived: the connection failed, was closed, or the time ran out. Unlike an answer that
    could not be read, this may pass, so a read is tried again."""


def is_transient(error: BaseException) -> bool:
    """Whether a failed read may succeed when tried again: 429, any 5xx, or no answer at all."""
    if isinstance(error, DcsApiError):
        return error.is_retryable
    return isinstance(error, NoAnswerError)


def api_error(status: int, headers: Mapping[str, str], body: bytes, *, service: str) -> DcsApiError:
    """The error for a non-2xx answer from ``service`` (DCS or IAM), read from its error body if any;
    :class:`InstanceNotFoundError` when DCS says the instance does not exist."""
    code, message = error_fields(body)
    not_found = service == "DCS" and (status == HTTPStatus.NOT_FOUND or code in _NOT_FOUND_CODES)
    error_class = InstanceNotFoundError if not_found else DcsApiError
    return error_class(
        status,
        code,
        message or _plain_status(status, service),
        request_id=headers.get("X-Request-Id") or None,
        retry_after=retry_after_seconds(headers.get("Retry-After")),
        hint=api_error_hint(code, status),
    )


def error_fields(body: bytes) -> tuple[str | None, str | None]:
    """``(code, message)`` from any known error body shape, including Keystone's ``{"error": {...}}``."""
    try:
        document = json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(document, dict):
        return None, None
    for candidate in (document, document.get("error")):
        if not isinstance(candidate, dict):
            continue
        for code_key, message_key in _ERROR_FIELD_PAIRS:
            code, message = _text(candidate.get(code_key)), _text(candidate.get(message_key))
            if code or message:
                return code, message
    return None, None


def _text(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value).strip() or None


def _plain_status(status: int, service: str) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase} from {service}"
    except ValueError:
        return f"HTTP {status} from {service}"


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from ``now``; it may be a number of seconds or an HTTP date."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return _seconds_until(value, now or datetime.now(UTC))
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _seconds_until(http_date: str, now: datetime) -> float | None:
    try:
        moment = parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


def describe_client_error(exc: aiohttp.ClientError) -> str:
    """A short, secret-free description of a transport failure."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or type(exc.os_error).__name__
        return f"cannot connect to {exc.host}:{exc.port} ({reason})"
    return type(exc).__name__
