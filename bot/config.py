"""Settings from the environment (or ``.env``), exactly the names of INTERFACE §5."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import (
    AnyHttpUrl,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.core.rules.instances import BackupFormat


class ConfigError(Exception):
    """A setting is missing or invalid; ``str()`` is one line that names it."""


def _http_url(value: str) -> str:
    AnyHttpUrl(value)
    return value.rstrip("/")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    slack_bot_token: SecretStr
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"

    dcs_endpoint: str
    dcs_project_id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+$")
    dcs_access_key: str | None = None
    dcs_secret_key: SecretStr | None = None
    dcs_iam_endpoint: str | None = None
    dcs_username: str | None = None
    dcs_password: SecretStr | None = None
    dcs_domain: str | None = None
    dcs_timeout: float = Field(default=30.0, gt=0)

    bot_policy: Path = Path("policy.toml")
    bot_database: Path = Path("dcs-bot.sqlite3")
    bot_poll_interval: float = Field(default=15.0, gt=0)
    bot_confirm_ttl: float = Field(default=300.0, gt=0)
    bot_approval_ttl: float = Field(default=3600.0, gt=0)
    bot_default_format: BackupFormat = BackupFormat.RDB
    bot_log_format: Literal["text", "json"] = "text"
    port: int = Field(default=3000, ge=0, le=65535)

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token_shape(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith("xoxb-"):
            raise ValueError("must be a bot token starting with xoxb-")
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _app_token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            return None
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError("must be an app-level token starting with xapp-")
        return value

    @field_validator("slack_signing_secret", "dcs_secret_key", "dcs_password")
    @classmethod
    def _blank_secret_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value() else None

    @field_validator("dcs_access_key", "dcs_iam_endpoint", "dcs_username", "dcs_domain")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        # slack_sdk joins method names onto the base URL, which must end with "/".
        return _http_url(value) + "/"

    @field_validator("dcs_endpoint", "dcs_iam_endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

    @model_validator(mode="after")
    def _modes_are_complete(self) -> Self:
        if self.slack_app_token is None and self.slack_signing_secret is None:
            raise ValueError(
                "SLACK_SIGNING_SECRET: required in HTTP mode (or set SLACK_APP_TOKEN for Socket Mode)"
            )
        aksk = {"DCS_ACCESS_KEY": self.dcs_access_key, "DCS_SECRET_KEY": self.dcs_secret_key}
        iam = {
            "DCS_IAM_ENDPOINT": self.dcs_iam_endpoint,
            "DCS_USERNAME": self.dcs_username,
            "DCS_PASSWORD": self.dcs_password,
            "DCS_DOMAIN": self.dcs_domain,
        }
        for group in (aksk, iam):
            given = [name for name, value in group.items() if value is not None]
            missing = [name for name, value in group.items() if value is None]
            if given and missing:
                raise ValueError(f"{missing[0]}: required together with {', '.join(given)}")
        if self.dcs_access_key is None and self.dcs_username is None:
            raise ValueError(
                "DCS_ACCESS_KEY: no DCS authentication configured "
                "(set DCS_ACCESS_KEY and DCS_SECRET_KEY, "
                "or DCS_IAM_ENDPOINT, DCS_USERNAME, DCS_PASSWORD, DCS_DOMAIN)"
            )
        return self

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    def secrets(self) -> list[str]:
        """Every secret value, so logging can redact them wherever they might appear."""
        values = [self.slack_bot_token, self.slack_signing_secret, self.slack_app_token]
        values += [self.dcs_secret_key, self.dcs_password]
        return [value.get_secret_value() for value in values if value is not None]


class _DatabaseOnly(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    bot_database: Path = Path("dcs-bot.sqlite3")


def database_path() -> Path:
    """``BOT_DATABASE`` alone, for commands (like ``audit``) that need no complete configuration."""
    return _DatabaseOnly().bot_database


_OAUTH_TRAP = ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET")


def load_settings(env_file: Path | None = Path(".env"), **overrides: Any) -> Settings:
    """Reads the settings; any problem becomes one :class:`ConfigError` line naming the setting."""
    if all(os.environ.get(name) for name in _OAUTH_TRAP):
        # slack-bolt silently switches to multi-workspace OAuth and drops the bot token when both are set.
        raise ConfigError(
            "SLACK_CLIENT_ID: unset it (and SLACK_CLIENT_SECRET); this bot serves one workspace"
        )
    try:
        return Settings(_env_file=env_file, **overrides)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error)) from None


def describe_validation_error(error: ValidationError) -> str:
    problems = []
    for detail in error.errors(include_url=False, include_input=False):
        location = [str(part) for part in detail["loc"]]
        message = detail["msg"].removeprefix("Value error, ")
        if location:
            problems.append(f"{location[0].upper()}: {_plain(detail['type'], message)}")
        else:
            problems.append(message)
    return "; ".join(problems)


def _plain(error_type: str, message: str) -> str:
    if error_type == "missing":
        return "required setting is missing"
    return message
