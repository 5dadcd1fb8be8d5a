"""The clouds file (INTERFACE §8, ``BOT_CLOUDS``): the DCS projects and regions one bot serves.

Each ``[[clouds]]`` table becomes a :class:`CloudSettings`. Like the policy, the file is checked whole:
every problem is named at once, one line each (``clouds[1] ('eu-nl').password: …``). Secrets are never in
the file — ``secret_key_env`` and ``password_env`` name environment variables (or ``.env`` entries), which
must be set. Without ``BOT_CLOUDS`` the ``DCS_*`` settings describe one cloud named ``DCS_CLOUD_NAME``
(:func:`clouds_of`).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from dotenv import dotenv_values
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, ValidationError

from bot.config import BOUNDS, EXPECTED, PLACEHOLDER, ConfigError, Settings, url_setting
from bot.file_locations import location

_CLOUD_NAME = re.compile(r"^[a-z0-9-]{1,32}$")
_PROJECT_ID = re.compile(r"^[0-9a-fA-F]{32}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PLAIN_VALUE = re.compile(r"^\S+$")

SETTING = "BOT_CLOUDS"

_AKSK = ("access_key", "secret_key_env")
_IAM = ("iam_endpoint", "username", "domain", "password_env")
#: Keys that would hold a secret, and the key that names its environment variable instead.
_SECRETS = {"secret_key": "secret_key_env", "password": "password_env"}


@dataclass(frozen=True)
class AkSk:
    """AK/SK request signing (``SDK-HMAC-SHA256``)."""

    access_key: str
    secret_key: SecretStr


@dataclass(frozen=True)
class Iam:
    """An IAM password exchanged for a project-scoped token."""

    iam_endpoint: str
    username: str
    domain: str
    password: SecretStr


@dataclass(frozen=True)
class CloudSettings:
    """One DCS project in one region, as the bot talks to it."""

    name: str
    endpoint: str
    project_id: str
    timeout: float
    auth: AkSk | Iam

    def secrets(self) -> list[str]:
        secret = self.auth.secret_key if isinstance(self.auth, AkSk) else self.auth.password
        return [secret.get_secret_value()]

    @property
    def auth_method(self) -> str:
        return "AK/SK signing" if isinstance(self.auth, AkSk) else "IAM password token"


class CloudsFileError(Exception):
    """The clouds file cannot be used; ``problems`` names each mistake, one line each."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.source = source
        self.problems = list(problems)


def _cloud_name(value: str) -> str:
    if not _CLOUD_NAME.match(value):
        raise ValueError(f"{value!r} is not a cloud name (1 to 32 of a-z, 0-9, -, like eu-de)")
    return value


def _endpoint(value: str) -> str:
    return url_setting(value, "dcs_endpoint")


def _iam_endpoint(value: str) -> str:
    return url_setting(value, "dcs_iam_endpoint")


def _project_id(value: str) -> str:
    if not _PROJECT_ID.match(value.strip()):
        raise ValueError(EXPECTED["dcs_project_id"])
    return value.strip().lower()


def _plain(value: str) -> str:
    if not _PLAIN_VALUE.match(value):
        raise ValueError("must be a single word without spaces")
    return value


def _env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise ValueError(f"{value!r} is not an environment variable name (like DCS_EU_DE_SECRET_KEY)")
    return value


_TIMEOUT = BOUNDS["dcs_timeout"]


class _CloudSchema(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, AfterValidator(_cloud_name)]
    endpoint: Annotated[str, AfterValidator(_endpoint)]
    project_id: Annotated[str, AfterValidator(_project_id)]
    timeout: float | None = Field(default=None, ge=_TIMEOUT.low, le=_TIMEOUT.high, allow_inf_nan=False)
    access_key: Annotated[str, AfterValidator(_plain)] | None = None
    secret_key_env: Annotated[str, AfterValidator(_env_name)] | None = None
    iam_endpoint: Annotated[str, AfterValidator(_iam_endpoint)] | None = None
    username: Annotated[str, AfterValidator(_plain)] | None = None
    domain: Annotated[str, AfterValidator(_plain)] | None = None
    password_env: Annotated[str, AfterValidator(_env_name)] | None = None


