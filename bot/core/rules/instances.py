"""What the core knows about DCS instances and their backup records.

Field names follow the DCS v2 API so the DCS client can validate responses straight into these models.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


class BackupFormat(StrEnum):
    AOF = "aof"
    RDB = "rdb"


class BackupStatus(StrEnum):
    WAITING = "waiting"
    BACKUPING = "backuping"
    SUCCEED = "succeed"
    FAILED = "failed"
    EXPIRED = "expired"
    DELETED = "deleted"


FINAL_BACKUP_STATUSES = frozenset(
    {BackupStatus.SUCCEED, BackupStatus.FAILED, BackupStatus.EXPIRED, BackupStatus.DELETED}
)

CACHE_MODE_LABELS = {
    "single": "single-node",
    "ha": "master/standby",
    "cluster": "Redis Cluster",
    "proxy": "Proxy Cluster",
    "ha_rw_split": "read/write splitting",
}

# Used only when ShowInstance omits cache_mode (ListInstances never has it).
_SINGLE_NODE_SPEC_PREFIXES = ("redis.single.", "dcs.single_node")


def _none_unless_str(value: Any) -> Any:
    # The API documents string fields whose examples show `{}`; anything not a string means "absent".
    return value if isinstance(value, str) or value is None else None


class Instance(BaseModel):
    """One DCS instance, from ShowInstance (all fields) or ListInstances (no ``cache_mode``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    instance_id: str
    name: str
    status: str = "UNKNOWN"
    cache_mode: str | None = None
    engine: str | None = None
    engine_version: str | None = None
    spec_code: str | None = None
    capacity: int | None = None

    _coerce = field_validator("cache_mode", "engine", "engine_version", "spec_code", mode="before")(
        _none_unless_str
    )

    @property
    def is_single_node(self) -> bool:
        if self.cache_mode is not None:
            return self.cache_mode == "single"
        return (self.spec_code or "").startswith(_SINGLE_NODE_SPEC_PREFIXES)

    @property
    def is_running(self) -> bool:
        return self.status == "RUNNING"

    @property
    def type_label(self) -> str:
        if self.cache_mode is None:
            return "unknown type"
        return CACHE_MODE_LABELS.get(self.cache_mode, self.cache_mode)


class BackupRecord(BaseModel):
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

    @field_validator("created_at", "updated_at", "execution_at", mode="before")
    @classmethod
    def _blank_time_is_none(cls, value: Any) -> Any:
        return value if value not in ("", {}) else None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_BACKUP_STATUSES


class InstancePage(BaseModel):
    model_config = ConfigDict(frozen=True)

    instances: list[Instance]
    total: int


class BackupPage(BaseModel):
    model_config = ConfigDict(frozen=True)

    records: list[BackupRecord]
    total: int
