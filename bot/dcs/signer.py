"""``SDK-HMAC-SHA256`` request signing (Huawei Cloud / Open Telekom Cloud API gateway).

Mirrors ``huaweicloudsdkcore.signer.Signer``: the key is the raw secret key, every header present at
signing time is signed except those whose names contain ``_``, the canonical URI always ends in ``/``
and the query is sorted by key, then value. The emulator uses :func:`verify` on the server side.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote

ALGORITHM = "SDK-HMAC-SHA256"
DATE_HEADER = "X-Sdk-Date"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"

QueryValue = str | int | bool


def sdk_date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(DATE_FORMAT)


def _encode(text: str) -> str:
    return quote(text, safe="~")


def _query_text(value: QueryValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def canonical_query(params: Iterable[tuple[str, QueryValue]]) -> str:
    """The canonical (and wire) form of a query: pairs sorted by raw key, then raw value, then encoded."""
    pairs = sorted((key, _query_text(value)) for key, value in params)
    return "&".join(f"{_encode(key)}={_encode(value)}" for key, value in pairs)


def canonical_uri(path: str) -> str:
    encoded = "/".join(_encode(segment) for segment in unquote(path).split("/"))
    return encoded if encoded.endswith("/") else encoded + "/"


def signed_header_names(headers: Mapping[str, str]) -> list[str]:
    return sorted(name.lower() for name in headers if "_" not in name and name.lower() != "authorization")


def canonical_request(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    signed_headers: Iterable[str],
    body: bytes,
) -> str:
    """``query`` is already canonical; ``headers`` must hold every name in ``signed_headers``."""
    by_name = {name.lower(): value for name, value in headers.items()}
    names = list(signed_headers)
    header_lines = "".join(f"{name}:{by_name[name].strip()}\n" for name in names)
    return "\n".join(
        [
            method.upper(),
            canonical_uri(path),
            query,
            header_lines,
            ";".join(names),
            hashlib.sha256(body).hexdigest(),
        ]
    )


def string_to_sign(date: str, request: str) -> str:
    return f"{ALGORITHM}\n{date}\n{hashlib.sha256(request.encode()).hexdigest()}"


def signature(secret_key: str, date: str, request: str) -> str:
    return hmac.new(secret_key.encode(), string_to_sign(date, request).encode(), hashlib.sha256).hexdigest()


def authorization(
    *,
    access_key: str,
    secret_key: str,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
) -> str:
    """The ``Authorization`` value for a request whose headers already include ``Host`` and ``X-Sdk-Date``."""
    names = signed_header_names(headers)
    date = next(value for name, value in headers.items() if name.lower() == DATE_HEADER.lower())
    request = canonical_request(method, path, query, headers, names, body)
    return (
        f"{ALGORITHM} Access={access_key}, SignedHeaders={';'.join(names)}, "
        f"Signature={signature(secret_key, date, request)}"
    )


_AUTHORIZATION = re.compile(
    rf"^{ALGORITHM} Access=(?P<access>[^,\s]+), SignedHeaders=(?P<headers>[^,\s]+), "
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)


@dataclass(frozen=True)
class ParsedAuthorization:
    access_key: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str) -> ParsedAuthorization | None:
    match = _AUTHORIZATION.match(value.strip())
    if match is None:
        return None
    return ParsedAuthorization(
        access_key=match["access"],
        signed_headers=tuple(match["headers"].split(";")),
        signature=match["signature"],
    )


def verify(
    *,
    secret_key: str,
    parsed: ParsedAuthorization,
    method: str,
    path: str,
    raw_query: str,
    headers: Mapping[str, str],
    body: bytes,
) -> bool:
    """Server-side check: recompute the signature from the request as received."""
    by_name = {name.lower(): value for name, value in headers.items()}
    if (
        any(name not in by_name for name in parsed.signed_headers)
        or "x-sdk-date" not in parsed.signed_headers
    ):
        return False
    query = canonical_query(_split_query(raw_query))
    request = canonical_request(method, path, query, by_name, parsed.signed_headers, body)
    expected = signature(secret_key, by_name["x-sdk-date"], request)
    return hmac.compare_digest(expected, parsed.signature)


def _split_query(raw_query: str) -> list[tuple[str, QueryValue]]:
    pairs: list[tuple[str, QueryValue]] = []
    for part in raw_query.split("&") if raw_query else []:
        key, _, value = part.partition("=")
        pairs.append((unquote(key), unquote(value)))
    return pairs
