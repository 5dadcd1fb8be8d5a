"""Pick offers (:mod:`bot.core.rules.pick_offer`): one row per pick offered to a person in a channel, the
newest offer of a pick replacing the one before (one ``INSERT … ON CONFLICT DO UPDATE`` each), so that any
replica can finish the command a ``backup_pick`` click picks from."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.core.rules.grammar import BackupCommand, ListCommand
from bot.core.rules.instances import BackupFormat
from bot.core.rules.pick_offer import OfferedCommand, PickOffer
from bot.store.database import from_db_time, to_db_time
from bot.store.engine import Database, Row

_BACKUP, _LIST = "backup", "list"
# Rows deleted per statement when pruning, so that no single write holds the database for long.
_PRUNE_BATCH = 500


class SqlPickOffers:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def offer(self, offer: PickOffer, picks: Sequence[str]) -> None:
        if not picks:
            return
        row = _command_row(offer.command) | {
            "user_id": offer.user_id,
            "channel_id": offer.channel_id,
            "offered_at": to_db_time(offer.offered_at),
        }
        async with self._db.transaction() as transaction:
            for pick in dict.fromkeys(picks):
                await transaction.execute(
                    "INSERT INTO pick_offers (user_id, channel_id, pick, kind, instance, backup_format,"
                    " remark, dry_run, offered_at) VALUES (:user_id, :channel_id, :pick, :kind, :instance,"
                    " :backup_format, :remark, :dry_run, :offered_at)"
                    " ON CONFLICT (user_id, channel_id, pick) DO UPDATE SET kind = excluded.kind,"
                    " instance = excluded.instance, backup_format = excluded.backup_format,"
                    " remark = excluded.remark, dry_run = excluded.dry_run, offered_at = excluded.offered_at",
                    row | {"pick": pick},
                )

    async def offered(self, user_id: str, channel_id: str, pick: str, *, since: datetime) -> PickOffer | None:
        row = await self._db.fetch_one(
            "SELECT * FROM pick_offers WHERE user_id = :user_id AND channel_id = :channel_id"
            " AND pick = :pick AND offered_at >= :since",
            {"user_id": user_id, "channel_id": channel_id, "pick": pick, "since": to_db_time(since)},
        )
        if row is None:
            return None
        return PickOffer(user_id, channel_id, _command_of(row), from_db_time(row["offered_at"]))

    async def prune(self, before: datetime) -> int:
        parameters = {"before": to_db_time(before), "batch": _PRUNE_BATCH}
        pruned = 0
        while True:
            count = await self._db.execute(
                "DELETE FROM pick_offers WHERE (user_id, channel_id, pick) IN (SELECT user_id, channel_id,"
                " pick FROM pick_offers WHERE offered_at < :before LIMIT :batch)",
                parameters,
            )
            pruned += count
            if count < _PRUNE_BATCH:
                return pruned


def _command_row(command: OfferedCommand) -> dict[str, object]:
    if isinstance(command, ListCommand):
        return {
            "kind": _LIST,
            "instance": command.instance,
            "backup_format": None,
            "remark": None,
            "dry_run": 0,
        }
    return {
        "kind": _BACKUP,
        "instance": command.instance,
        "backup_format": None if command.backup_format is None else command.backup_format.value,
        "remark": command.remark,
        "dry_run": int(command.dry_run),
    }


def _command_of(row: Row) -> OfferedCommand:
    if row["kind"] == _LIST:
        return ListCommand(row["instance"])
    backup_format = row["backup_format"]
    return BackupCommand(
        row["instance"],
        None if backup_format is None else BackupFormat(backup_format),
        row["remark"],
        dry_run=bool(row["dry_run"]),
    )
