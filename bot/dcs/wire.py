"""The DCS v2 API's JSON, as pydantic models that absorb its quirks, and their conversion into the
core's values (:mod:`bot.core.rules.instances`).

Quirks handled here and nowhere else: string fields whose documented examples are ``{}`` (anything not a
string means "absent"), blank or ``{}`` times, times without a zone (UTC, as the API documents its times),
times that are no time (absent, logged once), ``null`` lists, and totals the API may leave out.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.core.rules.instances import BackupPage, BackupRecord, BackupStatus, Instance, InstancePage
from bot.dcs.explain import record_error_meaning


def _none_unless_str(value: Any) -> Any:
    # The API documents string fields whose examples show `{}`; anything not a string means "absent".
    return value if isinstance(value, str) or value is None else None


def _null_as_empty_list(value: Any) -> Any:
    return [] if value is None else value


log = logging.getLogger(__name__)

_RECORD_TIMES = ("created_at", "updated_at", "execution_at")
# The compact form the list API takes in its queries (yyyyMMddHHmmss), should a record ever use it.
_COMPACT_TIME = re.compile(r"[0-9]{14}")
_SHOWN_VALUE = 64


class _ReportedOnce:
    """Remembers the last ``size`` things reported, so each is logged once rather than on every poll."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._seen: OrderedDict[tuple[str, ...], None] = OrderedDict()

    def first_time(self, key: tuple[str, ...]) -> bool:
        if key in self._seen:
            self._seen.move_to_end(key)
            return False
        self._seen[key] = None
        if len(self._seen) > self._size:
            self._seen.popitem(last=False)
        return True


_unreadable_times = _ReportedOnce()


def record_time(value: Any) -> datetime | None:
    """A record's time as an aware datetime: one without a zone is UTC; blank, ``{}``, or anything that is
    no time is None."""
    if isinstance(value, datetime):
        moment = value
    elif not isinstance(value, str) or not value.strip():
        return None
    else:
        text = value.strip()
        try:
            if _COMPACT_TIME.fullmatch(text):
                moment = datetime.strptime(text, "%Y%m%d%H%M%S")
            else:
                moment = datetime.fromisoformat(text)
        except ValueError:
            return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _is_blank(value: Any) -> bool:
    return value is None or value == {} or (isinstance(value, str) and not value.strip())


class WireInstance(BaseModel):
    """One instance from ShowInstance (all fields) or ListInstances (no ``cache_mode``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    instance_id: str
    name: str
    status: str = "UNKNOWN"
    cache_mode: str | None = None
    engine: str | None = None
    engine_version: str | None = None
    spec_code: str | None = None
    capacity: int | None = None
    tags: tuple[tuple[str, str], ...] = ()

    _coerce = field_validator("cache_mode", "engine", "engine_version", "spec_code", mode="before")(
        _none_unless_str
    )

    @field_validator("tags", mode="before")
    @classmethod
    def _tag_pairs(cls, value: Any) -> Any:
        """``tags: [{"key": "env", "value": "prod"}]``; ``null`` or anything else is no tags, an entry
        without a string key is skipped, a value that is not a string is the empty value."""
        if not isinstance(value, list):
            return ()
        pairs = []
        for tag in value:
            if isinstance(tag, dict) and isinstance(tag.get("key"), str) and tag["key"]:
                tag_value = tag.get("value")
                pairs.append((tag["key"], tag_value if isinstance(tag_value, str) else ""))
        return tuple(pairs)

    def to_core(self) -> Instance:
        return Instance(
            instance_id=self.instance_id,
            name=self.name,
            status=self.status,
            cache_mode=self.cache_mode,
            engine=self.engine,
            engine_version=self.engine_version,
            spec_code=self.spec_code,
            capacity=self.capacity,
            tags=self.tags,
        )


class WireBackupRecord(BaseModel):
    """One entry of ListBackupRecords."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    backup_id: str
    instance_id: str | None = None
    backup_name: str | None = None
    remark: str | None = None
    backup_type: str | None = None
    backup_format: str | None = None
    status: str
    progress: str | None = None
    size: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    execution_at: datetime | None = None
    error_code: str | None = None

    _coerce = field_validator(
        "instance_id",
        "backup_name",
        "remark",
        "backup_type",
        "backup_format",
        "progress",
        "error_code",
        mode="before",
    )(_none_unless_str)

    @model_validator(mode="before")
    @classmethod
    def _readable_times(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        times = {name: data[name] for name in _RECORD_TIMES if name in data}
        readable = {name: record_time(value) for name, value in times.items()}
        for name, value in times.items():
            if readable[name] is None and not _is_blank(value):
                _report_unreadable(str(data.get("backup_id")), name, value)
        return data | readable

    def to_core(self) -> BackupRecord:
        failed = self.status == BackupStatus.FAILED or self.error_code is not None
        return BackupRecord(
            backup_id=self.backup_id,
            status=self.status,
            instance_id=self.instance_id,
            backup_name=self.backup_name,
            remark=self.remark,
            backup_type=self.backup_type,
            backup_format=self.backup_format,
            progress=self.progress,
            size=self.size,
            created_at=self.created_at,
            updated_at=self.updated_at,
            execution_at=self.execution_at,
            error_code=self.error_code,
            error_meaning=record_error_meaning(self.error_code) if failed else None,
        )


def _report_unreadable(backup_id: str, name: str, value: Any) -> None:
    shown = repr(value)
    if len(shown) > _SHOWN_VALUE:
        shown = shown[:_SHOWN_VALUE] + "…"
    if _unreadable_times.first_time((backup_id, name, shown)):
        log.warning("DCS backup record %s: %s %s is no time; taken as absent", backup_id, name, shown)


class InstanceList(BaseModel):
    """The body of ListInstances."""

    model_config = ConfigDict(extra="ignore")

    instance_num: int | None = None
    instances: list[WireInstance] = Field(default_factory=list)

    _null_is_empty = field_validator("instances", mode="before")(_null_as_empty_list)

    def to_core(self) -> InstancePage:
        total = self.instance_num if self.instance_num is not None else len(self.instances)
        return InstancePage(instances=[i.to_core() for i in self.instances], total=total)


class BackupList(BaseModel):
    """The body of ListBackupRecords."""

    model_config = ConfigDict(extra="ignore")

    total_num: int | None = None
    backup_record_response: list[WireBackupRecord] = Field(default_factory=list)

    _null_is_empty = field_validator("backup_record_response", mode="before")(_null_as_empty_list)

    def to_core(self) -> BackupPage:
        records = [r.to_core() for r in self.backup_record_response]
        total = self.total_num if self.total_num is not None else len(records)
        return BackupPage(records=records, total=total)


class CreatedBackup(BaseModel):
    """The body of CreateBackup."""

    model_config = ConfigDict(extra="ignore")

    backup_id: str = Field(min_length=1)
