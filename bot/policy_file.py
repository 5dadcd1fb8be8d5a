"""Reading the policy file, and keeping the last good policy across reloads (SIGHUP)."""

from __future__ import annotations

import logging
from pathlib import Path

from bot.core.rules.policy import Policy, PolicyError, parse_policy

log = logging.getLogger(__name__)


def read_policy(path: Path) -> Policy:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise PolicyError(str(path), [f"cannot read the file ({error.strerror or error})"]) from None
    except UnicodeDecodeError:
        raise PolicyError(str(path), ["the file is not UTF-8 text"]) from None
    return parse_policy(text, str(path))


class PolicyHolder:
    """The policy in force. A reload that fails keeps the last good policy and logs why."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._policy = read_policy(path)
        self.reloads = 0
        self.failed_reloads = 0

    def __call__(self) -> Policy:
        return self._policy

    def reload(self) -> bool:
        try:
            policy = read_policy(self.path)
        except PolicyError as error:
            self.failed_reloads += 1
            log.error("policy reload failed, keeping the previous policy: %s", error)
            return False
        self._policy = policy
        self.reloads += 1
        log.info(
            "policy reloaded from %s: %d rules, %d admins", self.path, len(policy.rules), len(policy.admins)
        )
        return True
