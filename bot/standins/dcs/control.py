"""An in-process stand-in for the DCS v2 API and the IAM token API of Open Telekom Cloud / Huawei Cloud.

:class:`DcsEmulator` holds the state (instances, backup records, tokens, injected faults, a log of calls)
and offers a Python API to arrange it; :meth:`DcsEmulator.app` serves it over HTTP the way the cloud
does. Backups move through waiting → backuping → succeed|failed purely from the emulator's clock, so
nothing runs in the background and tests can drive time by hand with :class:`ManualClock`.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import random
import re
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from bot.standins.dcs.records import (
    BACKUP_CAPABLE_MODES,
    BACKUP_FORMATS,
    CACHE_MODES,
    BackupOutcome,
    BackupType,
    CacheMode,
    CallRecord,
    CloudError,
    EmulatedBackup,
    EmulatedInstance,
    Endpoint,
    Fault,
    IssuedToken,
    ManualClock,
    default_spec_code,
)
from bot.standins.dcs.server import create_app

__all__ = [
    "DEFAULT_ACCESS_KEY",
    "DEFAULT_DOMAIN",
    "DEFAULT_HOST",
    "DEFAULT_PASSWORD",
    "DEFAULT_PORT",
    "DEFAULT_PROJECT_ID",
    "DEFAULT_PROJECT_NAME",
    "DEFAULT_SECRET_KEY",
    "DEFAULT_USERNAME",
    "CallRecord",
    "CloudError",
    "ConnectionInfo",
    "DcsEmulator",
    "EmulatedBackup",
    "EmulatedInstance",
    "Endpoint",
    "ManualClock",
    "RunningEmulator",
    "seed_demo_instances",
    "serve",
    "start_emulator",
]

DEFAULT_PROJECT_ID = "0123456789abcdef0123456789abcdef"
DEFAULT_PROJECT_NAME = "eu-de"
DEFAULT_ACCESS_KEY = "EMULATORACCESSKEY000"
DEFAULT_SECRET_KEY = "emulator-secret-key-not-a-real-one"
DEFAULT_DOMAIN = "emulator-domain"
DEFAULT_USERNAME = "dcs-backup-bot"
DEFAULT_PASSWORD = "emulator-password"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8090

BACKUP_RETENTION = 24
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class DcsEmulator:
    """State and behaviour of one emulated DCS project, plus its IAM users.

    ``clock`` returns UNIX seconds (default ``time.time``). It dates records and tokens, drives backup
    progress and is the "server time" the ``X-Sdk-Date`` of signed requests is checked against, so a
    :class:`ManualClock` should start near the time the signing client believes it is.
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
        self.calls: list[CallRecord] = []
        self._random = random.Random(id_seed)
        self._sequence = itertools.count()
        self._instances: dict[str, EmulatedInstance] = {}
        self._records: dict[str, list[EmulatedBackup]] = {}
        self._backups: dict[str, EmulatedBackup] = {}
        self._tokens: dict[str, IssuedToken] = {}
        self._faults: list[Fault] = []
        self._failing_next: dict[str, str] = {}
        self._call_answered = asyncio.Event()

    def now(self) -> float:
        return self.clock()

    def app(self) -> web.Application:
        """A fresh aiohttp application serving this emulator's state."""
        return create_app(self)

    # -- instances ---------------------------------------------------------------------------------

    def add_instance(
        self,
        name: str,
        *,
        cache_mode: CacheMode = "ha",
        status: str = "RUNNING",
        instance_id: str | None = None,
        engine_version: str = "6.0",
        capacity: int = 8,
        spec_code: str | None = None,
        description: str = "",
    ) -> EmulatedInstance:
        """Adds an instance. Names need not be unique, so ambiguous look-ups can be tested."""
        if cache_mode not in CACHE_MODES:
            raise ValueError(f"unknown cache_mode {cache_mode!r}; expected one of {sorted(CACHE_MODES)}")
        new_id = instance_id if instance_id is not None else self._new_uuid()
        if not is_uuid(new_id):
            raise ValueError(f"instance_id must be a lower-case UUID, got {new_id!r}")
        if new_id in self._instances:
            raise ValueError(f"instance {new_id} already exists")
        instance = EmulatedInstance(
            instance_id=new_id,
            name=name,
            cache_mode=cache_mode,
            status=status,
            engine_version=engine_version,
            capacity=capacity,
            spec_code=spec_code or default_spec_code(cache_mode, capacity),
            description=description,
            created_at=self.now(),
            ordinal=len(self._instances),
            project_id=self.project_id,
        )
        self._instances[new_id] = instance
        self._records[new_id] = []
        return instance

    @property
    def instances(self) -> list[EmulatedInstance]:
        """All instances, in the order they were added."""
        return list(self._instances.values())

    def instance(self, instance_id: str) -> EmulatedInstance:
        """The instance with this ID; ``KeyError`` if there is none."""
        return self._instances[instance_id]

    def set_status(self, instance_id: str, status: str) -> None:
        """E.g. ``"RESTARTING"`` to make backups fail with DCS.4049."""
        self.instance(instance_id).status = status

    def require_instance(self, instance_id: str) -> EmulatedInstance:
        """The API's view of an instance ID from a URL path."""
        if not is_uuid(instance_id):
            raise CloudError(400, "DCS.4061", "Invalid instance ID.")
        instance = self._instances.get(instance_id)
        if instance is None:
            raise CloudError(404, "DCS.3022", "This DCS instance does not exist.")
        return instance

    # -- backups -----------------------------------------------------------------------------------

    def fail_next_backup(self, instance_id: str, error_code: str = "dcs.08.0002") -> None:
        """The next backup started through the API on this instance ends ``failed`` with ``error_code``."""
        self.instance(instance_id)
        self._failing_next[instance_id] = error_code

    def add_backup(
        self,
        instance_id: str,
        *,
        backup_type: BackupType = "auto",
        outcome: BackupOutcome = "succeed",
        error_code: str | None = None,
        backup_format: str = "rdb",
        remark: str = "",
        created_at: float | None = None,
        size: int | None = None,
        waiting_seconds: float | None = None,
        backuping_seconds: float | None = None,
    ) -> EmulatedBackup:
        """Adds a record as if the cloud had started it (by default an automatic one, now).

        It progresses like a manual backup; with an old ``created_at`` it is already finished.
        Unlike the API this does not refuse a second running backup; such a record still blocks
        manual backups with DCS.4096 while it runs.
        """
        self.instance(instance_id)
        if outcome == "succeed" and error_code is not None:
            raise ValueError("error_code applies only to failed backups")
        return self._store_backup(
            instance_id,
            backup_type=backup_type,
            backup_format=backup_format,
            remark=remark,
            outcome=outcome,
            error_code=error_code or ("dcs.08.0002" if outcome == "failed" else None),
            created_at=self.now() if created_at is None else created_at,
            size=size,
            waiting_seconds=self.waiting_seconds if waiting_seconds is None else waiting_seconds,
            backuping_seconds=self.backuping_seconds if backuping_seconds is None else backuping_seconds,
        )

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

    def set_backup_status(self, backup_id: str, status: str | None) -> None:
        """Makes the record report ``status`` from now on, e.g. ``"expired"``, ``"deleted"`` or one DCS does
        not document; ``None`` returns it to its timeline."""
        self.backup(backup_id).status_override = status

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

    # -- faults and the call log ---------------------------------------------------------------------

    def inject_fault(
        self,
        *,
        endpoint: Endpoint | str | None = None,
        status: int = 503,
        retry_after: float | None = None,
        times: int = 1,
        instance_id: str | None = None,
        error_code: str | None = None,
        delay: float = 0.0,
    ) -> None:
        """Makes the next ``times`` authenticated calls to ``endpoint`` (any DCS endpoint when None;
        IAM only when named) fail with ``status`` (429 or 5xx), optionally only for one instance.
        ``retry_after`` seconds go into a ``Retry-After`` header (fractions allowed, for fast tests);
        ``delay`` seconds pass before the failure is answered, as with an overloaded gateway."""
        if status != 429 and not 500 <= status <= 599:
            raise ValueError("faults are 429 or 5xx; other errors come from the emulated state")
        if times < 1:
            raise ValueError("times must be at least 1")
        if retry_after is not None and retry_after < 0:
            raise ValueError("retry_after must not be negative")
        if delay < 0:
            raise ValueError("delay must not be negative")
        self._faults.append(
            Fault(
                endpoint=Endpoint(endpoint) if endpoint is not None else None,
                instance_id=instance_id,
                status=status,
                retry_after=retry_after,
                error_code=error_code,
                remaining=times,
                delay=delay,
            )
        )

    def clear_faults(self) -> None:
        self._faults.clear()

    def take_fault(self, endpoint: Endpoint, instance_id: str | None) -> Fault | None:
        """Consumes one use of the first fault matching this call."""
        for fault in self._faults:
            if fault.matches(endpoint, instance_id):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def record_call(self, call: CallRecord) -> None:
        self.calls.append(call)
        self._call_answered.set()
        self._call_answered = asyncio.Event()

    async def wait_for_calls(self, predicate: Callable[[], bool], *, timeout: float = 5.0) -> None:
        """Returns once ``predicate()`` holds, re-checking after every answered call (so waiting never
        polls); raises ``TimeoutError`` naming the calls answered so far."""
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    await self._call_answered.wait()
        except TimeoutError:
            seen = ", ".join(f"{call.endpoint or call.path} {call.status}" for call in self.calls[-10:])
            raise TimeoutError(
                f"DCS emulator: gave up after {timeout}s; last calls answered: {seen or 'none'}"
            ) from None

    def calls_to(self, endpoint: Endpoint | str, *, instance_id: str | None = None) -> list[CallRecord]:
        """Received calls of one endpoint, optionally for one instance (any response status)."""
        wanted = Endpoint(endpoint)
        return [
            call
            for call in self.calls
            if call.endpoint == wanted and (instance_id is None or call.instance_id == instance_id)
        ]

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

    def revoke_tokens(self) -> None:
        """Forgets every issued token, as after a password change: they then get 401 DCS.1001."""
        self._tokens.clear()

    def _new_uuid(self) -> str:
        return str(uuid.UUID(int=self._random.getrandbits(128), version=4))


