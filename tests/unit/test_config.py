"""Settings: exactly the documented names, one-line errors naming the setting, secrets never shown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.config import ConfigError, database_path, load_settings
from bot.core.rules.instances import BackupFormat

BASE: dict[str, Any] = {
    "slack_bot_token": "xoxb-1-secret",
    "slack_signing_secret": "signing-secret-value",
    "dcs_endpoint": "https://dcs.eu-de.otc.t-systems.com",
    "dcs_project_id": "0123456789abcdef0123456789abcdef",
    "dcs_access_key": "AKEXAMPLE",
    "dcs_secret_key": "SK-very-secret",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET", "BOT_DATABASE"):
        monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    settings = load_settings(None, **BASE)
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.dcs_timeout == 30
    assert settings.bot_policy == Path("policy.toml")
    assert settings.bot_database == Path("dcs-bot.sqlite3")
    assert settings.bot_poll_interval == 15
    assert settings.bot_confirm_ttl == 300
    assert settings.bot_approval_ttl == 3600
    assert settings.bot_default_format == BackupFormat.RDB
    assert settings.bot_log_format == "text"
    assert settings.port == 3000
    assert not settings.socket_mode


def test_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in BASE.items():
        monkeypatch.setenv(name.upper(), value)
    monkeypatch.setenv("BOT_POLL_INTERVAL", "0.5")
    monkeypatch.setenv("BOT_DEFAULT_FORMAT", "aof")
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9/api")
    settings = load_settings(None)
    assert settings.bot_poll_interval == 0.5
    assert settings.bot_default_format == BackupFormat.AOF
    assert settings.slack_api_url == "http://127.0.0.1:9/api/"


def test_dot_env_file(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("\n".join(f"{k.upper()}={v}" for k, v in BASE.items()) + "\nPORT=4000\n")
    assert load_settings(env).port == 4000


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"slack_bot_token": None}, "SLACK_BOT_TOKEN"),
        ({"slack_bot_token": "xoxp-user"}, "SLACK_BOT_TOKEN"),
        ({"slack_signing_secret": None}, "SLACK_SIGNING_SECRET"),
        ({"slack_app_token": "nope"}, "SLACK_APP_TOKEN"),
        ({"dcs_endpoint": "dcs.example"}, "DCS_ENDPOINT"),
        ({"dcs_project_id": ""}, "DCS_PROJECT_ID"),
        ({"dcs_secret_key": None}, "DCS_SECRET_KEY"),
        ({"dcs_access_key": None, "dcs_secret_key": None}, "DCS_ACCESS_KEY"),
        ({"dcs_access_key": None, "dcs_secret_key": None, "dcs_username": "u"}, "DCS_IAM_ENDPOINT"),
        ({"dcs_timeout": "0"}, "DCS_TIMEOUT"),
        ({"bot_poll_interval": "-1"}, "BOT_POLL_INTERVAL"),
        ({"bot_default_format": "zip"}, "BOT_DEFAULT_FORMAT"),
        ({"bot_log_format": "xml"}, "BOT_LOG_FORMAT"),
        ({"port": "70000"}, "PORT"),
    ],
)
def test_problems_are_one_line_naming_the_setting(changes: dict[str, Any], named: str) -> None:
    values = {k: v for k, v in (BASE | changes).items() if v is not None}
    with pytest.raises(ConfigError) as caught:
        load_settings(None, **values)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(named)
    for secret in ("xoxb-1-secret", "signing-secret-value", "SK-very-secret"):
        assert secret not in message


def test_socket_mode_needs_no_signing_secret() -> None:
    values = {k: v for k, v in BASE.items() if k != "slack_signing_secret"}
    settings = load_settings(None, **values, slack_app_token="xapp-1-abc")
    assert settings.socket_mode


def test_iam_password_authentication() -> None:
    values = {k: v for k, v in BASE.items() if not k.startswith("dcs_access") and k != "dcs_secret_key"}
    settings = load_settings(
        None,
        **values,
        dcs_iam_endpoint="https://iam.eu-de.otc.t-systems.com",
        dcs_username="bot",
        dcs_password="pw-secret",
        dcs_domain="OTC-EU-DE-0001",
    )
    assert "pw-secret" in settings.secrets()
    assert "pw-secret" not in repr(settings)


def test_oauth_variables_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_CLIENT_ID", "1")
    monkeypatch.setenv("SLACK_CLIENT_SECRET", "2")
    with pytest.raises(ConfigError, match="SLACK_CLIENT_ID"):
        load_settings(None, **BASE)


def test_database_path_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_DATABASE", "/tmp/x.sqlite3")
    assert database_path() == Path("/tmp/x.sqlite3")
