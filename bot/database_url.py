"""``BOT_DATABASE`` as a PostgreSQL URL, whose password never shows: not in ``str`` or ``repr``, not in the
settings' errors, and :meth:`PostgresUrl.redact` takes it out of any text (a driver's error) before
that text is shown."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

SCHEMES = ("postgresql", "postgres")
EXAMPLE = "postgresql://user:password@host:5432/database"
_HIDDEN = "***"


def is_postgres_url(text: str) -> bool:
    """Whether ``text`` means PostgreSQL rather than a SQLite file (a path never starts like this)."""
    return text.startswith(tuple(f"{scheme}://" for scheme in SCHEMES))


class PostgresUrl:
    """A checked ``postgresql://user:password@host:port/database`` URL (``postgres://`` too)."""

    __slots__ = ("_password", "_url", "database", "host", "port", "user")

    def __init__(self, url: str) -> None:
        """Raises ValueError, saying what is missing in words that never repeat the URL."""
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES:
            raise ValueError("must start with postgresql://")
        try:
            port = parts.port
        except ValueError:
            raise ValueError("has a port that is not a number from 0 to 65535") from None
        if not parts.hostname:
            raise ValueError("has no host")
        if not parts.username:
            raise ValueError("has no user name")
        database = unquote(parts.path.removeprefix("/"))
        if not database or "/" in database:
            raise ValueError("has no database name after the host")
        self._url = url
        self.host = parts.hostname
        self.port = port or 5432
        self.user = unquote(parts.username)
        self.database = database
        self._password = parts.password

    def secret(self) -> str:
        """The whole URL, password included: for the driver only."""
        return self._url

    def passwords(self) -> list[str]:
        """The password as written in the URL and decoded (for the log's redaction); none without one."""
        return sorted({self._password, unquote(self._password)}) if self._password else []

    def redact(self, text: str) -> str:
        """``text`` with the password (as written in the URL, and decoded) replaced by ``***``."""
        for form in self.passwords():
            text = text.replace(form, _HIDDEN)
        return text

    def __str__(self) -> str:
        return self.redact(self._url)

    def __repr__(self) -> str:
        return f"PostgresUrl({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PostgresUrl) and other._url == self._url

    def __hash__(self) -> int:
        return hash(self._url)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls._validate, serialization=core_schema.plain_serializer_function_ser_schema(str)
        )

    @classmethod
    def _validate(cls, value: object) -> PostgresUrl:
        if isinstance(value, PostgresUrl):
            return value
        if isinstance(value, str) and is_postgres_url(value.strip()):
            return cls(value.strip())
        raise ValueError("not a PostgreSQL URL")