class _CloudsSchema(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    clouds: tuple[_CloudSchema, ...] = Field(min_length=1)


def parse_clouds(
    text: str,
    source: str = "clouds file",
    *,
    default_timeout: float,
    environ: Mapping[str, str] | None,
) -> list[CloudSettings]:
    """The clouds of ``text``, in file order, or a :class:`CloudsFileError` naming every problem at once.

    ``environ`` holds the variables the ``*_env`` keys name. With ``environ=None`` nothing is read from it
    (as ``check-policy`` does): the file's own shape is checked, and the secrets are left empty.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CloudsFileError(source, [f"not valid TOML: {error}"]) from None
    problems: list[str] = []
    schema: _CloudsSchema | None = None
    try:
        schema = _CloudsSchema.model_validate(data)
    except ValidationError as error:
        problems += _describe(error, data)
    clouds = data.get("clouds")
    tables = clouds if isinstance(clouds, list) else []
    seen: set[str] = set()
    for index, table in enumerate(tables):
        if not isinstance(table, dict):
            continue
        where = location(("clouds", index), data)
        problems += [f"{where}{problem}" for problem in _incoherence(table, environ)]
        name = table.get("name")
        if isinstance(name, str) and name in seen:
            problems.append(f"{where}.name: {name!r} is used twice; each cloud needs a name of its own")
        if isinstance(name, str):
            seen.add(name)
    if problems:
        raise CloudsFileError(source, sorted(problems, key=lambda line: _file_order(line, data)))
    assert schema is not None
    return [_settings(cloud, default_timeout, environ) for cloud in schema.clouds]


def read_clouds(
    path: Path, *, default_timeout: float, environ: Mapping[str, str] | None
) -> list[CloudSettings]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise CloudsFileError(str(path), [f"cannot read {path} ({error.strerror or error})"]) from None
    except UnicodeDecodeError:
        raise CloudsFileError(str(path), [f"{path} is not UTF-8 text"]) from None
    return parse_clouds(text, str(path), default_timeout=default_timeout, environ=environ)


def cloud_names(path: Path) -> frozenset[str]:
    """The names of the clouds of a valid clouds file, its secrets not read (for ``check-policy``)."""
    return frozenset(cloud.name for cloud in read_clouds(path, default_timeout=_TIMEOUT.high, environ=None))


def environment(env_file: Path | None = Path(".env")) -> dict[str, str]:
    """The variables ``*_env`` keys may name: the environment over the ``.env`` file (as for settings)."""
    values: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        values = {key: value for key, value in dotenv_values(env_file).items() if value is not None}
    return values | dict(os.environ)


def clouds_of(
    settings: Settings, environ: Mapping[str, str] | None = None, env_file: Path | None = Path(".env")
) -> list[CloudSettings]:
    """Every cloud the bot serves: those of ``BOT_CLOUDS``, or the one the ``DCS_*`` settings describe.

    A problem of the clouds file raises :class:`ConfigError`, one ``BOT_CLOUDS: …`` line each.
    """
    if settings.bot_clouds is None:
        return [_single_cloud(settings)]
    try:
        return read_clouds(
            settings.bot_clouds,
            default_timeout=settings.dcs_timeout,
            environ=environment(env_file) if environ is None else environ,
        )
    except CloudsFileError as error:
        raise ConfigError(*(f"{SETTING}: {problem}" for problem in error.problems)) from None


def _single_cloud(settings: Settings) -> CloudSettings:
    auth: AkSk | Iam
    if settings.dcs_access_key is not None and settings.dcs_secret_key is not None:
        auth = AkSk(settings.dcs_access_key, settings.dcs_secret_key)
    else:
        assert settings.dcs_iam_endpoint is not None
        assert settings.dcs_username is not None
        assert settings.dcs_password is not None
        assert settings.dcs_domain is not None
        auth = Iam(
            settings.dcs_iam_endpoint, settings.dcs_username, settings.dcs_domain, settings.dcs_password
        )
    return CloudSettings(
        name=settings.dcs_cloud_name,
        endpoint=settings.dcs_endpoint,
        project_id=settings.dcs_project_id,
        timeout=settings.dcs_timeout,
        auth=auth,
    )


def _settings(
    cloud: _CloudSchema, default_timeout: float, environ: Mapping[str, str] | None
) -> CloudSettings:
    def secret(name: str | None) -> SecretStr:
        return SecretStr("" if environ is None or name is None else environ[name])

    auth: AkSk | Iam
    if cloud.access_key is not None:
        assert cloud.secret_key_env is not None
        auth = AkSk(cloud.access_key, secret(cloud.secret_key_env))
    else:
        assert cloud.iam_endpoint is not None and cloud.username is not None and cloud.domain is not None
        auth = Iam(cloud.iam_endpoint, cloud.username, cloud.domain, secret(cloud.password_env))
    return CloudSettings(
        name=cloud.name,
        endpoint=cloud.endpoint,
        project_id=cloud.project_id,
        timeout=default_timeout if cloud.timeout is None else cloud.timeout,
        auth=auth,
    )


def _incoherence(table: Mapping[str, Any], environ: Mapping[str, str] | None) -> list[str]:
    """Problems across the keys of one table: which credentials go together, and the variables named."""
    problems = []
    given = {key for key in (*_AKSK, *_IAM) if table.get(key) not in (None, "")}
    aksk = [key for key in _AKSK if key in given]
    iam = [key for key in _IAM if key in given]
    if aksk and iam:
        problems.append(
            ": give one way to authenticate, AK/SK (access_key, secret_key_env) or IAM (iam_endpoint, "
            "username, domain, password_env), not both"
        )
    for group, present in ((_AKSK, aksk), (_IAM, iam)):
        for key in group:
            literal = next((secret for secret, named in _SECRETS.items() if named == key), None)
            if literal in table:
                continue  # the line about the literal secret already says to name a variable instead
            if present and key not in given and not (aksk and iam):
                problems.append(f".{key}: required together with {', '.join(present)}")
    if not given and not any(key in table for key in _SECRETS):
        problems.append(
            ": no authentication; give access_key and secret_key_env, or iam_endpoint, username, domain "
            "and password_env"
        )
    for key in ("secret_key_env", "password_env"):
        name = table.get(key)
        if environ is None or not isinstance(name, str) or not _ENV_NAME.match(name):
            continue
        value = environ.get(name, "")
        if not value.strip():
            problems.append(f".{key}: the environment variable {name} is not set; set it to the secret")
        elif PLACEHOLDER in value.lower():
            problems.append(f".{key}: the environment variable {name} still holds a placeholder")
    return problems


def _describe(error: ValidationError, data: object) -> list[str]:
    problems = []
    details = error.errors(include_url=False)
    for detail in details:
        loc = detail["loc"]
        if detail["type"] == "too_short" and any(
            other is not detail and other["loc"][: len(loc)] == loc for other in details
        ):
            continue  # the list is only empty because its tables were refused, and those are reported
        key = next((part for part in reversed(loc) if isinstance(part, str)), "")
        where = location(loc, data)
        problems.append(f"{where}: {_plain_message(detail['type'], detail['msg'], key)}")
    return problems


def _plain_message(error_type: str, message: str, key: str) -> str:
    """The problem in this module's words, never pydantic's; a value is never repeated (it may be secret)."""
    if key in _SECRETS and error_type == "extra_forbidden":
        return f"secrets are never in this file; name an environment variable with {_SECRETS[key]}"
    if key == "timeout":
        return _TIMEOUT.describe()
    match error_type:
        case "extra_forbidden":
            return "unknown key"
        case "missing" if key == "clouds":
            return "required, one [[clouds]] table for each cloud"
        case "missing":
            return "required key is missing"
        case "too_short":
            return "required, one [[clouds]] table for each cloud"
        case "string_type":
            return "must be a string (in quotes)"
        case "tuple_type" | "list_type":
            return "must be [[clouds]] tables"
        case "model_type" | "dict_type" | "model_attributes_type":
            return "must be a table"
    return message.removeprefix("Value error, ")


_PLACE = re.compile(r"^clouds\[(\d+)\]")


def _file_order(problem: str, data: Mapping[str, object]) -> int:
    place = _PLACE.match(problem)
    return int(place[1]) if place else -1
