"""The clouds file (INTERFACE §8): typed clouds, and every problem named at once, one line each."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.clouds_file import (
    AkSk,
    CloudSettings,
    CloudsFileError,
    Iam,
    cloud_names,
    clouds_of,
    parse_clouds,
    read_clouds,
)
from bot.config import ConfigError, load_settings

EU_DE = """
[[clouds]]
name = "eu-de"
endpoint = "https://dcs.eu-de.otc.t-systems.com"
project_id = "0123456789ABCDEF0123456789abcdef"
timeout = 20
access_key = "AKEXAMPLE0000000"
secret_key_env = "DCS_EU_DE_SECRET_KEY"
"""
EU_NL = """
[[clouds]]
name = "eu-nl"
endpoint = "https://dcs.eu-nl.otc.t-systems.com/"
project_id = "fedcba9876543210fedcba9876543210"
iam_endpoint = "https://iam.eu-nl.otc.t-systems.com"
username = "dcs-backup-bot"
domain = "my-account"
password_env = "DCS_EU_NL_PASSWORD"
"""
ENVIRON = {"DCS_EU_DE_SECRET_KEY": "sk-de", "DCS_EU_NL_PASSWORD": "pw-nl"}


def problems(text: str, environ: dict[str, str] | None = ENVIRON) -> list[str]:
    with pytest.raises(CloudsFileError) as caught:
        parse_clouds(text, default_timeout=30, environ=environ)
    return caught.value.problems


def test_two_clouds_in_file_order_with_their_own_credentials_and_timeouts() -> None:
    de, nl = parse_clouds(EU_DE + EU_NL, default_timeout=30, environ=ENVIRON)
    assert (de.name, de.endpoint, de.project_id, de.timeout) == (
        "eu-de",
        "https://dcs.eu-de.otc.t-systems.com",
        "0123456789abcdef0123456789abcdef",
        20,
    )
    assert isinstance(de, CloudSettings) and isinstance(de.auth, AkSk)
    assert de.auth.access_key == "AKEXAMPLE0000000"
    assert isinstance(de.auth, AkSk) and de.auth.secret_key.get_secret_value() == "sk-de"
    assert nl.endpoint == "https://dcs.eu-nl.otc.t-systems.com"
    assert nl.timeout == 30  # DCS_TIMEOUT when the cloud sets none
    assert isinstance(nl.auth, Iam) and nl.auth.password.get_secret_value() == "pw-nl"
    assert (nl.auth.iam_endpoint, nl.auth.username, nl.auth.domain) == (
        "https://iam.eu-nl.otc.t-systems.com",
        "dcs-backup-bot",
        "my-account",
    )
    assert de.secrets() == ["sk-de"] and nl.auth_method == "IAM password token"
    assert "sk-de" not in repr(de) and "pw-nl" not in repr(nl)


def test_a_literal_secret_is_named_with_the_key_to_use_instead() -> None:
    text = EU_DE.replace('secret_key_env = "DCS_EU_DE_SECRET_KEY"', 'secret_key = "oops-secret"')
    text += EU_NL.replace('password_env = "DCS_EU_NL_PASSWORD"', 'password = "oops-password"')
    lines = problems(text)
    assert lines == [
        "clouds[0] ('eu-de').secret_key: secrets are never in this file; name an environment variable "
        "with secret_key_env",
        "clouds[1] ('eu-nl').password: secrets are never in this file; name an environment variable "
        "with password_env",
    ]
    assert not any("oops" in line for line in lines)


def test_every_problem_at_once_one_line_each() -> None:
    text = """
    colour = "blue"

    [[clouds]]
    name = "EU_DE"
    endpoint = "http://dcs.example.com"
    project_id = "1234"
    timeout = 0
    access_key = "AK"
    secret_key_env = "UNSET_VARIABLE"
    region = "eu-de"

    [[clouds]]
    name = "eu-nl"
    endpoint = "https://dcs.eu-nl.otc.t-systems.com"
    project_id = "fedcba9876543210fedcba9876543210"
    iam_endpoint = "https://iam.eu-nl.otc.t-systems.com"
    username = "bot"

    [[clouds]]
    name = "eu-nl"
    project_id = "fedcba9876543210fedcba9876543210"

    [[clouds]]
    name = "both"
    endpoint = "https://dcs.eu-nl.otc.t-systems.com"
    project_id = "fedcba9876543210fedcba9876543210"
    access_key = "AK"
    secret_key_env = "DCS_EU_DE_SECRET_KEY"
    iam_endpoint = "https://iam.eu-nl.otc.t-systems.com"
    """
    assert problems(text) == [
        "colour: unknown key",
        "clouds[0] ('EU_DE').name: 'EU_DE' is not a cloud name (1 to 32 of a-z, 0-9, -, like eu-de)",
        "clouds[0] ('EU_DE').endpoint: must be an https URL like https://dcs.eu-de.otc.t-systems.com",
        "clouds[0] ('EU_DE').project_id: must be 32 hex characters like 0123456789abcdef0123456789abcdef "
        "(console → My Credentials → Projects)",
        "clouds[0] ('EU_DE').timeout: must be a number of seconds from 0.1 to 300",
        "clouds[0] ('EU_DE').region: unknown key",
        "clouds[0] ('EU_DE').secret_key_env: the environment variable UNSET_VARIABLE is not set; "
        "set it to the secret",
        "clouds[1] ('eu-nl').domain: required together with iam_endpoint, username",
        "clouds[1] ('eu-nl').password_env: required together with iam_endpoint, username",
        "clouds[2] ('eu-nl').endpoint: required key is missing",
        "clouds[2] ('eu-nl'): no authentication; give access_key and secret_key_env, or iam_endpoint, "
        "username, domain and password_env",
        "clouds[2] ('eu-nl').name: 'eu-nl' is used twice; each cloud needs a name of its own",
        "clouds[3] ('both'): give one way to authenticate, AK/SK (access_key, secret_key_env) or IAM "
        "(iam_endpoint, username, domain, password_env), not both",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("clouds = [", "not valid TOML"),
        ("", "clouds: required, one [[clouds]] table for each cloud"),
        ("clouds = []", "clouds: required, one [[clouds]] table for each cloud"),
        ("clouds = 1", "clouds: must be [[clouds]] tables"),
        ("clouds = [1]", "clouds[0]: must be a table"),
        (EU_DE.replace("timeout = 20", "timeout = 'soon'"), "timeout: must be a number of seconds"),
        (EU_DE.replace("DCS_EU_DE_SECRET_KEY", "not a name"), "'not a name' is not an environment variable"),
        (EU_DE.replace("AKEXAMPLE0000000", "AK EXAMPLE"), "access_key: must be a single word without spaces"),
        (EU_DE.replace('name = "eu-de"', "name = 7"), "clouds[0].name: must be a string (in quotes)"),
    ],
)
def test_single_problems(text: str, expected: str) -> None:
    assert any(expected in line for line in problems(text)), problems(text)


def test_plain_http_only_on_this_machine() -> None:
    for host in ("127.0.0.1:8090", "localhost", "[::1]:9000"):
        text = EU_DE.replace("https://dcs.eu-de.otc.t-systems.com", f"http://{host}")
        [cloud] = parse_clouds(text, default_timeout=30, environ=ENVIRON)
        assert cloud.endpoint == f"http://{host}"


def test_a_placeholder_in_the_named_variable_is_refused() -> None:
    [line] = problems(EU_DE, {"DCS_EU_DE_SECRET_KEY": "replace-me"})
    assert line == (
        "clouds[0] ('eu-de').secret_key_env: the environment variable DCS_EU_DE_SECRET_KEY "
        "still holds a placeholder"
    )


def test_without_an_environment_only_the_file_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "clouds.toml"
    path.write_text(EU_DE + EU_NL, encoding="utf-8")
    assert cloud_names(path) == {"eu-de", "eu-nl"}
    with pytest.raises(CloudsFileError, match="cannot read"):
        read_clouds(tmp_path / "nope.toml", default_timeout=30, environ={})
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(CloudsFileError, match="not UTF-8"):
        cloud_names(path)


SLACK = {"slack_bot_token": "xoxb-1", "slack_signing_secret": "s"}


def test_the_dcs_settings_are_one_cloud_named_dcs_cloud_name() -> None:
    settings = load_settings(
        None,
        **SLACK,
        dcs_endpoint="https://dcs.eu-de.otc.t-systems.com",
        dcs_project_id="0123456789abcdef0123456789abcdef",
        dcs_access_key="AK",
        dcs_secret_key="SK",
        dcs_timeout="12",
        dcs_cloud_name="eu-de",
    )
    [cloud] = clouds_of(settings)
    assert (cloud.name, cloud.endpoint, cloud.timeout) == ("eu-de", "https://dcs.eu-de.otc.t-systems.com", 12)
    assert isinstance(cloud.auth, AkSk) and cloud.auth.access_key == "AK"

    iam = load_settings(
        None,
        **SLACK,
        dcs_endpoint="https://dcs.eu-de.otc.t-systems.com",
        dcs_project_id="0123456789abcdef0123456789abcdef",
        dcs_iam_endpoint="https://iam.eu-de.otc.t-systems.com",
        dcs_username="u",
        dcs_password="p",
        dcs_domain="d",
    )
    [cloud] = clouds_of(iam)
    assert cloud.name == "default" and isinstance(cloud.auth, Iam)


def test_bot_clouds_problems_are_config_errors_naming_bot_clouds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "clouds.toml"
    path.write_text(EU_DE + EU_NL.replace("password_env", "password"), encoding="utf-8")
    settings = load_settings(None, **SLACK, bot_clouds=str(path), dcs_timeout="7")
    with pytest.raises(ConfigError) as caught:
        clouds_of(settings, ENVIRON)
    assert caught.value.problems == [
        "BOT_CLOUDS: clouds[1] ('eu-nl').password: secrets are never in this file; name an environment "
        "variable with password_env",
    ]

    path.write_text(EU_DE + EU_NL, encoding="utf-8")
    (tmp_path / ".env").write_text("DCS_EU_DE_SECRET_KEY=from-dotenv\n", encoding="utf-8")
    monkeypatch.setenv("DCS_EU_NL_PASSWORD", "from-environment")
    de, nl = clouds_of(settings, env_file=tmp_path / ".env")
    assert de.secrets() == ["from-dotenv"] and nl.secrets() == ["from-environment"]
    assert nl.timeout == 7


def test_the_example_clouds_file_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "clouds.toml"
    de, nl = read_clouds(example, default_timeout=30, environ=ENVIRON)
    assert (de.name, de.timeout, isinstance(de.auth, AkSk)) == ("eu-de", 20, True)
    assert (nl.name, nl.timeout, isinstance(nl.auth, Iam)) == ("eu-nl", 30, True)
