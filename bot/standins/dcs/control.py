"""What a test or the demo drives in the DCS stand-in: arranging the cloud, injecting faults, waiting for
calls, and serving it on a port.

:class:`DcsEmulator` is a :class:`~bot.standins.dcs.project.DcsProject` (the state and the API's rules) with
the hooks a test needs; :meth:`DcsEmulator.app` serves it over HTTP the way the cloud does
(:mod:`bot.standins.dcs.server`), and every answered call lands in its call log
(:mod:`bot.standins.dcs.call_log`).

Faults: one entry point, :meth:`DcsEmulator.inject`, takes a :class:`~bot.standins.faults.Fault` saying
what the client gets, for which endpoint, how many times, after what delay, and whether the call takes
effect first (see :mod:`bot.standins.faults`)::

    dcs.inject(Fault(Answer.HTML))                                            # a gateway's 502 page
    dcs.inject(Fault(Answer.EMPTY, target="list_backups"))                    # 200, no body
    dcs.inject(Fault(Answer.TRUNCATED, target="create_backup"))               # backup made, half a body
    dcs.inject(Fault(Answer.NOTHING, target="create_backup", applied=True))   # backup made, no answer
    dcs.inject(Fault(Answer.ERROR, target="create_backup", status=504, applied=True))
    dcs.inject(Fault(Answer.NORMAL, target="list_instances", delay=10))       # slower than the client waits

:meth:`DcsEmulator.inject_fault` is the older shorthand for ``ERROR`` faults (429 or 5xx in the cloud's
body shape, optionally with ``Retry-After``), :meth:`DcsEmulator.fail_next_backup` makes the next
backup of an instance end ``failed``, and :meth:`DcsEmulator.set_record_quirk` makes one backup record
show fields as given (a time without a zone, a time that is no time).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from bot.standins.clock import ManualClock
from bot.standins.dcs.call_log import CallRecord, Endpoint
from bot.standins.dcs.errors import CloudError
from bot.standins.dcs.project import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_DOMAIN,
    DEFAULT_PASSWORD,
    DEFAULT_PROJECT_ID,
    DEFAULT_PROJECT_NAME,
    DEFAULT_SECRET_KEY,
    DEFAULT_USERNAME,
    DcsProject,
    is_uuid,
)
from bot.standins.dcs.records import (
    BACKUP_CAPABLE_MODES,
    CACHE_MODES,
    BackupOutcome,
    BackupType,
    CacheMode,
    EmulatedBackup,
    EmulatedInstance,
    default_spec_code,
)
from bot.standins.dcs.server import create_app
from bot.standins.faults import Answer, Fault

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
    "ESTATE_CLOUDS",
    "Answer",
    "CallRecord",
    "CloudError",
    "ConnectionInfo",
    "DcsEmulator",
    "EmulatedBackup",
    "EmulatedCloud",
    "EmulatedInstance",
    "Endpoint",
    "Fault",
    "ManualClock",
    "RunningEmulator",
    "secret_variable",
    "seed_demo_instances",
    "serve",
    "serve_estate",
    "start_emulator",
    "start_estate",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8090


class DcsEmulator(DcsProject):
    """One emulated DCS project with the hooks tests and the demo use. Not thread-safe."""

    def app(self) -> web.Application:
        """A fresh aiohttp application serving this emulator's state."""
        return create_app(self)

    # -- arranging the cloud -------------------------------------------------------------------------

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
        tags: dict[str, str] | None = None,
    ) -> EmulatedInstance:
        """Adds an instance (with its DCS ``tags``). Names need not be unique, so ambiguous look-ups can be
        tested."""
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
            tags=dict(tags or {}),
        )
        self._instances[new_id] = instance
        self._records[new_id] = []
        return instance

    def set_status(self, instance_id: str, status: str) -> None:
        """E.g. ``"RESTARTING"`` to make backups fail with DCS.4049."""
        self.instance(instance_id).status = status

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

    def set_backup_status(self, backup_id: str, status: str | None) -> None:
        """Makes the record report ``status`` from now on, e.g. ``"expired"``, ``"deleted"`` or one DCS does
        not document; ``None`` returns it to its timeline."""
        self.backup(backup_id).status_override = status

    def set_record_quirk(self, backup_id: str, **fields: object) -> None:
        """Makes the record show ``fields`` exactly as given from now on, whatever its timeline says, as a
        cloud with odd habits would: e.g. ``created_at="2026-12-01 10:00:00"`` (a time without a zone) or
        ``updated_at="soon"``; None is shown as JSON null. Without fields the record is shown as usual again.
        """
        self.backup(backup_id).quirks = dict(fields)

    # -- IAM ---------------------------------------------------------------------------------------

    def revoke_tokens(self) -> None:
        """Forgets every issued token, as after a password change: they then get 401 DCS.1001."""
        self._tokens.clear()

    # -- faults ----------------------------------------------------------------------------------------

    def inject(self, fault: Fault) -> None:
        """The next ``fault.times`` calls to ``fault.target`` (any DCS endpoint when None; IAM only when
        named) get ``fault``; see the module docstring."""
        if fault.target is not None:
            Endpoint(fault.target)  # a ValueError for names the emulator does not serve
        refusal = fault.answer is Answer.ERROR and fault.status not in (None, 429, *range(500, 600))
        if refusal:
            raise ValueError("faults are 429 or 5xx; other errors come from the emulated state")
        self.faults.add(fault)

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
        self.inject(
            Fault(
                Answer.ERROR,
                target=None if endpoint is None else Endpoint(endpoint),
                times=times,
                delay=delay,
                status=status,
                error=error_code,
                retry_after=retry_after,
                instance_id=instance_id,
            )
        )

    def clear_faults(self) -> None:
        self.faults.clear()

    # -- the call log ----------------------------------------------------------------------------------

    async def wait_for_calls(self, predicate: Callable[[], bool], *, timeout: float = 5.0) -> None:
        """Returns once ``predicate()`` holds, re-checking after every answered call (so waiting never
        polls); raises ``TimeoutError`` naming the calls answered so far."""
        await self.log.wait_until(predicate, timeout=timeout)

    def calls_to(self, endpoint: Endpoint | str, *, instance_id: str | None = None) -> list[CallRecord]:
        """Received calls of one endpoint, optionally for one instance (any response status)."""
        return self.log.to(endpoint, instance_id=instance_id)


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

    def cloud_toml(self, name: str, *, iam: bool = False) -> str:
        """The ``[[clouds]]`` table of a clouds file (INTERFACE §8) for this emulator, authenticating with
        AK/SK or (``iam``) an IAM password; the secret's variable is :meth:`cloud_env`."""
        lines = [
            "[[clouds]]",
            f'name = "{name}"',
            f'endpoint = "{self.endpoint}"',
            f'project_id = "{self.project_id}"',
        ]
        if iam:
            lines += [
                f'iam_endpoint = "{self.endpoint}"',
                f'username = "{self.iam_username}"',
                f'domain = "{self.iam_domain}"',
                f'password_env = "{secret_variable(name, iam=True)}"',
            ]
        else:
            lines += [
                f'access_key = "{self.access_key}"',
                f'secret_key_env = "{secret_variable(name, iam=False)}"',
            ]
        return "\n".join(lines) + "\n"

    def cloud_env(self, name: str, *, iam: bool = False) -> dict[str, str]:
        """The environment variable the :meth:`cloud_toml` table names, with its secret."""
        return {secret_variable(name, iam=iam): self.iam_password if iam else self.secret_key}

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


