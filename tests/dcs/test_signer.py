"""The signer against every published vector and, property-based, against huaweicloudsdkcore's Signer."""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from hypothesis import given
from hypothesis import strategies as st

from bot.dcs import signer

HWSDK_HOST = "service.endpoint.myhuaweicloud.com"
HWSDK_HEADERS = {"X-Sdk-Date": "20200608T023900Z", "TEST_UNDERSCORE": "TEST_VALUE", "Host": HWSDK_HOST}

DCS_PROJECT = "0123456789abcdef0123456789abcdef"
DCS_INSTANCE = "11111111-2222-3333-4444-555555555555"
DCS_HEADERS = {
    "X-Sdk-Date": "20240102T030405Z",
    "Content-Type": "application/json",
    "X-Project-Id": DCS_PROJECT,
    "Host": "dcs.eu-de.otc.t-systems.com",
}
DCS_SIGNED = "content-type;host;x-project-id;x-sdk-date"


def _sign(
    access_key: str, secret_key: str, method: str, path: str, query: str, headers: dict[str, str], body: bytes
) -> str:
    return signer.authorization(
        access_key=access_key,
        secret_key=secret_key,
        method=method,
        path=path,
        query=query,
        headers=headers,
        body=body,
    )


@pytest.mark.parametrize(
    ("method", "body", "signature"),
    [
        ("GET", b"", "cfb4171acec81de07d50e53d57eb77edd537414d66ddb1d7d780f128e12cd842"),
        (
            "POST",
            b'{"name":"test","id":1}',
            "436b1ac0a1ae03705934bb70ef2f2e09f7bfed2117d731a38235053199323a1f",
        ),
    ],
)
def test_hwsdk_vectors(method: str, body: bytes, signature: str) -> None:
    query = signer.canonical_query([("size", 1)])

    value = _sign("AccessKey", "SecretKey", method, "/resources", query, dict(HWSDK_HEADERS), body)

    assert value == f"SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=host;x-sdk-date, Signature={signature}"


def test_hwsdk_canonical_query_vector() -> None:
    params: list[tuple[str, signer.QueryValue]] = [
        ("limit", 1),
        ("enable", True),
        ("test", "一 (&=?!#%.*)"),
        ("path", "/tmp/123"),
        ("multi", 1),
        ("multi", 2),
        ("multi", 3),
    ]

    assert signer.canonical_query(params) == (
        "enable=true&limit=1&multi=1&multi=2&multi=3&path=%2Ftmp%2F123"
        "&test=%E4%B8%80%20%28%26%3D%3F%21%23%25.%2A%29"
    )


def test_hwdoc_vpcs_vector() -> None:
    headers = {
        "Content-Type": "application/json",
        "Host": "service.region.example.com",
        "X-Sdk-Date": "20191115T033655Z",
    }
    path = "/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs"
    query = signer.canonical_query([("limit", 2), ("marker", "13551d6b-755d-4757-b956-536f674975c0")])
    names = signer.signed_header_names(headers)

    request = signer.canonical_request("GET", path, query, headers, names, b"")
    value = _sign(
        "QTWAOYTTINDUT2QVKYUC", "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc", "GET", path, query, headers, b""
    )

    assert hashlib.sha256(request.encode()).hexdigest() == (
        "b25362e603ee30f4f25e7858e8a7160fd36e803bb2dfe206278659d71a9bcd7a"
    )
    assert value == (
        "SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, SignedHeaders=content-type;host;x-sdk-date, "
        "Signature=7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe"
    )


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "signature"),
    [
        (
            "POST",
            f"/v2/{DCS_PROJECT}/instances/{DCS_INSTANCE}/backups",
            "",
            b'{"remark":"nightly","backup_format":"aof"}',
            "31f02c1b062be9b152b236ca4cac9fb128339429e8d3a42fc983c512044bc073",
        ),
        (
            "GET",
            f"/v2/{DCS_PROJECT}/instances",
            "name=redis-prod&name_equal=true",
            b"",
            "cba844cf51b881161df59fc1366178e2f9d3b925b58548d823b5f6c9d81313c8",
        ),
        (
            "GET",
            f"/v2/{DCS_PROJECT}/instances/{DCS_INSTANCE}/backups",
            "limit=10&offset=0",
            b"",
            "ec99ea68985f454a154c0c2373687fd9b3ceb970d22104933dfb45a5d8fd0be7",
        ),
    ],
)
def test_dcs_shaped_vectors(method: str, path: str, query: str, body: bytes, signature: str) -> None:
    value = _sign("AKEXAMPLE", "SKEXAMPLE", method, path, query, dict(DCS_HEADERS), body)

    assert value == f"SDK-HMAC-SHA256 Access=AKEXAMPLE, SignedHeaders={DCS_SIGNED}, Signature={signature}"


