"""Stored times: one fixed text format, read back as aware UTC times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.store.database import _TIME_FORMAT, from_db_time, to_db_time
from bot.store.db_clock import db_now, db_now_plus
from bot.store.engine import Database


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(2026, 6, 30, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-7))),
    ],
)
def test_the_text_is_the_format_rows_have_always_had(moment: datetime) -> None:
    text = to_db_time(moment)
    assert text == moment.astimezone(UTC).strftime(_TIME_FORMAT)
    assert from_db_time(text) == moment and from_db_time(text).tzinfo is UTC


@pytest.mark.parametrize("text", ["2026-01-02T03:04:05", "2026-01-02T03:04:05+00:00", "2026-01-02", "soon"])
def test_other_texts_are_no_stored_time(text: str) -> None:
    with pytest.raises(ValueError, match=r"isoformat|not a stored time"):
        from_db_time(text)


async def test_the_database_clock_writes_the_stored_format(database: Database) -> None:
    dialect = database.dialect
    row = await database.fetch_one(
        f"SELECT {db_now(dialect)} AS now, {db_now_plus(dialect, 'ttl')} AS later", {"ttl": 2.5}
    )
    assert row is not None
    now, later = from_db_time(row["now"]), from_db_time(row["later"])

    # PostgreSQL's clock_timestamp() moves on within a statement; SQLite's 'now' does not.
    assert timedelta(seconds=2.5) <= later - now < timedelta(seconds=3.5)
    # The database's clock is this machine's, in UTC (a generous bound: only the zone is in question).
    assert abs(now - datetime.now(UTC)) < timedelta(hours=1)
