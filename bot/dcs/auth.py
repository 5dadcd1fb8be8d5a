"""How DCS requests are authenticated: AK/SK request signing or a cached IAM project token."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import aiohttp
import yarl
from pydantic import BaseModel, SecretStr, ValidationError

from bot.core.errors import DcsApiError, DcsError, DcsTransportError
from bot.dcs import signer
from bot.dcs.errors import NoAnswerError, api_error, describe_client_error

Clock = Callable[[], datetime]

_MIN_REFRESH_MARGIN = timedelta(minutes=5)
_REDACTED = "***"


def utc_now() -> datetime:
    return datetime.now(UTC)


def _secret(value: SecretStr | str) -> SecretStr:
    return value if isinstance(value, SecretStr) else SecretStr(value)


class DcsAuth(Protocol):
    """Adds authentication to one DCS request."""

    @property
    def refreshable(self) -> bool:
        """Whether a 401 may be cured by :meth:`invalidate` and one retry."""
        ...

    async def apply(self, method: str, url: yarl.URL, headers: dict[str, str], body: bytes) -> None:
        """Adds the auth headers to ``headers`` in place.

        ``url`` must carry its query already in canonical form (:func:`bot.dcs.signer.canonical_query`) and
        ``headers`` every header that is to be signed; ``body`` is exactly what will be sent.
        """
        ...

    def invalidate(self) -> None:
        """Forgets any cached credential, so the next :meth:`apply` obtains a fresh one."""
        ...


class AkSkAuth:
    """``SDK-HMAC-SHA256`` signing with a permanent access key / secret key pair."""

    def __init__(
        self,
        access_key: str,
        secret_key: SecretStr | str,
        project_id: str,
        *,
        clock: Clock = utc_now,
    ) -> None:
        self._access_key = access_key
        self._secret_key = _secret(secret_key)
        self._project_id = project_id
        self._clock = clock

    def __repr__(self) -> str:
        return f"AkSkAuth(access_key={self._access_key!r}, project_id={self._project_id!r})"

    @property
    def refreshable(self) -> bool:
        return False

    async def apply(self, method: str, url: yarl.URL, headers: dict[str, str], body: bytes) -> None:
        headers[signer.DATE_HEADER] = signer.sdk_date(self._clock())
        headers["Host"] = host_header(url)
        headers["X-Project-Id"] = self._project_id
        headers["Authorization"] = signer.authorization(
            access_key=self._access_key,
            secret_key=self._secret_key.get_secret_value(),
            method=method,
            path=url.raw_path,
            query=url.raw_query_string,
            headers=headers,
            body=body,
        )

    def invalidate(self) -> None:
        """A signature cannot go stale, so there is nothing to forget."""


def host_header(url: yarl.URL) -> str:
    """The ``Host`` value aiohttp sends for ``url``: the host, plus the port unless it is the default."""
    host = url.host_port_subcomponent
    if host is None:
        raise ValueError(f"{url} is not an absolute URL")
    return host


class _IamToken(BaseModel):
    expires_at: datetime
    issued_at: datetime | None = None


class _IamTokenDocument(BaseModel):
    token: _IamToken


@dataclass(frozen=True)
class _CachedToken:
    value: SecretStr
    refresh_at: datetime


@dataclass(frozen=True)
class TokenState:
    """What the bot knows of its IAM token, read without asking IAM (for the operations endpoints).

    ``refresh_at`` is when the cached token is to be replaced (None: no token cached); ``failure`` and
    ``failed_at`` describe the last request for a token when it failed (None once one succeeded)."""

    refresh_at: datetime | None
    usable: bool
    failure: str | None = None
    failed_at: datetime | None = None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def refresh_margin(lifetime: timedelta) -> timedelta:
    """How long before expiry to fetch a new token: 10 % of the lifetime, at least 5 min, at most half."""
    return min(max(_MIN_REFRESH_MARGIN, lifetime / 10), lifetime / 2)


class TokenAuth:
    """A project-scoped IAM token from user name and password, cached and refreshed before it expires."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        iam_endpoint: str,
        username: str,
        password: SecretStr | str,
        domain: str,
        project_id: str,
        timeout: float,
        *,
        clock: Clock = utc_now,
    ) -> None:
        self._session = session
        self._tokens_url = yarl.URL(iam_endpoint.rstrip("/") + "/v3/auth/tokens").with_query(nocatalog="true")
        if not self._tokens_url.absolute:
            raise ValueError(f"IAM endpoint {iam_endpoint!r} is not an absolute URL")
        self._username = username
        self._password = _secret(password)
        self._domain = domain
        self._project_id = project_id
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._clock = clock
        self._token: _CachedToken | None = None
        self._failure: tuple[datetime, str] | None = None
        self._fetching = asyncio.Lock()

    def __repr__(self) -> str:
        return (
            f"TokenAuth(iam_endpoint={str(self._tokens_url.origin())!r}, username={self._username!r}, "
            f"domain={self._domain!r}, project_id={self._project_id!r})"
        )

    @property
    def refreshable(self) -> bool:
        return True

    async def apply(self, method: str, url: yarl.URL, headers: dict[str, str], body: bytes) -> None:
        token = await self.token()
        headers["X-Auth-Token"] = token.get_secret_value()

    def invalidate(self) -> None:
        self._token = None

    def state(self) -> TokenState:
        """The cached token's state and the last failure to get one; never a call to IAM."""
        token, failure = self._token, self._failure
        return TokenState(
            refresh_at=None if token is None else token.refresh_at,
            usable=self._usable_token() is not None,
            failure=None if failure is None else failure[1],
            failed_at=None if failure is None else failure[0],
        )

    async def token(self) -> SecretStr:
        """The cached token, fetched first if there is none or it is about to expire."""
        cached = self._usable_token()
        if cached is not None:
            return cached
        async with self._fetching:
            # Whoever held the lock before us has probably just fetched one.
            cached = self._usable_token()
            if cached is None:
                try:
                    self._token = await self._fetch()
                except DcsError as error:
                    self._failure = (self._clock(), str(error) or type(error).__name__)
                    raise
                except (TimeoutError, asyncio.CancelledError):
                    # The caller's deadline (one DCS call's DCS_TIMEOUT) ended the request first.
                    self._failure = (self._clock(), "IAM did not answer in time")
                    raise
                self._failure = None
                cached = self._token.value
            return cached

    def _usable_token(self) -> SecretStr | None:
        token = self._token
        if token is None or self._clock() >= token.refresh_at:
            return None
        return token.value

    async def _fetch(self) -> _CachedToken:
        fetched_at = self._clock()
        status, headers, body = await self._post_credentials()
        if not 200 <= status < 300:
            raise self._iam_error(status, headers, body)
        value = headers.get("X-Subject-Token")
        if not value:
            raise DcsTransportError(f"IAM answered HTTP {status} without an X-Subject-Token header")
        lifetime = self._lifetime(body, fetched_at)
        return _CachedToken(SecretStr(value), fetched_at + lifetime - refresh_margin(lifetime))

    async def _post_credentials(self) -> tuple[int, Mapping[str, str], bytes]:
        try:
            async with self._session.post(
                self._tokens_url,
                data=self._credentials_document(),
                headers={"Content-Type": "application/json;charset=utf8"},
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                return response.status, response.headers.copy(), await response.read()
        except TimeoutError:
            raise NoAnswerError(f"IAM did not answer within {self._timeout.total:g} s") from None
        except aiohttp.ClientError as exc:
            # Not chained, so nothing of the request can surface in a logged traceback.
            raise NoAnswerError(f"IAM is unreachable: {describe_client_error(exc)}") from None

    def _credentials_document(self) -> bytes:
        user = {
            "name": self._username,
            "password": self._password.get_secret_value(),
            "domain": {"name": self._domain},
        }
        document = {
            "auth": {
                "identity": {"methods": ["password"], "password": {"user": user}},
                "scope": {"project": {"id": self._project_id}},
            }
        }
        return json.dumps(document, separators=(",", ":")).encode()

    @staticmethod
    def _lifetime(body: bytes, fetched_at: datetime) -> timedelta:
        try:
            token = _IamTokenDocument.model_validate_json(body).token
        except ValidationError:
            raise DcsTransportError("IAM token response has no readable token.expires_at") from None
        # Measured on IAM's own clock when it tells us the issue time, so local clock skew does not matter.
        issued_at = _aware(token.issued_at) if token.issued_at is not None else fetched_at
        lifetime = _aware(token.expires_at) - issued_at
        if lifetime <= timedelta(0):
            raise DcsTransportError("IAM issued a token that has already expired")
        return lifetime

    def _iam_error(self, status: int, headers: Mapping[str, str], body: bytes) -> DcsApiError:
        error = api_error(status, headers, body, service="IAM")
        # IAM should never echo the password, but an intermediate proxy might.
        message = redact(error.error_msg, [self._password.get_secret_value()])
        return DcsApiError(
            status,
            error.error_code,
            f"IAM refused a token for user {self._username!r}: {message}",
            request_id=error.request_id,
            retry_after=error.retry_after,
            hint=error.hint,
        )


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    return text