def secret_variable(cloud: str, *, iam: bool) -> str:
    """``DCS_EU_DE_SECRET_KEY`` or ``DCS_EU_NL_PASSWORD``: where a cloud's secret is kept."""
    return f"DCS_{cloud.upper().replace('-', '_')}_{'PASSWORD' if iam else 'SECRET_KEY'}"


@dataclass(frozen=True)
class EmulatedCloud:
    """One cloud of a served estate: its name in a clouds file, how the bot authenticates there, and the
    running emulator."""

    name: str
    iam: bool
    running: RunningEmulator

    def toml(self) -> str:
        return self.running.connection_info().cloud_toml(self.name, iam=self.iam)

    def env(self) -> dict[str, str]:
        return self.running.connection_info().cloud_env(self.name, iam=self.iam)


#: The clouds ``dcs-bot emulator --clouds 2`` serves: OTC eu-de with AK/SK, and eu-nl with an IAM user,
#: each its own project, credentials and instances.
ESTATE_CLOUDS = ("eu-de", "eu-nl")


def eu_nl_emulator() -> DcsEmulator:
    """A second project (OTC eu-nl): its own ID, keys, IAM user and instances, one of them named as in
    eu-de (``redis-prod``), as teams that mirror their set-up across regions have."""
    emulator = DcsEmulator(
        project_id="fedcba9876543210fedcba9876543210",
        project_name="eu-nl",
        access_key="EMULATORACCESSKEYNL0",
        secret_key="emulator-secret-key-eu-nl-not-real",
        iam_users={("emulator-domain-nl", "dcs-backup-bot-nl"): "emulator-password-eu-nl"},
    )
    added = [
        emulator.add_instance(
            "redis-prod", cache_mode="ha", capacity=8, description="eu-nl replica", tags={"env": "prod"}
        ),
        emulator.add_instance("redis-nl-sessions", cache_mode="cluster", capacity=24),
    ]
    day_ago = emulator.now() - 24 * 3600
    for instance in added:
        emulator.add_backup(instance.instance_id, created_at=day_ago)
    return emulator


async def start_estate(count: int = 2, *, host: str = DEFAULT_HOST, port: int = 0) -> list[EmulatedCloud]:
    """``count`` (1 or 2) emulated clouds on consecutive ports from ``port`` (0: any free ones)."""
    if not 1 <= count <= len(ESTATE_CLOUDS):
        raise ValueError(f"the emulator serves 1 to {len(ESTATE_CLOUDS)} clouds")
    makers = (_demo_emulator, eu_nl_emulator)
    started: list[EmulatedCloud] = []
    try:
        for index in range(count):
            running = await start_emulator(makers[index](), host=host, port=port + index if port else 0)
            started.append(EmulatedCloud(ESTATE_CLOUDS[index], iam=index == 1, running=running))
    except BaseException:
        for cloud in started:
            await cloud.running.close()
        raise
    return started


async def serve_estate(
    count: int,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    on_ready: Callable[[list[EmulatedCloud]], None] | None = None,
) -> None:
    """``dcs-bot emulator --clouds N``: serves the estate until cancelled."""
    clouds = await start_estate(count, host=host, port=port)
    try:
        if on_ready is not None:
            on_ready(clouds)
        await asyncio.Event().wait()
    finally:
        for cloud in clouds:
            await cloud.running.close()


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
        emulator.add_instance(
            "redis-prod",
            cache_mode="ha",
            capacity=8,
            description="orders and carts",
            tags={"env": "prod", "team": "shop"},
        ),
        emulator.add_instance("redis-staging", cache_mode="ha", capacity=2, tags={"env": "staging"}),
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
