"""``dcs-bot audit`` as a real process on a large trail: it streams (memory stays flat however long the
trail), honours ``--since``, and a reader that goes away (``| head``) ends it quietly with exit 0."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.store.database import open_database, to_db_time
from tests.service.process import WAIT, child_env

ROWS = 200_000
START = datetime(2026, 1, 1, tzinfo=UTC)
# Rows are one second apart, so this --since leaves the last quarter of them.
SINCE = (START + timedelta(seconds=ROWS * 3 // 4)).isoformat()
# What the trail may add to the process's peak memory; holding it all would take hundreds of MB.
MEMORY_BOUND_MB = 25

# Runs the CLI in a child and reports on stderr how much its peak RSS grew while the audit ran.
MEASURED = """
import resource, sys
from bot.cli import main
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
code = main(sys.argv[1:])
sys.stdout.flush()
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(f"exit={code} grown_kb={grown}", file=sys.stderr)
raise SystemExit(code)
"""


async def _create_schema(path: Path) -> None:
    connection = await open_database(path)
    await connection.close()


@pytest.fixture(scope="module")
def trail(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database with an audit trail of :data:`ROWS` records, one second apart."""
    path = tmp_path_factory.mktemp("audit") / "bot.sqlite3"
    asyncio.run(_create_schema(path))
    rows = (
        (
            to_db_time(START + timedelta(seconds=n)),
            "api_result" if n % 2 else "command",
            "UALICE1",
            "COPS1",
            f"request-{n:08d}",
            "11111111-2222-3333-4444-555555555555",
            "redis-prod",
            f"bac0{n:04x}-0000-4000-8000-{n:012x}",
            "sre-prod",
            "accepted",
            json.dumps({"call": "create_backup", "format": "rdb", "remark": f"nightly {n}"}),
        )
        for n in range(ROWS)
    )
    with closing(sqlite3.connect(path)) as connection:
        connection.executemany(
            "INSERT INTO audit (at, kind, user_id, channel_id, request_id, instance_id, instance_name,"
            " backup_id, rule, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        connection.commit()
    return path


def measured_audit(trail: Path, out: Path, *args: str) -> tuple[int, int, str]:
    """Runs ``dcs-bot audit ARGS`` with stdout into ``out``: (exit code, peak RSS growth in KB, stderr)."""
    with out.open("wb") as stdout:
        finished = subprocess.run(
            [sys.executable, "-c", MEASURED, "audit", *args],
            env=child_env({"BOT_DATABASE": str(trail)}),
            cwd=trail.parent,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            timeout=WAIT * 6,
            check=False,
        )
    report = finished.stderr.strip().splitlines()[-1]
    code, grown = (int(part.split("=")[1]) for part in report.split())
    return code, grown, finished.stderr


def count_lines(path: Path) -> int:
    with path.open("rb") as lines:
        return sum(1 for _ in lines)


@pytest.mark.parametrize(("output_format", "header"), [("jsonl", 0), ("table", 1)])
def test_a_large_trail_is_streamed_in_flat_memory(
    trail: Path, tmp_path: Path, output_format: str, header: int
) -> None:
    out = tmp_path / "out"

    code, grown_kb, stderr = measured_audit(trail, out, "--format", output_format)

    assert code == 0, stderr
    assert count_lines(out) == ROWS + header
    assert grown_kb < MEMORY_BOUND_MB * 1024, f"peak memory grew by {grown_kb / 1024:.0f} MB"


@pytest.mark.parametrize(("output_format", "header"), [("jsonl", 0), ("table", 1)])
def test_since_is_honoured_while_streaming(
    trail: Path, tmp_path: Path, output_format: str, header: int
) -> None:
    out = tmp_path / "out"

    code, _, stderr = measured_audit(trail, out, "--format", output_format, "--since", SINCE)

    assert code == 0, stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == ROWS // 4 + header
    first = lines[header]
    assert f"request-{ROWS * 3 // 4:08d}" in first if output_format == "jsonl" else SINCE[:19] in first


def test_the_table_lines_up_its_columns(trail: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"

    measured_audit(trail, out, "--format", "table", "--since", SINCE)

    with out.open(encoding="utf-8") as table:
        header, first, second = (next(table) for _ in range(3))
    assert header.split() == [
        "seq",
        "at",
        "kind",
        "user",
        "channel",
        "cloud",
        "instance",
        "backup_id",
        "rule",
        "outcome",
    ]
    for column in ("at", "kind", "user", "channel", "instance", "backup_id", "rule", "outcome"):
        assert first[header.index(column) - 1] == " " and second[header.index(column) - 1] == " ", column


@pytest.mark.parametrize("output_format", ["jsonl", "table"])
def test_head_ends_the_audit_quietly(trail: Path, tmp_path: Path, output_format: str) -> None:
    status = tmp_path / "status"
    pipeline = (
        f'{{ "{sys.executable}" -m bot audit --format {output_format}; echo $? > "{status}"; }} | head -1'
    )

    finished = subprocess.run(
        ["sh", "-c", pipeline],
        env=child_env({"BOT_DATABASE": str(trail)}),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )

    assert len(finished.stdout.splitlines()) == 1
    assert finished.stderr == "", finished.stderr
    assert status.read_text(encoding="utf-8").strip() == "0"


def test_a_reader_that_closes_the_pipe_ends_the_audit_with_exit_0(trail: Path, tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "bot", "audit", "--format", "jsonl"],
        env=child_env({"BOT_DATABASE": str(trail)}),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as child:
        assert child.stdout is not None and child.stderr is not None
        first = json.loads(child.stdout.readline())
        child.stdout.close()
        code = child.wait(timeout=WAIT)
        stderr = child.stderr.read().decode()

    assert first["seq"] == 1
    assert (code, stderr) == (0, "")
