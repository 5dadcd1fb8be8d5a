"""aiohttp client for the four DCS v2 operations the bot uses; implements :class:`bot.core.ports.DcsApi`,
and shows the call a backup would make without making it (the dry run)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
import tenacity
import yarl
from pydantic import BaseModel, ValidationError

from bot.core.errors import DcsApiError, DcsTransportError
from bot.core.rules.instances import BackupFormat, BackupPage, Instance, InstancePage
from bot.core.rules.messages import PlannedCall
from bot.dcs import wire
from bot.dcs.auth import DcsAuth
from bot.dcs.errors import NoAnswerError, api_error, describe_client_error, is_transient
from bot.dcs.signer import QueryValue, canonical_query

Observer = Callable[[str, int, float], None]
"""Called after every attempt of an operation with (operation name, HTTP status or 0 if none arrived,
seconds taken).

It runs in a ``finally`` block, so it must not raise."""

RetryObserver = Callable[[str, str], None]
"""Called before every retry with (operation name, :func:`retry_reason`); it must not raise."""

RETRY_REASONS = ("rate_limited", "server_error", "no_answer")

JSON_CONTENT_TYPE = "application/json"
DCS_TIME_FORMAT = "%Y%m%d%H%M%S"
_UNUSABLE_SEGMENTS = frozenset({"", ".", ".."})
# A retry is not begun with less time than this left before the deadline: it could only time out.
_MIN_ATTEMPT = 0.05

log = logging.getLogger(__name__)

_Model = TypeVar("_Model", bound=BaseModel)


class DcsClient:
    """Talks to one DCS endpoint for one project over a shared :class:`aiohttp.ClientSession`.

    Every failure raises :class:`bot.core.errors.DcsError`. Each operation takes at most ``timeout``
    seconds, retries included. Reads (GET) are tried again on 429, 5xx and lost connections, as
    ``backoff`` says; CreateBackup (POST) is sent once. Any request is repeated once after a 401 when
    ``auth`` can refresh its credential.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        endpoint: str,
        project_id: str,
        auth: DcsAuth,
        timeout: float,
        observer: Observer | None = None,
        on_retry: RetryObserver | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        base = yarl.URL(endpoint.rstrip("/"), encoded=True)
        if not base.absolute or base.scheme not in ("http", "https"):
            raise ValueError(f"DCS endpoint {endpoint!r} must be an absolute http(s) URL")
        self._session = session
        self._base = str(base)
        self._project_path = f"/v2/{_path_segment(project_id)}"
        self._auth = auth
        self._timeout = timeout
        self._observer = observer
        self._on_retry = on_retry
        self._backoff = backoff if backoff is not None else Backoff()

    def __repr__(self) -> str:
        return f"DcsClient(endpoint={self._base!r}, project_path={self._project_path!r}, auth={self._auth!r})"

    async def show_instance(self, instance_id: str) -> Instance:
        reply = await self._call("show_instance", "GET", ["instances", instance_id])
        return _validate(wire.WireInstance, reply, "show_instance").to_core()

    async def list_instances(
        self, *, name: str | None = None, exact: bool = False, limit: int = 100, offset: int = 0
    ) -> InstancePage:
        query: list[tuple[str, QueryValue]] = [("limit", limit), ("offset", offset)]
        if name is not None:
            query += [("name", name), ("name_equal", exact)]
        reply = await self._call("list_instances", "GET", ["instances"], query=query)
        return _validate(wire.InstanceList, reply, "list_instances").to_core()

    def planned_backup(self, instance_id: str, backup_format: BackupFormat, remark: str) -> PlannedCall:
        segments = _backup_segments(instance_id)
        return PlannedCall("POST", self._path(segments), _backup_payload(backup_format, remark))

    async def create_backup(self, instance_id: str, *, backup_format: BackupFormat, remark: str) -> str:
        payload = _backup_payload(backup_format, remark)
        reply = await self._call("create_backup", "POST", _backup_segments(instance_id), payload=payload)
        return _validate(wire.CreatedBackup, reply, "create_backup").backup_id

    async def list_backups(
        self,
        instance_id: str,
        *,
        begin_time: datetime | None = None,
        end_time: datetime | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> BackupPage:
        query: list[tuple[str, QueryValue]] = [("limit", limit), ("offset", offset)]
        if begin_time is not None:
            query.append(("begin_time", dcs_time(begin_time)))
        if end_time is not None:
            query.append(("end_time", dcs_time(end_time)))
        reply = await self._call("list_backups", "GET", _backup_segments(instance_id), query=query)
        # 204 means "no records" and carries no body.
        if reply.status == HTTPStatus.NO_CONTENT or not reply.body.strip():
            return BackupPage(records=[], total=0)
        return _validate(wire.BackupList, reply, "list_backups").to_core()

    async def _call(
        self,
        operation: str,
        method: str,
        segments: Sequence[str],
        *,
        query: Sequence[tuple[str, QueryValue]] = (),
        payload: Mapping[str, Any] | None = None,
    ) -> _Reply:
        """One logical call, within ``timeout`` all told. A GET is tried again while it fails in a way
        that may pass (:func:`bot.dcs.errors.is_transient`); anything else is sent exactly once."""
        url = self._url(segments, query)
        body = json.dumps(payload, separators=(",", ":")).encode() if payload is not None else b""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        if method != "GET":
            return await self._attempt(operation, method, url, body, deadline)
        retrying = tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception(is_transient),
            wait=_RetryAfterOr(self._backoff.waits()),
            stop=tenacity.stop_after_attempt(self._backoff.attempts) | _Deadline(deadline, loop.time),
            before_sleep=lambda state: self._note_retry(operation, state),
            reraise=True,
        )
        reply: _Reply = await retrying(self._attempt, operation, method, url, body, deadline)
        return reply

    async def _attempt(
        self, operation: str, method: str, url: yarl.URL, body: bytes, deadline: float
    ) -> _Reply:
        """One exchange (two after a 401 that a fresh credential may cure), ended at ``deadline``."""
        started = time.perf_counter()
        status = 0
        try:
            async with asyncio.timeout_at(deadline):
                reply = await self._send_refreshing_once(method, url, body)
            status = reply.status
        except TimeoutError:
            raise NoAnswerError(f"DCS did not answer within {self._timeout:g} s") from None
        finally:
            if self._observer is not None:
                self._observer(operation, status, time.perf_counter() - started)
        if not 200 <= reply.status < 300:
            raise api_error(reply.status, reply.headers, reply.body, service="DCS")
        return reply

    def _note_retry(self, operation: str, state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        reason = retry_reason(error)
        log.info(
            "DCS %s failed (%s); trying again in %.1f s (attempt %d)",
            operation,
            error,
            state.upcoming_sleep,
            state.attempt_number + 1,
        )
        if self._on_retry is not None:
            self._on_retry(operation, reason)

    def _path(self, segments: Sequence[str]) -> str:
        return "/".join([self._project_path, *(_path_segment(segment) for segment in segments)])

    def _url(self, segments: Sequence[str], query: Sequence[tuple[str, QueryValue]]) -> yarl.URL:
        path = self._path(segments)
        wire_query = canonical_query(query)
        # encoded=True keeps yarl from re-quoting, so the wire query is byte-for-byte the signed one.
        return yarl.URL(f"{self._base}{path}?{wire_query}" if wire_query else self._base + path, encoded=True)

    async def _send_refreshing_once(self, method: str, url: yarl.URL, body: bytes) -> _Reply:
        reply = await self._send(method, url, body)
        if reply.status == HTTPStatus.UNAUTHORIZED and self._auth.refreshable:
            self._auth.invalidate()
            reply = await self._send(method, url, body)
        return reply

    async def _send(self, method: str, url: yarl.URL, body: bytes) -> _Reply:
        headers = {"Content-Type": JSON_CONTENT_TYPE}
        await self._auth.apply(method, url, headers, body)
        try:
            async with self._session.request(
                method,
                url,
                headers=headers,
                data=body or None,
                # A redirect would replay the credentials to wherever it points.
                allow_redirects=False,
            ) as response:
                return _Reply(response.status, response.headers.copy(), await response.read())
        except aiohttp.ClientError as exc:
            # Not chained: some aiohttp errors carry the request headers, credentials included.
            raise NoAnswerError(f"DCS is unreachable: {describe_client_error(exc)}") from None


@dataclass(frozen=True)
class Backoff:
    """How a read is tried again: the n-th wait is ``initial`` doubled n-1 times (at most ``maximum``)
    plus up to ``jitter`` seconds at random, or the server's ``Retry-After`` when that is longer; at most
    ``attempts`` tries, and never beyond the call's timeout."""

    initial: float = 0.5
    maximum: float = 8.0
    jitter: float = 0.5
    attempts: int = 6

    def waits(self) -> tenacity.wait.wait_base:
        exponential = tenacity.wait_exponential(multiplier=self.initial, max=self.maximum)
        return exponential + tenacity.wait_random(0, self.jitter)


class _RetryAfterOr(tenacity.wait.wait_base):
    """The backoff, or the ``Retry-After`` the failed answer asked for when that is longer."""

    def __init__(self, backoff: tenacity.wait.wait_base) -> None:
        self._backoff = backoff

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        wait = float(self._backoff(retry_state))
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, DcsApiError) and error.retry_after is not None:
            wait = max(wait, error.retry_after)
        return wait


