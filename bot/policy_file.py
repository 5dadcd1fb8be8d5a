"""Reading the policy file, and keeping the last good policy across reloads (SIGHUP)."""

from __future__ import annotations

import logging
import re
import tomllib
from pathlib import Path

from bot.core.policy import Policy, PolicyError, parse_policy, policy_warnings

log = logging.getLogger(__name__)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise PolicyError(str(path), [f"cannot read the file ({error.strerror or error})"]) from None
    except UnicodeDecodeError:
        raise PolicyError(str(path), ["the file is not UTF-8 text"]) from None


def read_policy(path: Path, known_clouds: frozenset[str] | None = None) -> Policy:
    return parse_policy(_read_text(path), str(path), known_clouds)


_CLOUD_NAME = re.compile(r"^[a-z0-9-]{1,32}$")


def read_cloud_names(path: Path) -> frozenset[str]:
    """The ``name`` of each ``[[clouds]]`` table of a clouds file (INTERFACE §8), for checking a policy.

    Only the names are read here; the rest of a clouds file is checked where the clouds are set up.
    """
    source = str(path)
    try:
        data = tomllib.loads(_read_text(path))
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(source, [f"not valid TOML: {error}"]) from None
    clouds = data.get("clouds")
    if not isinstance(clouds, list) or not clouds:
        raise PolicyError(source, ["clouds: required, one [[clouds]] table for each cloud"])
    names: list[str] = []
    problems = []
    for index, cloud in enumerate(clouds):
        name = cloud.get("name") if isinstance(cloud, dict) else None
        if name is None:
            problems.append(f"clouds[{index}].name: required key is missing")
        elif not isinstance(name, str) or not _CLOUD_NAME.match(name):
            problems.append(f"clouds[{index}].name: {name!r} is not a cloud name (1 to 32 of a-z, 0-9, -)")
        elif name in names:
            problems.append(f"clouds[{index}].name: {name!r} is used twice")
        else:
            names.append(name)
    if problems:
        raise PolicyError(source, problems)
    return frozenset(names)


def log_warnings(policy: Policy, path: Path) -> None:
    for warning in policy_warnings(policy):
        log.warning("policy %s: %s", path, warning)


class PolicyHolder:
    """The policy in force. A reload that fails keeps the last good policy and logs why.

    Warnings (see :func:`policy_warnings`) are never fatal: the server logs them once it has started
    (:meth:`log_warnings`), and a reload logs those of the new policy.
    """

    def __init__(self, path: Path, known_clouds: frozenset[str] | None = None) -> None:
        self.path = path
        self.known_clouds = known_clouds
        self._policy = read_policy(path, known_clouds)
        self.reloads = 0
        self.failed_reloads = 0

    def __call__(self) -> Policy:
        return self._policy

    def log_warnings(self) -> None:
        log_warnings(self._policy, self.path)

    def reload(self) -> bool:
        try:
            policy = read_policy(self.path, self.known_clouds)
        except PolicyError as error:
            self.failed_reloads += 1
            log.error("policy reload failed, keeping the previous policy: %s", error)
            return False
        self._policy = policy
        self.reloads += 1
        log.info(
            "policy reloaded from %s: %d rules, %d admins", self.path, len(policy.rules), len(policy.admins)
        )
        log_warnings(policy, self.path)
        return True
