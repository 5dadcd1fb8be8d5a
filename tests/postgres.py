"""A throwaway PostgreSQL cluster for tests and benchmarks, made with the installed package's own
``initdb`` and ``pg_ctl`` (found through ``pg_config --bindir``), on 127.0.0.1 and a free port, in a
temporary folder that is removed when it stops.

As root the server runs as the ``postgres`` user (``runuser``), which must own the data folder.
Connections over TCP need the superuser's password (generated per cluster), so that a wrong password
is refused as it would be in production; the local socket is trusted.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: Set (to anything) to make a missing or broken PostgreSQL an error instead of a skip (CI sets it).
REQUIRED_VARIABLE = "DCS_BOT_REQUIRE_POSTGRES"
_USER = "postgres"


class PostgresUnavailableError(Exception):
    """Why no cluster can be started here, in one line."""


@dataclass(frozen=True)
class PostgresCluster:
    bindir: Path
    folder: Path
    port: int
    password: str

    def url(self, database: str = "postgres", *, password: str | None = None) -> str:
        secret = self.password if password is None else password
        return f"postgresql://{_USER}:{secret}@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str) -> None:
        """Runs one statement as the superuser in the ``postgres`` database (CREATE/DROP DATABASE)."""
        command = [
            str(self.bindir / "psql"),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            self.url(),
            "-c",
            statement,
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise PostgresUnavailableError(f"psql failed: {result.stderr.strip()}")

    def create_database(self, name: str) -> str:
        """A new, empty database; its URL."""
        self.sql(f"CREATE DATABASE {name}")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def find_bindir() -> Path:
    """The folder of ``initdb`` and ``pg_ctl``: ``pg_config --bindir``, else Debian's versioned folder."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            output = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True)
            candidates.append(Path(output.stdout.strip()))
    candidates += [Path(found) for found in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    raise PostgresUnavailableError(
        "PostgreSQL is not installed (no initdb/pg_ctl; pg_config --bindir finds none)"
    )


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", _USER, "--", *command] if os.geteuid() == 0 else command


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run(command: list[str], what: str, log: Path | None = None) -> None:
    result = subprocess.run(_as_server_user(command), capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        if log is not None and log.exists():
            detail += log.read_text(errors="replace").strip().splitlines()[-3:]
        raise PostgresUnavailableError(f"{what} failed: {' / '.join(detail[-4:]) or result.returncode}")


@contextlib.contextmanager
def running_cluster() -> Iterator[PostgresCluster]:
    """A started cluster, stopped and removed on leaving (also when the body fails)."""
    bindir = find_bindir()
    server_user = None
    if os.geteuid() == 0:
        try:
            server_user = pwd.getpwnam(_USER)
        except KeyError:
            raise PostgresUnavailableError(
                f"running as root, and there is no {_USER} user to run it"
            ) from None
    folder = Path(tempfile.mkdtemp(prefix="dcs-bot-postgres-"))
    try:
        folder.chmod(0o755)  # the server user reaches its data folder through this one
        data = folder / "data"
        data.mkdir(mode=0o700)
        password = secrets.token_hex(16)
        password_file = folder / "password"
        password_file.write_text(password + "\n")
        if server_user is not None:
            os.chown(data, server_user.pw_uid, server_user.pw_gid)
            os.chown(password_file, server_user.pw_uid, server_user.pw_gid)
        _run(
            [
                str(bindir / "initdb"),
                *("-D", str(data), "-U", _USER, "--auth-local=trust", "--auth-host=scram-sha-256"),
                *(f"--pwfile={password_file}", "--no-sync", "--no-instructions", "-E", "UTF8", "--locale=C"),
            ],
            "initdb",
        )
        password_file.unlink()
        cluster = _start(bindir, folder, data, password)
        try:
            yield cluster
        finally:
            _stop(cluster)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _start(bindir: Path, folder: Path, data: Path, password: str) -> PostgresCluster:
    log = data / "server.log"
    for attempt in range(3):  # the free port may be taken between finding and binding it
        port = _free_port()
        options = f"-k {data} -c listen_addresses=127.0.0.1 -p {port} -c fsync=off"
        options += " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        try:
            start = [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"]
            _run(start, "pg_ctl start", log)
        except PostgresUnavailableError:
            if attempt == 2:
                raise
            continue
        return PostgresCluster(bindir, folder, port, password)
    raise AssertionError("unreachable")


def _stop(cluster: PostgresCluster) -> None:
    pg_ctl = str(cluster.bindir / "pg_ctl")
    with contextlib.suppress(PostgresUnavailableError, subprocess.SubprocessError):
        _run([pg_ctl, "-D", str(cluster.folder / "data"), "-m", "immediate", "-w", "stop"], "pg_ctl stop")
