"""What the DCS stand-in keeps: instances, backup records and IAM tokens, and their JSON as DCS shows it.

Nothing here speaks HTTP; :mod:`bot.standins.dcs.server` puts these records into API responses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

JsonObject = dict[str, object]
CacheMode = Literal["single", "ha", "cluster", "proxy", "ha_rw_split"]
BackupOutcome = Literal["succeed", "failed"]
BackupType = Literal["manual", "auto"]

CACHE_MODES: frozenset[str] = frozenset({"single", "ha", "cluster", "proxy", "ha_rw_split"})
BACKUP_CAPABLE_MODES: frozenset[str] = CACHE_MODES - {"single"}
BACKUP_FORMATS: frozenset[str] = frozenset({"aof", "rdb"})


def iso_millis(moment: float) -> str:
    """DCS style: ``2019-05-10T08:31:16.166Z``."""
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_micros(moment: float) -> str:
    """IAM style: ``2015-11-09T01:42:57.527363Z``."""
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


_SPEC_CODE_FORMATS: Mapping[str, str] = {
    "single": "redis.single.xu1.large.{capacity}",
    "ha": "redis.ha.xu1.large.r2.{capacity}",
    "cluster": "redis.cluster.xu1.large.r2.{capacity}",
    "proxy": "redis.proxy.xu1.large.{capacity}",
    "ha_rw_split": "redis.ha.xu1.large.p2.{capacity}",
}


def default_spec_code(cache_mode: str, capacity: int) -> str:
    return _SPEC_CODE_FORMATS[cache_mode].format(capacity=capacity)


# The documented ListInstances item (InstanceListInfo) lacks these ShowInstance fields.
_SHOW_ONLY_FIELDS = frozenset(
    {"cache_mode", "instance_backup_policy", "sharding_count", "replica_count", "launched_at", "update_at"}
)


@dataclass(slots=True)
class EmulatedInstance:
    instance_id: str
    name: str
    cache_mode: str
    status: str
    engine_version: str
    capacity: int
    spec_code: str
    description: str
    created_at: float
    ordinal: int
    project_id: str
    tags: dict[str, str] = field(default_factory=dict)

    def show_json(self) -> JsonObject:
        created = iso_millis(self.created_at)
        scaled_out = self.cache_mode in {"cluster", "proxy"}
        return {
            "instance_id": self.instance_id,
            "name": self.name,
            "description": self.description,
            "engine": "Redis",
            "engine_version": self.engine_version,
            "status": self.status,
            "sub_status": "normal",
            "cache_mode": self.cache_mode,
            "spec_code": self.spec_code,
            "capacity": self.capacity,
            "capacity_minor": "",
            "max_memory": self.capacity * 1024,
            "used_memory": 64 + 16 * self.ordinal,
            "sharding_count": max(3, self.capacity // 8) if scaled_out else 1,
            "replica_count": 1 if self.cache_mode == "single" else 2,
            "product_type": "generic",
            "cpu_type": "x86_64",
            "ip": f"192.168.0.{10 + self.ordinal % 240}",
            "port": 6379,
            "domain_name": f"redis-{self.instance_id[:8]}.dcs.eu-de.emulator.invalid",
            "readonly_domain_name": "",
            "vpc_id": "0c5b5a71-6b2e-4c8a-9d7e-8f1a2b3c4d5e",
            "vpc_name": "vpc-emulator",
            "subnet_id": "1d6c6b82-7c3f-4d9b-8e0f-9a2b3c4d5e6f",
            "subnet_name": "subnet-emulator",
            "subnet_cidr": "192.168.0.0/24",
            "security_group_id": "2e7d7c93-8d40-4eac-9f10-ab3c4d5e6f70",
            "security_group_name": "sg-emulator",
            "az_codes": ["eu-de-01"],
            "available_zones": ["eu-de-01"],
            "maintain_begin": "02:00:00",
            "maintain_end": "06:00:00",
            "enterprise_project_id": "0",
            "charging_mode": 0,
            "tags": [{"key": key, "value": value} for key, value in self.tags.items()],
            "features": {
                "support_acl": True,
                "support_transparent_client_ip": False,
                "support_ssl": False,
                "support_audit_log": False,
            },
            "instance_backup_policy": self._backup_policy_json(),
            "created_at": created,
            "launched_at": created,
            "update_at": created,
        }

    def list_json(self) -> JsonObject:
        return {key: value for key, value in self.show_json().items() if key not in _SHOW_ONLY_FIELDS}

    def _backup_policy_json(self) -> JsonObject | None:
        if self.cache_mode not in {"ha", "cluster"}:
            return None
        created = iso_millis(self.created_at)
        return {
            "backup_policy_id": f"policy-{self.instance_id}",
            "created_at": created,
            "updated_at": created,
            "tenant_id": self.project_id,
            "policy": {
                "backup_type": "auto",
                "save_days": 7,
                "periodical_backup_plan": {
                    "backup_at": [1, 2, 3, 4, 5, 6, 7],
                    "period_type": "weekly",
                    "begin_at": "00:00-01:00",
                    "timezone_offset": None,
                },
            },
        }


WAITING = "waiting"
BACKUPING = "backuping"
RUNNING_BACKUP_STATUSES = frozenset({WAITING, BACKUPING})


@dataclass(slots=True)
class EmulatedBackup:
    """A backup record whose status follows from the time elapsed since ``created_at``, computed on read."""

    backup_id: str
    instance_id: str
    backup_type: BackupType
    backup_format: str
    remark: str
    created_at: float
    waiting_seconds: float
    backuping_seconds: float
    outcome: BackupOutcome
    error_code: str | None
    size: int
    sequence: int
    # Set by tests to make the cloud report a status the timeline cannot produce (expired, deleted, odd).
    status_override: str | None = None
    # Set by tests: fields the record shows exactly so, whatever its timeline says (a cloud's odd values).
    quirks: JsonObject = field(default_factory=dict)

    @property
    def started_at(self) -> float:
        return self.created_at + self.waiting_seconds

    @property
    def finished_at(self) -> float:
        return self.started_at + self.backuping_seconds

    @property
    def name(self) -> str:
        return "backup_" + datetime.fromtimestamp(self.created_at, UTC).strftime("%Y%m%d%H%M%S")

    def status_at(self, now: float) -> str:
        if self.status_override is not None:
            return self.status_override
        if now < self.started_at:
            return WAITING
        if now < self.finished_at:
            return BACKUPING
        return self.outcome

    def is_running_at(self, now: float) -> bool:
        return self.status_at(now) in RUNNING_BACKUP_STATUSES

    def progress_at(self, now: float) -> str:
        status = self.status_at(now)
        if status == BACKUPING:
            done = (now - self.started_at) / self.backuping_seconds
            return f"{min(100 * done, 99.99):.2f}"
        return "100.00" if status == "succeed" else "0.00"

    def to_json(self, now: float) -> JsonObject:
        status = self.status_at(now)
        finished = status not in RUNNING_BACKUP_STATUSES
        failed = status == "failed"
        shown: JsonObject = {
            "backup_id": self.backup_id,
            "backup_name": self.name,
            "instance_id": self.instance_id,
            "remark": self.remark,
            "backup_type": self.backup_type,
            "backup_format": self.backup_format,
            "status": status,
            "progress": self.progress_at(now),
            "size": self.size if status == "succeed" else 0,
            "created_at": iso_millis(self.created_at),
            # Real records leave times that have not happened yet blank; clients must cope with "".
            "updated_at": iso_millis(self.finished_at) if finished else "",
            "execution_at": iso_millis(self.started_at) if status != WAITING else "",
            "period": {},
            # The documented examples show `{}` where no error code applies.
            "error_code": self.error_code if failed and self.error_code else {},
            "is_support_restore": "TRUE" if status == "succeed" else "FALSE",
        }
        return shown | self.quirks


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    domain: str
    username: str
    project_id: str | None
    issued_at: float
    expires_at: float