def test_dcs_backup_body_hash_matches_the_reference() -> None:
    body = b'{"remark":"nightly","backup_format":"aof"}'

    assert (
        hashlib.sha256(body).hexdigest() == "15941b751058d4dd6139134d1b45a73a79358c3e1c677f256e592c632520fddb"
    )


# --- property tests against the SDK

_ODD_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(" /+~%&=?#;:,@!$'()*[]é一\u00a0-_."),
        st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]),
    ),
    max_size=12,
)
_PATH_SEGMENT = st.text(
    alphabet=st.one_of(st.sampled_from(" +~%?#;:,@!$'()*é一-_."), st.sampled_from(string.ascii_letters)),
    max_size=10,
)
_HEADER_NAME = st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,15}", fullmatch=True)
_HEADER_VALUE = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)
_RESERVED_HEADERS = {"host", "x-sdk-date", "content-type", "authorization", "x-sdk-content-sha256"}


@dataclass(frozen=True)
class GeneratedRequest:
    method: str
    host: str
    path: str
    query: list[tuple[str, signer.QueryValue]]
    headers: dict[str, str]
    body: bytes

    def signed_by_us(self, access_key: str, secret_key: str) -> str:
        query = signer.canonical_query(self.query)
        return _sign(access_key, secret_key, self.method, self.path, query, dict(self.headers), self.body)

    def signed_by_sdk(self, access_key: str, secret_key: str) -> tuple[str, str]:
        request = SdkRequest(
            method=self.method,
            schema="https",
            host=self.host,
            resource_path=self.path,
            query_params=list(self.query),
            header_params=dict(self.headers),
            body=self.body,
        )
        Signer(BasicCredentials(access_key, secret_key)).sign(request)
        return str(request.header_params["Authorization"]), str(request.uri)


def _unique_names(headers: dict[str, str]) -> bool:
    return len({name.lower() for name in headers}) == len(headers)


@st.composite
def _queries(draw: st.DrawFn) -> list[tuple[str, signer.QueryValue]]:
    text_pairs: list[tuple[str, signer.QueryValue]] = list(
        draw(st.lists(st.tuples(_ODD_TEXT, _ODD_TEXT), max_size=6))
    )
    # The SDK sorts raw values, so repeated keys are only comparable when they hold strings.
    typed = draw(st.dictionaries(_ODD_TEXT, st.one_of(st.integers(), st.booleans()), max_size=3))
    text_keys = {key for key, _ in text_pairs}
    return text_pairs + [(key, value) for key, value in typed.items() if key not in text_keys]


@st.composite
def _requests(draw: st.DrawFn) -> GeneratedRequest:
    host = draw(st.sampled_from(["dcs.eu-de.otc.t-systems.com", "127.0.0.1:8443", "[::1]:9000"]))
    moment = draw(st.datetimes(min_value=datetime(2000, 1, 1), timezones=st.just(UTC)))
    extra = draw(
        st.dictionaries(_HEADER_NAME, _HEADER_VALUE, max_size=5)
        .filter(_unique_names)
        .filter(lambda headers: not _RESERVED_HEADERS & {name.lower() for name in headers})
    )
    headers = {"Host": host, "X-Sdk-Date": signer.sdk_date(moment), **extra}
    if draw(st.booleans()):
        headers["Content-Type"] = draw(st.sampled_from(["application/json", "application/json;charset=utf8"]))
    return GeneratedRequest(
        method=draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "get", "post"])),
        host=host,
        path="/" + "/".join(draw(st.lists(_PATH_SEGMENT, max_size=5))),
        query=draw(_queries()),
        headers=headers,
        body=draw(st.binary(max_size=64)),
    )


_KEYS = st.tuples(
    st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=20),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=40),
)


