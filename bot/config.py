"""Settings from the environment (or ``.env``), exactly the names of INTERFACE §5.

Every problem is found in one pass and told on a line of its own that names the setting and says what a
valid value looks like. Values of secrets never appear in those lines, and neither does a library's
wording.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import (
    AnyHttpUrl,
    Field,
    ModelWrapValidatorHandler,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.core.rules.instances import BackupFormat
from bot.database_url import EXAMPLE, PostgresUrl, is_postgres_url


class ConfigError(Exception):
    """One or more settings are missing or invalid: ``problems`` holds one line for each, naming it."""

    def __init__(self, *problems: str) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class Bounds:
    """The documented range of a number setting."""

    low: float
    high: float
    unit: str = "seconds"
    whole: bool = False

    def describe(self) -> str:
        kind = "a whole number of" if self.whole else "a number of"
        return f"must be {kind} {self.unit} from {_number(self.low)} to {_number(self.high)}"


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


#: Every number setting and its range (README's Configuration section lists the same).
BOUNDS: dict[str, Bounds] = {
    "dcs_timeout": Bounds(0.1, 300),
    "bot_poll_interval": Bounds(0.01, 3600),
    "bot_confirm_ttl": Bounds(0.1, 3600),
    "bot_approval_ttl": Bounds(0.1, 604800),
    "bot_watch_interval": Bounds(0.01, 86400),
    "bot_lease_ttl": Bounds(0.1, 3600),
    "bot_retention_days": Bounds(1, 3650, unit="days", whole=True),
    "port": Bounds(0, 65535, unit="port", whole=True),
    "bot_ops_port": Bounds(1, 65535, unit="port", whole=True),
}


def _bounded(name: str, default: float | None) -> Any:
    bounds = BOUNDS[name]
    if bounds.whole:
        return Field(default=default, ge=int(bounds.low), le=int(bounds.high))
    return Field(default=default, ge=bounds.low, le=bounds.high, allow_inf_nan=False)


PLACEHOLDER = "replace-"
_PROJECT_ID = re.compile(r"^[0-9a-fA-F]{32}$")
_CLOUD_NAME = re.compile(r"^[a-z0-9-]{1,32}$")
_PLAIN_VALUE = re.compile(r"^\S+$")

#: What a valid value of each setting looks like; every error line about a setting says this.
EXPECTED: dict[str, str] = {
    "slack_bot_token": "must be the bot token (xoxb-…) from OAuth & Permissions → Bot User OAuth Token",
    "slack_signing_secret": "must be the signing secret from Basic Information → App Credentials",
    "slack_app_token": "must be an app-level token (xapp-…) with connections:write, or unset for HTTP mode",
    "slack_api_url": "must be an https URL like https://slack.com/api/",
    "dcs_endpoint": "must be an https URL like https://dcs.eu-de.otc.t-systems.com",
    "dcs_project_id": "must be 32 hex characters like 0123456789abcdef0123456789abcdef "
    "(console → My Credentials → Projects)",
    "dcs_access_key": "must be an access key ID (console → My Credentials → Access Keys)",
    "dcs_secret_key": "must be the secret access key of DCS_ACCESS_KEY",
    "dcs_iam_endpoint": "must be an https URL like https://iam.eu-de.otc.t-systems.com",
    "dcs_username": "must be the IAM user name, like dcs-backup-bot",
    "dcs_password": "must be the IAM user's password",
    "dcs_domain": "must be the account (domain) name the IAM user belongs to, like OTC-EU-DE-00000000001",
    "dcs_cloud_name": "must be 1 to 32 characters of a-z, 0-9 and -, like eu-de",
    "bot_policy": "must be the path of the policy file, like policy.toml",
    "bot_database": "must be the path of a SQLite file, like dcs-bot.sqlite3, "
    f"or a PostgreSQL URL like {EXAMPLE}",
    "bot_default_format": "must be aof or rdb",
    "bot_log_format": "must be text or json",
    "bot_clouds": "must be the path of a clouds file, like clouds.toml",
} | {name: bounds.describe() for name, bounds in BOUNDS.items()}

_AKSK = ("dcs_access_key", "dcs_secret_key")
_IAM = ("dcs_iam_endpoint", "dcs_username", "dcs_password", "dcs_domain")
#: Settings that describe the single cloud, and so cannot be combined with BOT_CLOUDS.
_SINGLE_CLOUD = ("dcs_endpoint", "dcs_project_id", *_AKSK, *_IAM, "dcs_cloud_name")


def _env(field: str) -> str:
    return field.upper()


def _is_set(value: object) -> bool:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, str):
        return bool(value.strip())
    return value is not None


def url_setting(value: str, field: str) -> str:
    """An https URL (plain http only on this machine, for the stand-ins), without a trailing slash."""
    text = value.strip()
    try:
        url = AnyHttpUrl(text)
    except ValidationError:
        raise ValueError(EXPECTED[field]) from None
    if url.scheme != "https" and not _loopback(url.host or ""):
        raise ValueError(EXPECTED[field])
    return text.rstrip("/")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    slack_bot_token: SecretStr
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"

    # Required unless BOT_CLOUDS describes the clouds; empty then (the combination check says which).
    dcs_endpoint: str = ""
    dcs_project_id: str = ""
    dcs_access_key: str | None = None
    dcs_secret_key: SecretStr | None = None
    dcs_iam_endpoint: str | None = None
    dcs_username: str | None = None
    dcs_password: SecretStr | None = None
    dcs_domain: str | None = None
    dcs_timeout: float = _bounded("dcs_timeout", 30.0)
    dcs_cloud_name: str = "default"

    bot_policy: Path = Path("policy.toml")
    # A URL when it starts like one; a path otherwise (left to right: every string is a path).
    bot_database: PostgresUrl | Path = Field(default=Path("dcs-bot.sqlite3"), union_mode="left_to_right")
    bot_clouds: Path | None = None
    bot_poll_interval: float = _bounded("bot_poll_interval", 15.0)
    bot_confirm_ttl: float = _bounded("bot_confirm_ttl", 300.0)
    bot_approval_ttl: float = _bounded("bot_approval_ttl", 3600.0)
    bot_watch_interval: float = _bounded("bot_watch_interval", 300.0)
    bot_lease_ttl: float = _bounded("bot_lease_ttl", 30.0)
    bot_retention_days: int = _bounded("bot_retention_days", 90)
    bot_default_format: BackupFormat = BackupFormat.RDB
    bot_log_format: Literal["text", "json"] = "text"
    port: int = _bounded("port", 3000)
    bot_ops_port: int | None = _bounded("bot_ops_port", None)

    @model_validator(mode="wrap")
    @classmethod
    def _every_problem_at_once(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        raw: Mapping[str, object] = data if isinstance(data, dict) else {}
        problems = _Problems()
        for field, value in raw.items():
            if field in EXPECTED and _is_placeholder(value):
                problems.add(field, f"still the placeholder from .env.example; {EXPECTED[field]}")
        settings: Self | None = None
        try:
            settings = handler(data)
        except ValidationError as error:
            for detail in error.errors(include_url=False):
                if detail["loc"] and str(detail["loc"][0]) in EXPECTED:
                    field = str(detail["loc"][0])
                    problems.add(field, _explain(field, detail["type"], detail["msg"], detail["input"]))
        problems.extend(_combination_problems({f for f, v in raw.items() if _is_set(v)}))
        if settings is not None:
            problems.extend(settings._value_problems())
        if problems:
            raise ConfigError(*problems.lines())
        assert settings is not None
        return settings

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token_shape(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith("xoxb-"):
            raise ValueError(EXPECTED["slack_bot_token"])
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _app_token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            return None
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError(EXPECTED["slack_app_token"])
        return value

    @field_validator("slack_signing_secret", "dcs_secret_key", "dcs_password")
    @classmethod
    def _blank_secret_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value() else None

    @field_validator("dcs_access_key", "dcs_username", "dcs_domain")
    @classmethod
    def _plain_value(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not _PLAIN_VALUE.match(value):
            raise ValueError("must not contain spaces")
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        # slack_sdk joins method names onto the base URL, which must end with "/".
        return url_setting(value, "slack_api_url") + "/"

    @field_validator("dcs_endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        return url_setting(value, "dcs_endpoint") if value.strip() else ""

    @field_validator("dcs_iam_endpoint")
    @classmethod
    def _iam_endpoint(cls, value: str | None) -> str | None:
        return url_setting(value, "dcs_iam_endpoint") if value and value.strip() else None

    @field_validator("dcs_project_id")
    @classmethod
    def _project_id(cls, value: str) -> str:
        text = value.strip()
        if text and not _PROJECT_ID.match(text):
            raise ValueError(EXPECTED["dcs_project_id"])
        return text.lower()

    @field_validator("dcs_cloud_name", mode="before")
    @classmethod
    def _cloud_name(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return "default"
        if not (isinstance(value, str) and _CLOUD_NAME.match(value)):
            raise ValueError(EXPECTED["dcs_cloud_name"])
        return value

    @field_validator("bot_default_format", "bot_log_format", mode="before")
    @classmethod
    def _any_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("bot_clouds", "bot_ops_port", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("bot_database", mode="before")
    @classmethod
    def _database(cls, value: object) -> object:
        return database_setting(value)

    def _value_problems(self) -> Iterable[tuple[str, str]]:
        """Problems that need the values of several settings, once each of them is valid."""
        if self.bot_ops_port is not None and self.bot_ops_port == self.port:
            yield "bot_ops_port", f"must differ from PORT ({self.port}), or be unset to share it"

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    def secrets(self) -> list[str]:
        """Every secret value, so logging can redact them wherever they might appear."""
        values = [self.slack_bot_token, self.slack_signing_secret, self.slack_app_token]
        values += [self.dcs_secret_key, self.dcs_password]
        secrets = [value.get_secret_value() for value in values if value is not None]
        if isinstance(self.bot_database, PostgresUrl):
            secrets += self.bot_database.passwords()
        return secrets


class _Problems:
    """At most one line per setting, in the order of the settings."""

    def __init__(self) -> None:
        self._found: dict[str, str] = {}

    def add(self, field: str, message: str) -> None:
        self._found.setdefault(field, message)

    def extend(self, problems: Iterable[tuple[str, str]]) -> None:
        for field, message in problems:
            self.add(field, message)

    def __bool__(self) -> bool:
        return bool(self._found)

    def lines(self) -> list[str]:
        order = list(Settings.model_fields)
        ranked = sorted(self._found.items(), key=lambda item: order.index(item[0]))
        return [f"{_env(field)}: {message}" for field, message in ranked]


def _is_placeholder(value: object) -> bool:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return isinstance(value, str) and PLACEHOLDER in value.lower()


def _explain(field: str, error_type: str, message: str, value: object) -> str:
    """A line in this module's words for one pydantic error; a secret's value is never shown."""
    if error_type == "missing":
        return f"required setting is missing; {EXPECTED[field]}"
    text = message.removeprefix("Value error, ") if error_type == "value_error" else EXPECTED[field]
    if field in _SHOWN and isinstance(value, str | int | float):
        text += f" (not {str(value)[:40]!r})"
    return text


#: Settings whose refused value is repeated in the error line (short, never secret, never a URL).
_SHOWN = frozenset(BOUNDS) | {"bot_default_format", "bot_log_format", "dcs_cloud_name"}


def _combination_problems(given: set[str]) -> Iterable[tuple[str, str]]:
    """Problems of which settings are set together; ``given`` are the fields with a non-blank value."""
    if "slack_app_token" not in given and "slack_signing_secret" not in given:
        yield (
            "slack_signing_secret",
            "required in HTTP mode (or set SLACK_APP_TOKEN for Socket Mode); "
            + EXPECTED["slack_signing_secret"],
        )
    if "bot_clouds" in given:
        clash = [_env(field) for field in _SINGLE_CLOUD if field in given]
        if clash:
            yield (
                "bot_clouds",
                f"cannot be combined with {', '.join(clash)}: the clouds file describes every cloud, "
                "so unset those (or unset BOT_CLOUDS for a single cloud)",
            )
        return
    for field in ("dcs_endpoint", "dcs_project_id"):
        if field not in given:
            yield field, f"required setting is missing; {EXPECTED[field]}"
    for group in (_AKSK, _IAM):
        present = [_env(field) for field in group if field in given]
        for field in group:
            if present and field not in given:
                yield field, f"required together with {', '.join(present)}; {EXPECTED[field]}"
    if not any(field in given for field in (*_AKSK, *_IAM)):
        yield (
            "dcs_access_key",
            "no DCS authentication configured; required: DCS_ACCESS_KEY and DCS_SECRET_KEY, "
            "or DCS_IAM_ENDPOINT, DCS_USERNAME, DCS_PASSWORD and DCS_DOMAIN",
        )


class _DatabaseOnly(BaseSettings):
    """The settings that commands other than ``serve`` read, without a complete configuration."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    bot_database: PostgresUrl | Path = Field(default=Path("dcs-bot.sqlite3"), union_mode="left_to_right")
    bot_clouds: Path | None = None

    @field_validator("bot_clouds", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("bot_database", mode="before")
    @classmethod
    def _database(cls, value: object) -> object:
        return database_setting(value)


def database_setting(value: object) -> object:
    """A ``postgresql://`` (or ``postgres://``) text as a checked :class:`PostgresUrl`; anything else as
    given (a path). A URL that lacks a part is refused saying which, never repeating the URL."""
    if isinstance(value, str) and is_postgres_url(value.strip()):
        try:
            return PostgresUrl(value.strip())
        except ValueError as error:
            raise ValueError(f"{EXPECTED['bot_database']} (this URL {error})") from None
    return value


def database_path() -> PostgresUrl | Path:
    """``BOT_DATABASE`` alone, for commands (like ``audit``) that need no complete configuration."""
    try:
        return _DatabaseOnly().bot_database
    except ValidationError as error:
        reason = error.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")
        raise ConfigError(f"BOT_DATABASE: {reason}") from None


def clouds_path() -> Path | None:
    """``BOT_CLOUDS`` alone, for ``check-policy``."""
    return _DatabaseOnly().bot_clouds


_OAUTH_TRAP = ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET")


def load_settings(env_file: Path | None = Path(".env"), **overrides: Any) -> Settings:
    """Reads the settings; every problem is one line of the :class:`ConfigError`, naming the setting."""
    if all(os.environ.get(name) for name in _OAUTH_TRAP):
        # slack-bolt silently switches to multi-workspace OAuth and drops the bot token when both are set.
        raise ConfigError(
            "SLACK_CLIENT_ID: unset it (and SLACK_CLIENT_SECRET); this bot serves one workspace"
        )
    return Settings(_env_file=env_file, **overrides)
