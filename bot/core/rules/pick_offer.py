"""A pick offered: a command whose instance did not resolve to one ("did you mean", or a name found in
several places), kept so that a ``backup_pick`` click can finish it.

The button's value names only the instance picked (INTERFACE §11); everything else the person typed —
format, remark, ``--dry-run``, or that it was a ``list`` — is kept here, stored for the person and the
channel they typed it in, one record per pick offered (the newest offer of a pick to that person in that
channel wins). A click finds it only as the same person in the same channel, within :data:`PICK_LIFETIME`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final

from bot.core.rules.grammar import BackupCommand, ListCommand

#: How long a "did you mean" answer can be picked from: it answers the command just typed.
PICK_LIFETIME: Final = timedelta(hours=1)

OfferedCommand = BackupCommand | ListCommand


@dataclass(frozen=True)
class PickOffer:
    user_id: str
    channel_id: str
    #: The command as typed, its instance the unresolved name or ID.
    command: OfferedCommand
    offered_at: datetime

    def picked(self, pick: str) -> OfferedCommand:
        """The command the person typed, for the instance ``pick`` names."""
        return replace(self.command, instance=pick)


def usable_since(now: datetime) -> datetime:
    """The oldest offer a click at ``now`` may still use."""
    return now - PICK_LIFETIME