class _Deadline(tenacity.stop.stop_base):
    """Stops when the next attempt could not even begin before ``deadline``."""

    def __init__(self, deadline: float, now: Callable[[], float]) -> None:
        self._deadline = deadline
        self._now = now

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return self._now() + retry_state.upcoming_sleep + _MIN_ATTEMPT >= self._deadline


def retry_reason(error: BaseException | None) -> str:
    """The metric label for a retry: ``rate_limited`` (429), ``server_error`` (5xx) or ``no_answer``."""
    if isinstance(error, DcsApiError):
        return "rate_limited" if error.status == HTTPStatus.TOO_MANY_REQUESTS else "server_error"
    return "no_answer"


@dataclass(frozen=True)
class _Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes


def _backup_segments(instance_id: str) -> list[str]:
    return ["instances", instance_id, "backups"]


def _backup_payload(backup_format: BackupFormat, remark: str) -> dict[str, str]:
    # The format is always sent: the documented default differs between clouds.
    return {"remark": remark, "backup_format": BackupFormat(backup_format).value}


def _validate(model: type[_Model], reply: _Reply, operation: str) -> _Model:
    try:
        return model.model_validate_json(reply.body)
    except ValidationError:
        raise DcsTransportError(
            f"DCS answered {operation} with HTTP {reply.status} but an unreadable body"
        ) from None


def _path_segment(value: str) -> str:
    # Dot segments would be resolved by the server and an empty one changes the route, so refuse them.
    if value in _UNUSABLE_SEGMENTS:
        raise ValueError(f"{value!r} cannot be used as an id in a DCS URL")
    return quote(value, safe="~")


def dcs_time(moment: datetime) -> str:
    """``yyyyMMddHHmmss`` in UTC, as the list APIs expect; a naive ``moment`` is taken to be UTC already."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime(DCS_TIME_FORMAT)
