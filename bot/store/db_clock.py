"""The database's clock, in the stored time format (:func:`bot.store.database.to_db_time`), per dialect.

Leases and claims expire by the database's clock, not by any replica's, so that replicas whose clocks
disagree still agree on who holds what. These are the only SQL expressions for "now".
"""

from __future__ import annotations

from bot.store.engine import Dialect

# SQLite's %f is seconds with milliseconds (05.123); three zeros make it the stored microseconds.
_SQLITE_NOW = "strftime('%Y-%m-%dT%H:%M:%f', 'now'{offset}) || '000Z'"
# clock_timestamp(), not now(): now() stands still for the whole of a transaction.
_POSTGRES_NOW = "to_char((clock_timestamp(){offset}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"


def db_now(dialect: Dialect) -> str:
    """The database's current time."""
    if dialect == "postgresql":
        return f"({_POSTGRES_NOW.format(offset='')})"
    return f"({_SQLITE_NOW.format(offset='')})"


def db_now_plus(dialect: Dialect, parameter: str) -> str:
    """The database's current time plus the number of seconds (a float) bound to ``:parameter``."""
    if dialect == "postgresql":
        offset = f" + make_interval(secs => :{parameter})"
        return f"({_POSTGRES_NOW.format(offset=offset)})"
    offset = f", printf('%+.6f seconds', :{parameter})"
    return f"({_SQLITE_NOW.format(offset=offset)})"
