"""Plain-language meanings of DCS error codes (dcs-api.md §2 and §6)."""

from __future__ import annotations

# API error codes answered by CreateBackup and friends. Each DCS.40NN code has a legacy twin 1114000NN.
_API_HINTS: dict[str, str] = {
    "DCS.4096": "A backup of this instance is already running. Try again when it has finished.",
    "DCS.4097": "The instance is being restored. Try again when the restore has finished.",
    "DCS.4017": "Another job is still running on the instance. Try again later.",
    "DCS.4049": "The instance is not running, so it cannot be backed up now.",
    "DCS.4026": "The instance's current state does not allow this operation. Try again later.",
    "DCS.4117": "The instance is rolling back its version. Try again later.",
    "DCS.4095": "This instance does not support backup and restore.",
    "DCS.4086": "Only master/standby and cluster instances can be backed up.",
    "DCS.4007": "This instance type does not support backups.",
    "DCS.4027": "The operation is not supported on this node.",
    "DCS.4098": "The remark must be at most 128 characters.",
    "DCS.4061": "The instance ID is not valid.",
    "DCS.3022": "The instance does not exist (any more).",
    "DCS.4039": "A quota limit was reached.",
    "DCS.1001": "The bot's cloud credentials were rejected. Ask the bot's operators to check them.",
    "DCS.1002": "The bot's cloud token expired. Ask the bot's operators to check the IAM settings.",
    "DCS.1003": "The bot sent no cloud credentials. Ask the bot's operators to check the settings.",
    "DCS.1004": "The bot's project ID does not match its credentials. Ask the bot's operators.",
    "DCS.2003": "The bot's cloud account lacks permission (dcs:instance:backupData).",
    "DCS.3003": "The bot's cloud account lacks permission (dcs:instance:backupData).",
    "DCS.3002": "The bot's cloud account has read-only permission.",
    "DCS.5000": "DCS had an internal error. Try again in a few minutes.",
    "APIGW.0301": "The bot's access key or secret key was rejected. Ask the bot's operators to check them.",
    "APIGW.0303": "The bot's clock is more than 15 minutes off. Ask the bot's operators to sync it (NTP).",
}

_BY_STATUS: dict[int, str] = {
    401: "The bot's cloud credentials were rejected. Ask the bot's operators to check them.",
    403: "The bot's cloud account lacks permission for this.",
    404: "DCS does not know this instance (any more).",
    429: "DCS is throttling requests. Try again in a minute.",
}

# Record-level error codes of a failed backup (ListBackupRecords ``error_code``).
RECORD_ERRORS: dict[str, str] = {
    "dcs.08.0001": "the backup/restore tool failed to start",
    "dcs.08.0002": "the backup timed out",
    "dcs.08.0003": "the backup bucket could not be deleted",
    "dcs.08.0004": "the backup service could not obtain its AK/SK",
    "dcs.08.0005": "the backup bucket could not be created",
    "dcs.08.0006": "the size of the backup data could not be queried",
    "dcs.08.0007": "data could not be synchronised during restoration",
    "dcs.08.0008": "the scheduled backup did not run because the instance was busy with another task",
}


def _canonical(code: str) -> str:
    # Legacy codes 1114000NN and 11140100N are twins of DCS.40NN and DCS.100N.
    if code.isdigit() and code.startswith("1114000"):
        return f"DCS.40{code[-2:]}"
    if code.isdigit() and code.startswith("11140100"):
        return f"DCS.100{code[-1:]}"
    return code


def api_error_hint(error_code: str | None, status: int) -> str:
    if error_code:
        hint = _API_HINTS.get(_canonical(error_code))
        if hint is not None:
            return hint
    if status >= 500 or status == 0:
        return "DCS could not handle the request right now. Try again in a few minutes."
    return _BY_STATUS.get(status, "DCS refused the request.")


def record_error_meaning(error_code: str | None) -> str:
    if not error_code:
        return "DCS gave no reason"
    return RECORD_ERRORS.get(error_code.lower(), "an error DCS does not document")
