"""What the core knows about DCS instances and their backup records, as plain values, and why DCS would
refuse to back an instance up (:func:`backup_blocker`).

The DCS adapter (:mod:`bot.dcs.wire`) reads the API's JSON, quirks and all, into these values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


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

# Used only when the instance's cache_mode is not known (ListInstances never has it).
_SINGLE_NODE_SPEC_PREFIXES = ("redis.single.", "dcs.single_node")


@dataclass(frozen=True, kw_only=True)
class Instance:
    """One DCS instance; ``cache_mode`` is None when DCS did not say (ListInstances never does).
    ``tags``: its own DCS tags as (key, value) pairs; ``cloud``: the configured cloud it was found in
    (the flow fills it in; None where only one cloud was ever asked)."""

    instance_id: str
    name: str
    status: str = "UNKNOWN"
    cache_mode: str | None = None
    engine: str | None = None
    engine_version: str | None = None
    spec_code: str | None = None
    capacity: int | None = None
    tags: tuple[tuple[str, str], ...] = ()
    cloud: str | None = None

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


@dataclass(frozen=True, kw_only=True)
class BackupRecord:
    """One backup record of an instance. ``error_meaning`` is the plain-language meaning of a failed
    backup's ``error_code``, filled in by the DCS adapter."""

    backup_id: str
    status: str
    instance_id: str | None = None
    backup_name: str | None = None
    remark: str | None = None
    backup_type: str | None = None
    backup_format: str | None = None
    progress: str | None = None
    size: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    execution_at: datetime | None = None
    error_code: str | None = None
    error_meaning: str | None = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_BACKUP_STATUSES


@dataclass(frozen=True)
class InstancePage:
    instances: list[Instance]
    total: int


@dataclass(frozen=True)
class BackupPage:
    records: list[BackupRecord]
    total: int


def backup_blocker(instance: Instance) -> str | None:
    """Why DCS would refuse to back this instance up, known before calling it."""
    if instance.is_single_node:
        return (
            "Single-node instances cannot be backed up; "
            "DCS backs up master/standby and cluster instances only."
        )
    if not instance.is_running:
        return f"The instance is {instance.status}; it can be backed up only while RUNNING."
    return None
