"""The database's clock, in the stored time format (:func:`bot.store.database.to_db_time`).

Leases and claims expire by the database's clock, not by any replica's, so that replicas whose clocks
disagree still agree on who holds what. These are the only SQL expressions for "now"; a PostgreSQL dialect
supplies its own (``to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')``,
plus ``make_interval(secs => …)`` for an offset).
"""

from __future__ import annotations

# SQLite's %f is seconds with milliseconds (05.123); three zeros make it the stored microseconds.
_SQLITE_NOW = "strftime('%Y-%m-%dT%H:%M:%f', 'now'{offset}) || '000Z'"


def db_now() -> str:
    """The database's current time."""
    return f"({_SQLITE_NOW.format(offset='')})"


def db_now_plus(parameter: str) -> str:
    """The database's current time plus the number of seconds bound to ``:parameter``."""
    offset = f", printf('%+.6f seconds', :{parameter})"
    return f"({_SQLITE_NOW.format(offset=offset)})"
