"""One emulated DCS project and its IAM users: the state, and the rules the API applies to it.

This is the cloud's side, shared by the HTTP server (:mod:`bot.standins.dcs.server`, which answers
requests from it) and the control surface (:mod:`bot.standins.dcs.control`, which arranges it). Backups move
through waiting → backuping → succeed|failed purely from the project's clock, so nothing runs in the
background and tests can drive time by hand with a ``ManualClock``.
"""

from __future__ import annotations

import hmac
import itertools
import random
import re
import secrets
import time
import uuid
from collections.abc import Callable, Mapping

from bot.standins.dcs.call_log import CallLog, CallRecord
from bot.standins.dcs.errors import CloudError
from bot.standins.dcs.records import (
    BACKUP_CAPABLE_MODES,
    BACKUP_FORMATS,
    BackupOutcome,
    BackupType,
    EmulatedBackup,
    EmulatedInstance,
    IssuedToken,
)
from bot.standins.faults import FaultPlan

DEFAULT_PROJECT_ID = "0123456789abcdef0123456789abcdef"
DEFAULT_PROJECT_NAME = "eu-de"
DEFAULT_ACCESS_KEY = "EMULATORACCESSKEY000"
DEFAULT_SECRET_KEY = "emulator-secret-key-not-a-real-one"
DEFAULT_DOMAIN = "emulator-domain"
DEFAULT_USERNAME = "dcs-backup-bot"
DEFAULT_PASSWORD = "emulator-password"

