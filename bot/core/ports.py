"""Protocols the core needs from the outside world; adapters implement them."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from bot.core.instances import BackupFormat, BackupPage, Instance, InstancePage


class DcsApi(Protocol):
    """The four DCS v2 operations the bot uses. Errors raise :class:`bot.core.errors.DcsError`."""

    async def show_instance(self, instance_id: str) -> Instance: ...

    async def list_instances(
        self, *, name: str | None = None, exact: bool = False, limit: int = 100, offset: int = 0
    ) -> InstancePage: ...

    async def create_backup(self, instance_id: str, *, backup_format: BackupFormat, remark: str) -> str:
        """Starts a backup and returns its ``backup_id``."""
        ...

    async def list_backups(
        self,
        instance_id: str,
        *,
        begin_time: datetime | None = None,
        end_time: datetime | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> BackupPage: ...