def is_uuid(value: str) -> bool:
    return _UUID.fullmatch(value) is not None


# -- running it on its own ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionInfo:
    """What a person (or a bot's settings) needs to talk to a running emulator."""

    endpoint: str
    project_id: str
    access_key: str
    secret_key: str
    iam_domain: str
    iam_username: str
    iam_password: str

    def env(self) -> dict[str, str]:
        """Settings for the bot, by the names of INTERFACE.md §5 (both auth methods; use one)."""
        return {
            "DCS_ENDPOINT": self.endpoint,
            "DCS_PROJECT_ID": self.project_id,
            "DCS_ACCESS_KEY": self.access_key,
            "DCS_SECRET_KEY": self.secret_key,
            "DCS_IAM_ENDPOINT": self.endpoint,
            "DCS_DOMAIN": self.iam_domain,
            "DCS_USERNAME": self.iam_username,
            "DCS_PASSWORD": self.iam_password,
        }


class RunningEmulator:
    """An emulator served on a local port; close it (or use ``async with``) to stop serving."""

    def __init__(self, emulator: DcsEmulator, runner: web.AppRunner, url: str) -> None:
        self.emulator = emulator
        self.url = url
        self._runner = runner

    def connection_info(self) -> ConnectionInfo:
        (domain, username), password = next(iter(self.emulator.iam_users.items()), (("", ""), ""))
        return ConnectionInfo(
            endpoint=self.url,
            project_id=self.emulator.project_id,
            access_key=self.emulator.access_key,
            secret_key=self.emulator.secret_key,
            iam_domain=domain,
            iam_username=username,
            iam_password=password,
        )

    async def close(self) -> None:
        await self._runner.cleanup()

    async def __aenter__(self) -> RunningEmulator:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()


