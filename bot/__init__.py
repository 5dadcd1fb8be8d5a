"""dcs-backup-bot: back up Distributed Cache Service (managed Redis) instances from Slack."""

__version__ = "0.1.0"
