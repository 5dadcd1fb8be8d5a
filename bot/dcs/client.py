"""aiohttp client for the four DCS v2 operations the bot uses; implements :class:`bot.core.ports.DcsApi`,
and shows the call a backup would make without making it (the dry run)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
import yarl
from pydantic import BaseModel, ValidationError

from bot.core.errors import DcsTransportError
from bot.core.rules.instances import BackupFormat, BackupPage, Instance, InstancePage
from bot.core.rules.messages import PlannedCall
from bot.dcs import wire
from bot.dcs.auth import DcsAuth
from bot.dcs.errors import api_error, describe_client_error
from bot.dcs.signer import QueryValue, canonical_query

Observer = Callable[[str, int, float], None]
"""Called after every operation with (operation name, HTTP status or 0 if none arrived, seconds taken).

It runs in a ``finally`` block, so it must not raise."""

JSON_CONTENT_TYPE = "application/json"
DCS_TIME_FORMAT = "%Y%m%d%H%M%S"
_UNUSABLE_SEGMENTS = frozenset({"", ".", ".."})

_Model = TypeVar("_Model", bound=BaseModel)


class DcsClient:
    """Talks to one DCS endpoint for one project over a shared :class:`aiohttp.ClientSession`.

    Every failure raises :class:`bot.core.errors.DcsError`. The only retry is one after a 401 when ``auth``
    can refresh its credential; anything else is for the caller to decide.
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
    ) -> None:
        base = yarl.URL(endpoint.rstrip("/"), encoded=True)
        if not base.absolute or base.scheme not in ("http", "https"):
            raise ValueError(f"DCS endpoint {endpoint!r} must be an absolute http(s) URL")
        self._session = session
        self._base = str(base)
        self._project_path = f"/v2/{_path_segment(project_id)}"
        self._auth = auth
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._observer = observer

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
        url = self._url(segments, query)
        body = json.dumps(payload, separators=(",", ":")).encode() if payload is not None else b""
        started = time.perf_counter()
        status = 0
        try:
            reply = await self._send_refreshing_once(method, url, body)
            status = reply.status
        finally:
            if self._observer is not None:
                self._observer(operation, status, time.perf_counter() - started)
        if not 200 <= reply.status < 300:
            raise api_error(reply.status, reply.headers, reply.body, service="DCS")
        return reply

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
                timeout=self._timeout,
                # A redirect would replay the credentials to wherever it points.
                allow_redirects=False,
            ) as response:
                return _Reply(response.status, response.headers.copy(), await response.read())
        except TimeoutError:
            raise DcsTransportError(f"DCS did not answer within {self._timeout.total:g} s") from None
        except aiohttp.ClientError as exc:
            # Not chained: some aiohttp errors carry the request headers, credentials included.
            raise DcsTransportError(f"DCS is unreachable: {describe_client_error(exc)}") from None


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
