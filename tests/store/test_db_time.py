"""Stored times: one fixed text format, read back as aware UTC times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.store.database import _TIME_FORMAT, from_db_time, to_db_time


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