BACKUP_RETENTION = 24
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class DcsProject:
    """State and behaviour of one emulated DCS project, plus its IAM users.

    ``clock`` returns UNIX seconds (default ``time.time``). It dates records and tokens, drives backup
    progress and is the "server time" the ``X-Sdk-Date`` of signed requests is checked against, so a
    ``ManualClock`` should start near the time the signing client believes it is.
    Not thread-safe: use it from the event loop that serves it.
    """

    def __init__(
        self,
        *,
        project_id: str = DEFAULT_PROJECT_ID,
        project_name: str = DEFAULT_PROJECT_NAME,
        access_key: str = DEFAULT_ACCESS_KEY,
        secret_key: str = DEFAULT_SECRET_KEY,
        iam_users: Mapping[tuple[str, str], str] | None = None,
        token_lifetime: float = 24 * 3600.0,
        waiting_seconds: float = 2.0,
        backuping_seconds: float = 8.0,
        clock: Callable[[], float] = time.time,
        max_sdk_date_skew: float | None = 15 * 60.0,
        id_seed: int | None = None,
    ) -> None:
        """``iam_users`` maps (domain name, user name) to password. ``max_sdk_date_skew=None`` turns the
        ``X-Sdk-Date`` freshness check off. ``id_seed`` makes generated IDs reproducible."""
        if waiting_seconds < 0 or backuping_seconds <= 0:
            raise ValueError("waiting_seconds must be >= 0 and backuping_seconds > 0")
        self.project_id = project_id
        self.project_name = project_name
        self.access_key = access_key
        self.secret_key = secret_key
        self.iam_users: dict[tuple[str, str], str] = dict(
            iam_users if iam_users is not None else {(DEFAULT_DOMAIN, DEFAULT_USERNAME): DEFAULT_PASSWORD}
        )
        self.token_lifetime = token_lifetime
        self.waiting_seconds = waiting_seconds
        self.backuping_seconds = backuping_seconds
        self.clock = clock
        self.max_sdk_date_skew = max_sdk_date_skew
        self.log = CallLog()
        self.faults = FaultPlan()
        self._random = random.Random(id_seed)
        self._sequence = itertools.count()
        self._instances: dict[str, EmulatedInstance] = {}
        self._records: dict[str, list[EmulatedBackup]] = {}
        self._backups: dict[str, EmulatedBackup] = {}
        self._tokens: dict[str, IssuedToken] = {}
        self._failing_next: dict[str, str] = {}

    def now(self) -> float:
        return self.clock()

    @property
    def instances(self) -> list[EmulatedInstance]:
        """All instances, in the order they were added."""
        return list(self._instances.values())

    def instance(self, instance_id: str) -> EmulatedInstance:
        """The instance with this ID; ``KeyError`` if there is none."""
        return self._instances[instance_id]

    def require_instance(self, instance_id: str) -> EmulatedInstance:
        """The API's view of an instance ID from a URL path."""
        if not is_uuid(instance_id):
            raise CloudError(400, "DCS.4061", "Invalid instance ID.")
        instance = self._instances.get(instance_id)
        if instance is None:
            raise CloudError(404, "DCS.3022", "This DCS instance does not exist.")
        return instance

    def start_backup(self, instance_id: str, *, backup_format: str, remark: str) -> EmulatedBackup:
        """A manual backup, with the API's checks (CopyInstance). Raises :class:`CloudError`."""
        instance = self.require_instance(instance_id)
        if backup_format not in BACKUP_FORMATS:
            raise CloudError(400, "DCS.4800", "Invalid backup_format in the request.")
        if instance.status != "RUNNING":
            raise CloudError(400, "DCS.4049", "The DCS instance is not in the Running state.")
        if instance.cache_mode not in BACKUP_CAPABLE_MODES:
            # Which code a single-node backup gets is undocumented (DCS.4095, 4086 or 4007); we pick 4086.
            raise CloudError(
                400, "DCS.4086", "Only master/standby and cluster DCS instances can be backed up."
            )
        if self.running_backup(instance_id) is not None:
            raise CloudError(400, "DCS.4096", "The DCS instance is being backed up.")
        error_code = self._failing_next.pop(instance_id, None)
        return self._store_backup(
            instance_id,
            backup_type="manual",
            backup_format=backup_format,
            remark=remark,
            outcome="failed" if error_code else "succeed",
            error_code=error_code,
            created_at=self.now(),
            size=None,
            waiting_seconds=self.waiting_seconds,
            backuping_seconds=self.backuping_seconds,
        )

    def backups_of(self, instance_id: str) -> list[EmulatedBackup]:
        """The retained records of an instance, newest first."""
        return list(self._records[instance_id])

    def backup(self, backup_id: str) -> EmulatedBackup:
        """A retained record; ``KeyError`` once retention dropped it or if it never existed."""
        return self._backups[backup_id]

    def backup_status(self, backup_id: str) -> str:
        return self.backup(backup_id).status_at(self.now())

    def running_backup(self, instance_id: str) -> EmulatedBackup | None:
        now = self.now()
        return next((record for record in self._records[instance_id] if record.is_running_at(now)), None)

    def _store_backup(
        self,
        instance_id: str,
        *,
        backup_type: BackupType,
        backup_format: str,
        remark: str,
        outcome: BackupOutcome,
        error_code: str | None,
        created_at: float,
        size: int | None,
        waiting_seconds: float,
        backuping_seconds: float,
    ) -> EmulatedBackup:
        record = EmulatedBackup(
            backup_id=self._new_uuid(),
            instance_id=instance_id,
            backup_type=backup_type,
            backup_format=backup_format,
            remark=remark,
            created_at=created_at,
            waiting_seconds=waiting_seconds,
            backuping_seconds=backuping_seconds,
            outcome=outcome,
            error_code=error_code,
            size=size if size is not None else self._random.randint(1 << 20, 512 << 20),
            sequence=next(self._sequence),
        )
        self._backups[record.backup_id] = record
        records = self._records[instance_id]
        records.append(record)
        records.sort(key=lambda each: (each.created_at, each.sequence), reverse=True)
        # The cloud keeps only the newest 24 records per instance and drops older ones silently.
        for dropped in records[BACKUP_RETENTION:]:
            del self._backups[dropped.backup_id]
        del records[BACKUP_RETENTION:]
        return record

    # -- the call log and faults, as the server uses them ------------------------------------------------

    @property
    def calls(self) -> list[CallRecord]:
        """Every answered call, oldest first."""
        return self.log.calls

    def new_request_id(self) -> str:
        return uuid.UUID(int=self._random.getrandbits(128)).hex

    # -- IAM ---------------------------------------------------------------------------------------

    def password_matches(self, domain: str, username: str, password: str) -> bool:
        known = self.iam_users.get((domain, username))
        return known is not None and hmac.compare_digest(known.encode(), password.encode())

    def issue_token(self, domain: str, username: str, *, project_scoped: bool = True) -> IssuedToken:
        """A token for a user whose password was checked; domain-scoped ones are refused by DCS."""
        issued_at = self.now()
        token = IssuedToken(
            token="MIIemulator" + secrets.token_urlsafe(48),
            domain=domain,
            username=username,
            project_id=self.project_id if project_scoped else None,
            issued_at=issued_at,
            expires_at=issued_at + self.token_lifetime,
        )
        self._tokens[token.token] = token
        return token

    def token(self, value: str) -> IssuedToken | None:
        return self._tokens.get(value)

    def _new_uuid(self) -> str:
        return str(uuid.UUID(int=self._random.getrandbits(128), version=4))


def is_uuid(value: str) -> bool:
    return _UUID.fullmatch(value) is not None