@given(request=_requests(), keys=_KEYS)
def test_agrees_with_the_sdk_signer(request: GeneratedRequest, keys: tuple[str, str]) -> None:
    access_key, secret_key = keys
    sdk_authorization, sdk_uri = request.signed_by_sdk(access_key, secret_key)

    assert request.signed_by_us(access_key, secret_key) == sdk_authorization
    query = signer.canonical_query(request.query)
    assert sdk_uri == (f"{request.path}?{query}" if query else request.path)


def test_underscore_headers_are_not_signed() -> None:
    headers = {"Host": "h", "X-Sdk-Date": "20240102T030405Z", "X_Custom": "1", "X-Custom": "2"}

    assert signer.signed_header_names(headers) == ["host", "x-custom", "x-sdk-date"]


# --- verify()


@dataclass(frozen=True)
class WireRequest:
    method: str
    path: str
    raw_query: str
    headers: dict[str, str]
    body: bytes


_BASE = WireRequest(
    method="POST",
    path=f"/v2/{DCS_PROJECT}/instances/{DCS_INSTANCE}/backups",
    raw_query="limit=10&name=a%20b%2Fc&offset=0",
    headers=dict(DCS_HEADERS),
    body=b'{"remark":"nightly","backup_format":"aof"}',
)


def _authorize(request: WireRequest) -> str:
    return _sign(
        "AKEXAMPLE",
        "SKEXAMPLE",
        request.method,
        request.path,
        request.raw_query,
        request.headers,
        request.body,
    )


def _verify(request: WireRequest, authorization: str, secret_key: str = "SKEXAMPLE") -> bool:
    parsed = signer.parse_authorization(authorization)
    assert parsed is not None
    return signer.verify(
        secret_key=secret_key,
        parsed=parsed,
        method=request.method,
        path=request.path,
        raw_query=request.raw_query,
        headers=request.headers,
        body=request.body,
    )


def test_verify_accepts_what_authorization_produced() -> None:
    assert _verify(_BASE, _authorize(_BASE))


@given(request=_requests())
def test_verify_accepts_generated_requests(request: GeneratedRequest) -> None:
    wire = WireRequest(
        method=request.method,
        path=request.path,
        raw_query=signer.canonical_query(request.query),
        headers=request.headers,
        body=request.body,
    )

    assert _verify(wire, _authorize(wire))


@pytest.mark.parametrize(
    "tampered",
    [
        pytest.param(replace(_BASE, body=b'{"remark":"nightly","backup_format":"rdb"}'), id="body"),
        pytest.param(replace(_BASE, path=_BASE.path.replace("backups", "restores")), id="path"),
        pytest.param(replace(_BASE, method="PUT"), id="method"),
        pytest.param(replace(_BASE, raw_query="limit=11&name=a%20b%2Fc&offset=0"), id="query-value"),
        pytest.param(replace(_BASE, raw_query="limit=10&name=a%20b%2Fc"), id="query-dropped"),
        pytest.param(replace(_BASE, headers={**_BASE.headers, "X-Project-Id": "f" * 32}), id="header"),
        pytest.param(replace(_BASE, headers={**_BASE.headers, "Host": "evil.example.com"}), id="host"),
        pytest.param(replace(_BASE, headers={**_BASE.headers, "X-Sdk-Date": "20240102T030406Z"}), id="date"),
    ],
)
def test_verify_rejects_tampering(tampered: WireRequest) -> None:
    assert not _verify(tampered, _authorize(_BASE))


def test_verify_rejects_a_wrong_secret_key() -> None:
    assert not _verify(_BASE, _authorize(_BASE), secret_key="SKOTHER")


def test_verify_rejects_a_signature_missing_a_signed_header() -> None:
    headers = {name: value for name, value in _BASE.headers.items() if name != "X-Project-Id"}

    assert not _verify(replace(_BASE, headers=headers), _authorize(_BASE))


def test_verify_rejects_a_signature_without_the_date() -> None:
    authorization = _authorize(_BASE).replace(DCS_SIGNED, "content-type;host;x-project-id")

    assert not _verify(_BASE, authorization)


@pytest.mark.parametrize(
    "value", ["", "Bearer abc", "SDK-HMAC-SHA256 Access=a, SignedHeaders=host, Signature=xyz"]
)
def test_parse_authorization_rejects_garbage(value: str) -> None:
    assert signer.parse_authorization(value) is None
