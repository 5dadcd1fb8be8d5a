"""The store's tests run on both databases: ``database`` is a migrated SQLite file or PostgreSQL database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.store.database import open_database
from bot.store.engine import Database

DIALECTS = ["sqlite", "postgresql"]


async def open_test_database(request: pytest.FixtureRequest, dialect: str, tmp_path: Path) -> Database:
    """A migrated database of ``dialect``: a file in ``tmp_path``, or a fresh PostgreSQL database (the
    PostgreSQL fixtures are only asked for, and the cluster only started, when a test needs them)."""
    if dialect == "postgresql":
        return await open_database(str(request.getfixturevalue("postgres_url")))
    return await open_database(tmp_path / "bot.sqlite3")


@pytest.fixture(params=DIALECTS)
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    opened = await open_test_database(request, request.param, tmp_path)
    try:
        yield opened
    finally:
        await opened.close()