async def start_emulator(
    emulator: DcsEmulator | None = None, *, host: str = DEFAULT_HOST, port: int = 0
) -> RunningEmulator:
    """Serves ``emulator`` on ``host:port`` (port 0 picks a free one).

    Without an emulator it serves a fresh one seeded by :func:`seed_demo_instances`.
    """
    served = emulator if emulator is not None else _demo_emulator()
    runner = web.AppRunner(served.app())
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_port = runner.addresses[0][1]
    return RunningEmulator(served, runner, f"http://{host}:{bound_port}")


async def serve(
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    emulator: DcsEmulator | None = None,
    on_ready: Callable[[ConnectionInfo], None] | None = None,
) -> None:
    """``dcs-bot emulator``: serves until cancelled. ``on_ready`` gets the connection details to show."""
    async with await start_emulator(emulator, host=host, port=port) as running:
        if on_ready is not None:
            on_ready(running.connection_info())
        await asyncio.Event().wait()


def seed_demo_instances(emulator: DcsEmulator) -> list[EmulatedInstance]:
    """One instance of every type, one that is not running, and a day of backup history."""
    added = [
        emulator.add_instance("redis-prod", cache_mode="ha", capacity=8, description="orders and carts"),
        emulator.add_instance("redis-staging", cache_mode="ha", capacity=2),
        emulator.add_instance("cache-single", cache_mode="single", capacity=1, engine_version="5.0"),
        emulator.add_instance("sessions-cluster", cache_mode="cluster", capacity=24),
        emulator.add_instance("search-proxy", cache_mode="proxy", capacity=16),
        emulator.add_instance("reports-rw-split", cache_mode="ha_rw_split", capacity=4),
        emulator.add_instance("redis-legacy", cache_mode="ha", status="RESTARTING", engine_version="5.0"),
    ]
    day_ago = emulator.now() - 24 * 3600
    for instance in added:
        if instance.cache_mode in BACKUP_CAPABLE_MODES:
            emulator.add_backup(instance.instance_id, created_at=day_ago)
    return added


def _demo_emulator() -> DcsEmulator:
    emulator = DcsEmulator()
    seed_demo_instances(emulator)
    return emulator
