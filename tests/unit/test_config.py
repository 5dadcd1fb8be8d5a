"""Settings: exactly the documented names, one-line errors naming the setting, secrets never shown."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from bot.config import BOUNDS, EXPECTED, ConfigError, Settings, database_path, load_settings
from bot.core.rules.instances import BackupFormat
from bot.database_url import PostgresUrl

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
    assert settings.bot_ops_port is None
    assert settings.bot_watch_interval == 300
    assert settings.bot_lease_ttl == 30
    assert settings.bot_retention_days == 90
    assert settings.bot_clouds is None
    assert settings.dcs_cloud_name == "default"
    assert not settings.socket_mode


def test_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in BASE.items():
        monkeypatch.setenv(name.upper(), value)
    monkeypatch.setenv("BOT_POLL_INTERVAL", "0.5")
    monkeypatch.setenv("BOT_DEFAULT_FORMAT", "aof")
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9/api")
    monkeypatch.setenv("BOT_OPS_PORT", "9100")
    monkeypatch.setenv("BOT_WATCH_INTERVAL", "60")
    monkeypatch.setenv("BOT_LEASE_TTL", "10")
    monkeypatch.setenv("BOT_RETENTION_DAYS", "30")
    monkeypatch.setenv("DCS_CLOUD_NAME", "eu-de")
    settings = load_settings(None)
    assert (settings.bot_ops_port, settings.bot_watch_interval, settings.bot_lease_ttl) == (9100, 60, 10)
    assert (settings.bot_retention_days, settings.dcs_cloud_name) == (30, "eu-de")
    assert settings.bot_poll_interval == 0.5
    assert settings.bot_default_format == BackupFormat.AOF
    assert settings.slack_api_url == "http://127.0.0.1:9/api/"


def test_dot_env_file(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("\n".join(f"{k.upper()}={v}" for k, v in BASE.items()) + "\nPORT=4000\n")
    assert load_settings(env).port == 4000


PYDANTIC_WORDING = ("Input should", "type=", "errors.pydantic.dev", "Field required", "Value error")
SECRETS = ("xoxb-1-secret", "signing-secret-value", "SK-very-secret")


def problems_of(**values: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, **{k: v for k, v in values.items() if v is not None})
    lines = caught.value.problems
    assert str(caught.value).splitlines() == lines
    for line in lines:
        assert re.match(r"^[A-Z_]+: \S", line), line
        assert "\n" not in line
        assert not any(wording in line for wording in PYDANTIC_WORDING), line
        assert not any(secret in line for secret in SECRETS), line
    return lines


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"slack_bot_token": None}, "SLACK_BOT_TOKEN"),
        ({"slack_bot_token": "xoxp-user"}, "SLACK_BOT_TOKEN"),
        ({"slack_signing_secret": None}, "SLACK_SIGNING_SECRET"),
        ({"slack_app_token": "nope"}, "SLACK_APP_TOKEN"),
        ({"slack_api_url": "http://slack.example/api/"}, "SLACK_API_URL"),
        ({"dcs_endpoint": "dcs.example"}, "DCS_ENDPOINT"),
        ({"dcs_endpoint": None}, "DCS_ENDPOINT"),
        ({"dcs_project_id": ""}, "DCS_PROJECT_ID"),
        ({"dcs_project_id": "my-project"}, "DCS_PROJECT_ID"),
        ({"dcs_secret_key": None}, "DCS_SECRET_KEY"),
        ({"dcs_access_key": None, "dcs_secret_key": None}, "DCS_ACCESS_KEY"),
        ({"dcs_access_key": None, "dcs_secret_key": None, "dcs_username": "u"}, "DCS_IAM_ENDPOINT"),
        ({"dcs_timeout": "0"}, "DCS_TIMEOUT"),
        ({"dcs_cloud_name": "EU_DE"}, "DCS_CLOUD_NAME"),
        ({"bot_poll_interval": "-1"}, "BOT_POLL_INTERVAL"),
        ({"bot_poll_interval": "soon"}, "BOT_POLL_INTERVAL"),
        ({"bot_default_format": "zip"}, "BOT_DEFAULT_FORMAT"),
        ({"bot_log_format": "xml"}, "BOT_LOG_FORMAT"),
        ({"bot_retention_days": "1.5"}, "BOT_RETENTION_DAYS"),
        ({"port": "70000"}, "PORT"),
        ({"bot_ops_port": "0"}, "BOT_OPS_PORT"),
        ({"bot_ops_port": "3000"}, "BOT_OPS_PORT"),
    ],
)
def test_problems_name_the_setting_and_what_a_valid_value_looks_like(
    changes: dict[str, Any], named: str
) -> None:
    lines = problems_of(**(BASE | changes))
    assert lines[0].startswith(f"{named}: "), lines
    assert "must" in lines[0] or "required" in lines[0], lines


def test_the_endpoint_error_reads_as_documented() -> None:
    assert problems_of(**(BASE | {"dcs_endpoint": "dcs.example"})) == [
        "DCS_ENDPOINT: must be an https URL like https://dcs.eu-de.otc.t-systems.com"
    ]


def test_every_problem_is_reported_at_once_one_line_each_in_the_order_of_the_settings() -> None:
    lines = problems_of(
        **BASE
        | {
            "slack_signing_secret": None,
            "dcs_endpoint": "ftp://dcs.example",
            "dcs_project_id": "abc",
            "bot_confirm_ttl": "1e12",
            "bot_log_format": "xml",
        }
    )
    assert [line.split(":")[0] for line in lines] == [
        "SLACK_SIGNING_SECRET",
        "DCS_ENDPOINT",
        "DCS_PROJECT_ID",
        "BOT_CONFIRM_TTL",
        "BOT_LOG_FORMAT",
    ]
    assert "not '1e12'" in lines[3]


def test_placeholders_of_the_example_file_are_refused_without_showing_them() -> None:
    lines = problems_of(
        **BASE
        | {
            "slack_bot_token": "xoxb-replace-me",
            "slack_signing_secret": "replace-me",
            "dcs_project_id": "replace-with-your-project-id",
            "dcs_access_key": "replace-with-access-key-id",
            "dcs_secret_key": "replace-with-secret-access-key",
        }
    )
    assert [line.split(":")[0] for line in lines] == [
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "DCS_PROJECT_ID",
        "DCS_ACCESS_KEY",
        "DCS_SECRET_KEY",
    ]
    assert all("still the placeholder from .env.example; must be" in line for line in lines)
    assert not any("replace-" in line for line in lines)


def test_the_project_id_is_32_hex_characters() -> None:
    upper = "0123456789ABCDEF0123456789ABCDEF"
    assert load_settings(None, **BASE | {"dcs_project_id": upper}).dcs_project_id == upper.lower()
    for wrong in ("0123456789abcdef0123456789abcde", "0123456789abcdef0123456789abcdeg", "eu-de"):
        [line] = problems_of(**BASE | {"dcs_project_id": wrong})
        assert line.startswith("DCS_PROJECT_ID: must be 32 hex characters like "), line


@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_every_number_is_bounded(name: str) -> None:
    bounds = BOUNDS[name]
    ok = BASE | ({"port": "3001"} if name == "bot_ops_port" else {})
    assert getattr(load_settings(None, **ok | {name: str(bounds.low)}), name) == bounds.low
    assert getattr(load_settings(None, **ok | {name: str(bounds.high)}), name) == bounds.high
    step = 1 if bounds.whole else bounds.low / 2
    for wrong in ("inf", "-inf", "nan", "1e12", str(bounds.high + step), str(bounds.low - step)):
        [line] = problems_of(**ok | {name: wrong})
        assert line == f"{name.upper()}: {bounds.describe()} (not {wrong!r})", line


def test_a_confirmation_ttl_that_overflows_the_clock_is_refused() -> None:
    # 1e12 seconds (31 700 years) used to pass and then fail every command with "something went wrong".
    [line] = problems_of(**BASE | {"bot_confirm_ttl": 1e12})
    assert line.startswith("BOT_CONFIRM_TTL: must be a number of seconds from 0.1 to 3600")


def test_the_default_format_takes_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_DEFAULT_FORMAT", "AOF")
    monkeypatch.setenv("BOT_LOG_FORMAT", "JSON")
    settings = load_settings(None, **BASE)
    assert settings.bot_default_format == BackupFormat.AOF
    assert settings.bot_log_format == "json"


def test_plain_http_only_on_this_machine() -> None:
    for url in ("http://127.0.0.1:8090", "http://localhost:8090/", "http://[::1]:8090"):
        assert load_settings(None, **BASE | {"dcs_endpoint": url}).dcs_endpoint == url.rstrip("/")
    [line] = problems_of(
        **BASE
        | {
            "dcs_iam_endpoint": "http://iam.example",
            "dcs_username": "u",
            "dcs_password": "p",
            "dcs_domain": "d",
        }
    )
    assert line == "DCS_IAM_ENDPOINT: must be an https URL like https://iam.eu-de.otc.t-systems.com"


def test_several_clouds_come_from_the_clouds_file_alone() -> None:
    slack = {k: v for k, v in BASE.items() if k.startswith("slack_")}
    settings = load_settings(None, **slack, bot_clouds="clouds.toml")
    assert settings.bot_clouds == Path("clouds.toml")
    assert settings.dcs_endpoint == "" and settings.dcs_project_id == ""

    [line] = problems_of(**BASE | {"bot_clouds": "clouds.toml", "dcs_cloud_name": "eu-de"})
    assert line.startswith(
        "BOT_CLOUDS: cannot be combined with DCS_ENDPOINT, DCS_PROJECT_ID, DCS_ACCESS_KEY, "
        "DCS_SECRET_KEY, DCS_CLOUD_NAME"
    ), line
    # DCS_TIMEOUT still applies to every cloud that sets no timeout of its own.
    assert load_settings(None, **slack, bot_clouds="clouds.toml", dcs_timeout="20").dcs_timeout == 20


def test_the_single_cloud_has_a_name() -> None:
    assert load_settings(None, **BASE | {"dcs_cloud_name": "eu-de"}).dcs_cloud_name == "eu-de"
    assert load_settings(None, **BASE | {"dcs_cloud_name": ""}).dcs_cloud_name == "default"
    [line] = problems_of(**BASE | {"dcs_cloud_name": "x" * 33})
    assert line.startswith("DCS_CLOUD_NAME: must be 1 to 32 characters of a-z, 0-9 and -")


def test_secrets_never_appear_in_error_lines() -> None:
    values = BASE | {
        "slack_bot_token": "xoxp-s3cr3t-one",
        "slack_app_token": "nope-s3cr3t-two",
        "dcs_secret_key": "replace-s3cr3t-three",
        "dcs_password": "replace-s3cr3t-four",
    }
    with pytest.raises(ConfigError) as caught:
        load_settings(None, **values)
    assert "s3cr3t" not in str(caught.value)
    assert len(caught.value.problems) >= 4


def test_every_setting_says_what_a_valid_value_looks_like() -> None:
    assert set(EXPECTED) == set(Settings.model_fields)


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


def test_the_example_file_lists_every_setting() -> None:
    example = (Path(__file__).resolve().parents[2] / ".env.example").read_text(encoding="utf-8")
    listed = set(re.findall(r"^(?:# )?([A-Z][A-Z_]+)=", example, re.MULTILINE))
    assert listed == {name.upper() for name in Settings.model_fields}


# --- BOT_DATABASE: a path (SQLite) or a PostgreSQL URL -------------------------------------------------

DATABASE_PASSWORD = "pg-pass%2Fword"  # percent-encoded in the URL: "pg-pass/word"


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_a_postgres_url_selects_postgres_and_its_password_never_shows(scheme: str) -> None:
    url = f"{scheme}://bot:{DATABASE_PASSWORD}@db.internal:6432/dcs_bot?sslmode=require"
    settings = load_settings(None, **BASE, bot_database=url)

    database = settings.bot_database
    assert isinstance(database, PostgresUrl)
    assert (database.host, database.port, database.user, database.database) == (
        "db.internal",
        6432,
        "bot",
        "dcs_bot",
    )
    assert database.secret() == url
    shown = [str(database), repr(database), repr(settings), str(settings), settings.model_dump_json()]
    for text in shown:
        assert "pg-pass" not in text
    assert str(database) == f"{scheme}://bot:***@db.internal:6432/dcs_bot?sslmode=require"
    assert {"pg-pass%2Fword", "pg-pass/word"} <= set(settings.secrets())
    assert database.redact('failed for "pg-pass/word"') == 'failed for "***"'


def test_a_path_keeps_sqlite() -> None:
    assert load_settings(None, **BASE, bot_database="/var/lib/dcs-bot/bot.sqlite3").bot_database == Path(
        "/var/lib/dcs-bot/bot.sqlite3"
    )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (f"postgresql://bot:{DATABASE_PASSWORD}@db.internal:6432", "has no database name"),
        (f"postgresql://bot:{DATABASE_PASSWORD}@:6432/bot", "has no host"),
        (f"postgresql://:{DATABASE_PASSWORD}@db/bot", "has no user name"),
        (f"postgresql://bot:{DATABASE_PASSWORD}@db:99999/bot", "has a port that is not a number"),
    ],
)
def test_an_incomplete_postgres_url_is_one_line_without_the_password(url: str, reason: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(None, **BASE, bot_database=url)
    [line] = raised.value.problems
    assert line.startswith(
        "BOT_DATABASE: must be the path of a SQLite file, like dcs-bot.sqlite3, or a PostgreSQL"
    )
    assert reason in line and "postgresql://user:password@host:5432/database" in line
    assert "pg-pass" not in line


def test_the_audit_command_reads_a_postgres_url_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_DATABASE", f"postgresql://bot:{DATABASE_PASSWORD}@db/bot")
    assert str(database_path()) == "postgresql://bot:***@db/bot"
    monkeypatch.setenv("BOT_DATABASE", f"postgresql://bot:{DATABASE_PASSWORD}@db")
    with pytest.raises(ConfigError, match=r"^BOT_DATABASE: must be .*has no database name") as raised:
        database_path()
    assert "pg-pass" not in str(raised.value)
