"""The DCS emulator over real HTTP on 127.0.0.1, with requests signed by bot.dcs.signer or IAM tokens."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict
from yarl import URL

from bot.core.rules.instances import BackupRecord
from bot.dcs.signer import QueryValue, authorization, canonical_query, sdk_date
from bot.dcs.wire import WireBackupRecord, WireInstance
from bot.standins.dcs.control import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_DOMAIN,
    DEFAULT_PASSWORD,
    DEFAULT_PROJECT_ID,
    DEFAULT_PROJECT_NAME,
    DEFAULT_SECRET_KEY,
    DEFAULT_USERNAME,
    Answer,
    ConnectionInfo,
    DcsEmulator,
    Endpoint,
    Fault,
    ManualClock,
    seed_demo_instances,
    serve,
    start_emulator,
)

START = datetime(2024, 5, 10, 8, 31, 16, 166000, tzinfo=UTC).timestamp()
WAITING = 10.0
BACKUPING = 40.0
PROJECT = DEFAULT_PROJECT_ID
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True)
class Reply:
    status: int
    headers: CIMultiDict[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Cloud:
    """A client for one served emulator: signs with AK/SK by default, or sends a token."""

    emulator: DcsEmulator
    clock: ManualClock
    session: aiohttp.ClientSession
    host: str

    async def send(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, QueryValue]] = (),
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> Reply:
        query_string = canonical_query(query)
        url = URL(f"http://{self.host}{path}" + (f"?{query_string}" if query_string else ""), encoded=True)
        async with self.session.request(method, url, data=body, headers=headers or {}) as response:
            return Reply(response.status, CIMultiDict(response.headers), await response.read())

    async def signed(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, QueryValue]] = (),
        body: bytes = b"",
        access_key: str = DEFAULT_ACCESS_KEY,
        secret_key: str = DEFAULT_SECRET_KEY,
        signed_at: float | None = None,
        project_header: str = PROJECT,
        wire_query: Sequence[tuple[str, QueryValue]] | None = None,
        wire_body: bytes | None = None,
    ) -> Reply:
        """``wire_*`` replace what is sent after signing, to tamper with a request."""
        moment = datetime.fromtimestamp(self.clock() if signed_at is None else signed_at, UTC)
        headers = {
            "Host": self.host,
            "X-Sdk-Date": sdk_date(moment),
            "Content-Type": "application/json",
            "X-Project-Id": project_header,
        }
        headers["Authorization"] = authorization(
            access_key=access_key,
            secret_key=secret_key,
            method=method,
            path=path,
            query=canonical_query(query),
            headers=headers,
            body=body,
        )
        return await self.send(
            method,
            path,
            query=query if wire_query is None else wire_query,
            body=body if wire_body is None else wire_body,
            headers=headers,
        )

    async def with_token(
        self, method: str, path: str, token: str, *, query: Sequence[tuple[str, QueryValue]] = ()
    ) -> Reply:
        return await self.send(method, path, query=query, headers={"X-Auth-Token": token})

    async def token_reply(self, payload: object, *, query: Sequence[tuple[str, QueryValue]] = ()) -> Reply:
        headers = {"Content-Type": "application/json;charset=utf8"}
        return await self.send(
            "POST", "/v3/auth/tokens", query=query, body=json.dumps(payload).encode(), headers=headers
        )

    async def token(self, **scope: str) -> str:
        reply = await self.token_reply(password_auth(scope=scope or {"id": PROJECT}))
        assert reply.status == 201, reply.body
        return reply.headers["X-Subject-Token"]

    async def backup(self, instance_id: str, payload: object) -> Reply:
        return await self.signed("POST", backups_path(instance_id), body=json.dumps(payload).encode())

    async def records(self, instance_id: str, **query: QueryValue) -> list[BackupRecord]:
        reply = await self.signed("GET", backups_path(instance_id), query=list(query.items()))
        assert reply.status == 200, reply.body
        return [
            WireBackupRecord.model_validate(item).to_core() for item in reply.json()["backup_record_response"]
        ]


def instances_path(project_id: str = PROJECT) -> str:
    return f"/v2/{project_id}/instances"


def instance_path(instance_id: str) -> str:
    return f"{instances_path()}/{instance_id}"


def backups_path(instance_id: str) -> str:
    return f"{instance_path(instance_id)}/backups"


def password_auth(
    *,
    domain: str = DEFAULT_DOMAIN,
    username: str = DEFAULT_USERNAME,
    password: str = DEFAULT_PASSWORD,
    scope: dict[str, str] | None = None,
) -> dict[str, Any]:
    auth: dict[str, Any] = {
        "identity": {
            "methods": ["password"],
            "password": {"user": {"name": username, "password": password, "domain": {"name": domain}}},
        }
    }
    if scope is not None:
        auth["scope"] = {"project": scope}
    return {"auth": auth}


def error_code(reply: Reply) -> str:
    code: str = reply.json()["error_code"]
    return code


def assert_dcs_error(reply: Reply, status: int, code: str) -> None:
    assert reply.status == status, reply.body
    assert reply.json() == {"error_code": code, "error_msg": reply.json()["error_msg"], "error_ext_msg": None}
    assert reply.json()["error_msg"]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def emulator(clock: ManualClock) -> DcsEmulator:
    return DcsEmulator(clock=clock, waiting_seconds=WAITING, backuping_seconds=BACKUPING, id_seed=7)


@pytest.fixture
async def cloud(emulator: DcsEmulator, clock: ManualClock) -> AsyncIterator[Cloud]:
    async with TestServer(emulator.app(), host="127.0.0.1") as server, aiohttp.ClientSession() as session:
        yield Cloud(emulator, clock, session, f"127.0.0.1:{server.port}")


# -- AK/SK signatures --------------------------------------------------------------------------------


async def test_signed_request_is_answered_with_a_request_id(cloud: Cloud) -> None:
    reply = await cloud.signed("GET", instances_path())

    assert reply.status == 200
    assert re.fullmatch(r"[0-9a-f]{32}", reply.headers["X-Request-Id"])
    assert reply.json() == {"instance_num": 0, "instances": []}


async def test_wrong_secret_key_is_a_gateway_error_carrying_the_request_id(cloud: Cloud) -> None:
    reply = await cloud.signed("GET", instances_path(), secret_key="not-the-secret")

    assert reply.status == 401
    assert reply.json() == {
        "error_code": "APIGW.0301",
        "error_msg": reply.json()["error_msg"],
        "request_id": reply.headers["X-Request-Id"],
    }


async def test_unknown_access_key_is_refused(cloud: Cloud) -> None:
    reply = await cloud.signed("GET", instances_path(), access_key="SOMEONEELSE")

    assert (reply.status, error_code(reply)) == (401, "APIGW.0301")


async def test_query_changed_after_signing_is_refused(cloud: Cloud) -> None:
    reply = await cloud.signed(
        "GET", instances_path(), query=[("name", "redis-prod")], wire_query=[("name", "redis-staging")]
    )

    assert (reply.status, error_code(reply)) == (401, "APIGW.0301")


async def test_body_changed_after_signing_is_refused(cloud: Cloud) -> None:
    instance = cloud.emulator.add_instance("redis-prod")

    reply = await cloud.signed(
        "POST", backups_path(instance.instance_id), body=b'{"remark":"a"}', wire_body=b'{"remark":"b"}'
    )

    assert (reply.status, error_code(reply)) == (401, "APIGW.0301")
    assert cloud.emulator.backups_of(instance.instance_id) == []


@pytest.mark.parametrize(
    "value",
    ["SDK-HMAC-SHA256 Access=x", "Bearer abc", "SDK-HMAC-SHA256 Access=A, SignedHeaders=host, Signature=zz"],
)
async def test_malformed_authorization_is_refused(cloud: Cloud, value: str) -> None:
    reply = await cloud.send("GET", instances_path(), headers={"Authorization": value, "X-Sdk-Date": "x"})

    assert (reply.status, error_code(reply)) == (401, "APIGW.0301")


async def test_signature_without_the_date_header_is_refused(cloud: Cloud) -> None:
    headers = {"Host": cloud.host}
    headers["Authorization"] = authorization(
        access_key=DEFAULT_ACCESS_KEY,
        secret_key=DEFAULT_SECRET_KEY,
        method="GET",
        path=instances_path(),
        query="",
        headers={**headers, "X-Sdk-Date": "20240510T083116Z"},
        body=b"",
    )

    reply = await cloud.send("GET", instances_path(), headers=headers)

    assert (reply.status, error_code(reply)) == (401, "APIGW.0301")


@pytest.mark.parametrize("offset", [-16 * 60.0, 16 * 60.0])
async def test_sdk_date_more_than_15_minutes_off_is_refused(cloud: Cloud, offset: float) -> None:
    reply = await cloud.signed("GET", instances_path(), signed_at=cloud.clock() + offset)

    assert reply.status == 401
    assert reply.json()["error_code"] == "APIGW.0303"
    assert reply.json()["request_id"] == reply.headers["X-Request-Id"]


async def test_sdk_date_within_15_minutes_is_accepted(cloud: Cloud) -> None:
    reply = await cloud.signed("GET", instances_path(), signed_at=cloud.clock() - 14 * 60)

    assert reply.status == 200


async def test_date_check_can_be_switched_off(cloud: Cloud) -> None:
    cloud.emulator.max_sdk_date_skew = None

    reply = await cloud.signed("GET", instances_path(), signed_at=cloud.clock() - 30 * 24 * 3600)

    assert reply.status == 200


async def test_request_without_credentials_gets_dcs_1003(cloud: Cloud) -> None:
    reply = await cloud.send("GET", instances_path())

    assert_dcs_error(reply, 401, "DCS.1003")


async def test_other_project_in_the_path_gets_dcs_1004(cloud: Cloud) -> None:
    other = "f" * 32
    reply = await cloud.signed("GET", instances_path(other), project_header=other)

    assert_dcs_error(reply, 401, "DCS.1004")


async def test_x_project_id_differing_from_the_path_gets_dcs_1004(cloud: Cloud) -> None:
    reply = await cloud.signed("GET", instances_path(), project_header="f" * 32)

    assert_dcs_error(reply, 401, "DCS.1004")


# -- IAM tokens --------------------------------------------------------------------------------------


async def test_password_login_scoped_to_the_project_id_returns_a_token(cloud: Cloud) -> None:
    reply = await cloud.token_reply(password_auth(scope={"id": PROJECT}))

    assert reply.status == 201
    assert reply.headers["X-Subject-Token"]
    token = reply.json()["token"]
    assert token["project"]["id"] == PROJECT
    assert token["project"]["name"] == DEFAULT_PROJECT_NAME
    assert token["project"]["domain"]["name"] == DEFAULT_DOMAIN
    issued = datetime.fromisoformat(token["issued_at"])
    expires = datetime.fromisoformat(token["expires_at"])
    assert issued.timestamp() == pytest.approx(START)
    assert (expires - issued).total_seconds() == 24 * 3600
    assert token["catalog"][0]["type"] == "dcs"


async def test_password_login_by_project_name_without_catalog(cloud: Cloud) -> None:
    reply = await cloud.token_reply(
        password_auth(scope={"name": DEFAULT_PROJECT_NAME}), query=[("nocatalog", "true")]
    )

    assert reply.status == 201
    assert reply.json()["token"]["project"]["id"] == PROJECT
    assert "catalog" not in reply.json()["token"]


@pytest.mark.parametrize(
    "credentials",
    [
        {"password": "wrong"},
        {"username": "somebody"},
        {"domain": "other-domain"},
    ],
)
async def test_wrong_credentials_get_an_iam_401(cloud: Cloud, credentials: dict[str, str]) -> None:
    reply = await cloud.token_reply(password_auth(scope={"id": PROJECT}, **credentials))

    assert reply.status == 401
    assert reply.json()["error"]["code"] == 401
    assert reply.json()["error"]["title"] == "Unauthorized"
    assert "X-Subject-Token" not in reply.headers


@pytest.mark.parametrize("scope", [{"id": "f" * 32}, {"name": "eu-nl"}, {"id": PROJECT, "name": "eu-nl"}])
async def test_login_scoped_to_another_project_is_refused(cloud: Cloud, scope: dict[str, str]) -> None:
    reply = await cloud.token_reply(password_auth(scope=scope))

    assert reply.status == 401
    assert reply.json()["error"]["code"] == 401


@pytest.mark.parametrize(
    "payload",
    [
        {"auth": {"identity": {"methods": ["token"]}}},
        {"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "x"}}}}},
        [1, 2],
        {**password_auth(), "auth": {**password_auth()["auth"], "scope": {"project": {}}}},
    ],
)
async def test_malformed_login_gets_an_iam_400(cloud: Cloud, payload: object) -> None:
    reply = await cloud.token_reply(payload)

    assert reply.status == 400
    assert reply.json()["error"]["code"] == 400


async def test_login_body_that_is_not_json_gets_an_iam_400(cloud: Cloud) -> None:
    reply = await cloud.send("POST", "/v3/auth/tokens", body=b"{nope")

    assert reply.status == 400
    assert reply.json()["error"]["title"] == "Bad Request"


async def test_token_authorises_dcs_calls(cloud: Cloud) -> None:
    cloud.emulator.add_instance("redis-prod")
    token = await cloud.token()

    reply = await cloud.with_token("GET", instances_path(), token)

    assert reply.status == 200
    assert reply.json()["instance_num"] == 1


async def test_unknown_token_gets_dcs_1001(cloud: Cloud) -> None:
    reply = await cloud.with_token("GET", instances_path(), "MIIforged")

    assert_dcs_error(reply, 401, "DCS.1001")


async def test_expired_token_gets_dcs_1002(cloud: Cloud) -> None:
    token = await cloud.token()
    cloud.clock.advance(24 * 3600)

    reply = await cloud.with_token("GET", instances_path(), token)

    assert_dcs_error(reply, 401, "DCS.1002")


async def test_token_lifetime_is_configurable(clock: ManualClock) -> None:
    emulator = DcsEmulator(clock=clock, token_lifetime=60)
    async with TestServer(emulator.app(), host="127.0.0.1") as server, aiohttp.ClientSession() as session:
        cloud = Cloud(emulator, clock, session, f"127.0.0.1:{server.port}")
        token = await cloud.token()
        clock.advance(59)
        assert (await cloud.with_token("GET", instances_path(), token)).status == 200
        clock.advance(1)
        assert error_code(await cloud.with_token("GET", instances_path(), token)) == "DCS.1002"


async def test_revoked_token_gets_dcs_1001(cloud: Cloud) -> None:
    token = await cloud.token()
    cloud.emulator.revoke_tokens()

    reply = await cloud.with_token("GET", instances_path(), token)

    assert_dcs_error(reply, 401, "DCS.1001")


async def test_unscoped_token_is_refused_by_dcs(cloud: Cloud) -> None:
    reply = await cloud.token_reply(password_auth())
    assert reply.status == 201
    assert "project" not in reply.json()["token"]

    dcs_reply = await cloud.with_token("GET", instances_path(), reply.headers["X-Subject-Token"])

    assert_dcs_error(dcs_reply, 401, "DCS.1004")


async def test_token_for_another_project_path_gets_dcs_1004(cloud: Cloud) -> None:
    token = await cloud.token()

    reply = await cloud.with_token("GET", instances_path("f" * 32), token)

    assert_dcs_error(reply, 401, "DCS.1004")


async def test_extra_iam_users_can_log_in(clock: ManualClock) -> None:
    emulator = DcsEmulator(clock=clock, iam_users={("acme", "ops"): "s3cret"})
    async with TestServer(emulator.app(), host="127.0.0.1") as server, aiohttp.ClientSession() as session:
        cloud = Cloud(emulator, clock, session, f"127.0.0.1:{server.port}")
        accepted = await cloud.token_reply(password_auth(domain="acme", username="ops", password="s3cret"))
        refused = await cloud.token_reply(password_auth())

    assert (accepted.status, refused.status) == (201, 401)


# -- ListInstances -----------------------------------------------------------------------------------


async def test_name_filter_is_a_case_insensitive_substring_by_default(cloud: Cloud) -> None:
    for name in ("redis-prod", "redis-prod-eu", "Redis-Staging", "cache-single"):
        cloud.emulator.add_instance(name)

    reply = await cloud.signed("GET", instances_path(), query=[("name", "REDIS")])

    assert reply.json()["instance_num"] == 3
    assert [item["name"] for item in reply.json()["instances"]] == [
        "redis-prod",
        "redis-prod-eu",
        "Redis-Staging",
    ]


async def test_name_equal_matches_exactly(cloud: Cloud) -> None:
    for name in ("redis-prod", "redis-prod-eu", "REDIS-PROD"):
        cloud.emulator.add_instance(name)

    reply = await cloud.signed(
        "GET", instances_path(), query=[("name", "redis-prod"), ("name_equal", "true")]
    )

    assert [item["name"] for item in reply.json()["instances"]] == ["redis-prod"]


async def test_list_items_validate_and_have_no_cache_mode(cloud: Cloud) -> None:
    added = cloud.emulator.add_instance("redis-prod", cache_mode="cluster")

    reply = await cloud.signed("GET", instances_path())

    item = reply.json()["instances"][0]
    assert "cache_mode" not in item
    instance = WireInstance.model_validate(item).to_core()
    assert (instance.instance_id, instance.name, instance.status) == (
        added.instance_id,
        "redis-prod",
        "RUNNING",
    )
    assert instance.spec_code is not None
    assert instance.spec_code.startswith("redis.cluster.")


async def test_list_filters_by_instance_id_and_status(cloud: Cloud) -> None:
    prod = cloud.emulator.add_instance("redis-prod")
    staging = cloud.emulator.add_instance("redis-staging", status="RESTARTING")

    by_id = await cloud.signed("GET", instances_path(), query=[("instance_id", prod.instance_id)])
    by_status = await cloud.signed("GET", instances_path(), query=[("status", "RESTARTING")])

    assert [item["instance_id"] for item in by_id.json()["instances"]] == [prod.instance_id]
    assert [item["instance_id"] for item in by_status.json()["instances"]] == [staging.instance_id]


async def test_list_pages_with_offset_and_limit_and_counts_all_matches(cloud: Cloud) -> None:
    names = [f"redis-{number:02d}" for number in range(12)]
    for name in names:
        cloud.emulator.add_instance(name)

    first = await cloud.signed("GET", instances_path())
    page = await cloud.signed("GET", instances_path(), query=[("offset", 5), ("limit", 3)])

    assert first.json()["instance_num"] == 12
    assert [item["name"] for item in first.json()["instances"]] == names[:10]
    assert [item["name"] for item in page.json()["instances"]] == names[5:8]
    assert page.json()["instance_num"] == 12


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("limit", "0"),
        ("limit", "1001"),
        ("limit", "ten"),
        ("limit", "-1"),
        ("offset", "-1"),
        ("offset", "1.5"),
        ("name_equal", "yes"),
    ],
)
async def test_invalid_list_parameters_get_dcs_4800(cloud: Cloud, name: str, value: str) -> None:
    reply = await cloud.signed("GET", instances_path(), query=[(name, value)])

    assert_dcs_error(reply, 400, "DCS.4800")
    assert reply.json()["error_msg"] == f"Invalid {name} in the request."


async def test_limit_of_1000_is_accepted(cloud: Cloud) -> None:
    reply = await cloud.signed("GET", instances_path(), query=[("limit", 1000)])

    assert reply.status == 200


# -- ShowInstance ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cache_mode", "prefix"),
    [
        ("single", "redis.single."),
        ("ha", "redis.ha."),
        ("cluster", "redis.cluster."),
        ("proxy", "redis.proxy."),
        ("ha_rw_split", "redis.ha."),
    ],
)
async def test_show_instance_returns_the_full_object(cloud: Cloud, cache_mode: Any, prefix: str) -> None:
    added = cloud.emulator.add_instance("redis-prod", cache_mode=cache_mode, engine_version="7.0", capacity=4)

    reply = await cloud.signed("GET", instance_path(added.instance_id))

    assert reply.status == 200
    body = reply.json()
    assert body["engine"] == "Redis"
    assert body["sub_status"] == "normal"
    instance = WireInstance.model_validate(body).to_core()
    assert instance.cache_mode == cache_mode
    assert instance.engine_version == "7.0"
    assert instance.capacity == 4
    assert instance.spec_code is not None
    assert instance.spec_code.startswith(prefix)
    assert instance.is_single_node is (cache_mode == "single")
    assert instance.is_running


async def test_show_instance_reflects_a_status_change(cloud: Cloud) -> None:
    added = cloud.emulator.add_instance("redis-prod")
    cloud.emulator.set_status(added.instance_id, "EXTENDING")

    reply = await cloud.signed("GET", instance_path(added.instance_id))

    assert WireInstance.model_validate(reply.json()).to_core().status == "EXTENDING"


@pytest.mark.parametrize(("method", "suffix"), [("GET", ""), ("GET", "/backups"), ("POST", "/backups")])
async def test_unknown_instance_gets_dcs_3022(cloud: Cloud, method: str, suffix: str) -> None:
    reply = await cloud.signed(
        method, instance_path(UNKNOWN_ID) + suffix, body=b"{}" if method == "POST" else b""
    )

    assert_dcs_error(reply, 404, "DCS.3022")


@pytest.mark.parametrize(("method", "suffix"), [("GET", ""), ("GET", "/backups"), ("POST", "/backups")])
async def test_instance_id_that_is_not_a_uuid_gets_dcs_4061(cloud: Cloud, method: str, suffix: str) -> None:
    reply = await cloud.signed(
        method, instance_path("redis-prod") + suffix, body=b"{}" if method == "POST" else b""
    )

    assert_dcs_error(reply, 400, "DCS.4061")


# -- CopyInstance ------------------------------------------------------------------------------------


async def test_backup_returns_its_id_and_appears_as_a_manual_record(cloud: Cloud) -> None:
    instance = cloud.emulator.add_instance("redis-prod")

    reply = await cloud.backup(instance.instance_id, {"remark": "nightly", "backup_format": "aof"})

    assert reply.status == 200
    backup_id = reply.json()["backup_id"]
    assert UUID.fullmatch(backup_id)
    [record] = await cloud.records(instance.instance_id)
    assert (record.backup_id, record.backup_type, record.backup_format) == (backup_id, "manual", "aof")
    assert (record.remark, record.status, record.instance_id) == ("nightly", "waiting", instance.instance_id)


@pytest.mark.parametrize("payload", [{}, {"remark": None, "backup_format": None}])
async def test_backup_format_defaults_to_rdb(cloud: Cloud, payload: dict[str, None]) -> None:
    instance = cloud.emulator.add_instance("redis-prod")

    reply = await cloud.backup(instance.instance_id, payload)

    assert reply.status == 200
    record = cloud.emulator.backup(reply.json()["backup_id"])
    assert (record.backup_format, record.remark) == ("rdb", "")


@pytest.mark.parametrize("cache_mode", ["ha", "cluster", "proxy", "ha_rw_split"])
async def test_every_multi_node_type_can_be_backed_up(cloud: Cloud, cache_mode: Any) -> None:
    instance = cloud.emulator.add_instance("redis-prod", cache_mode=cache_mode)

    reply = await cloud.backup(instance.instance_id, {"backup_format": "rdb"})

    assert reply.status == 200


async def test_remark_of_128_characters_is_accepted(cloud: Cloud) -> None:
    instance = cloud.emulator.add_instance("redis-prod")

    reply = await cloud.backup(instance.instance_id, {"remark": "é" * 128})

    assert reply.status == 200


async def test_instance_not_running_gets_dcs_4049(cloud: Cloud) -> None:
    instance = cloud.emulator.add_instance("redis-prod", status="RESTARTING")

    reply = await cloud.backup(instance.instance_id, {"backup_format": "aof"})

    assert_dcs_error(reply, 400, "DCS.4049")


async def test_single_node_instance_gets_dcs_4086(cloud: Cloud) -> None:
    instance = cloud.emulator.add_instance("cache-single", cache_mode="single")

    reply = await cloud.backup(instance.instance_id, {"backup_format": "aof"})

    assert_dcs_error(reply, 400, "DCS.4086")


async def test_second_backup_while_one_runs_gets_dcs_4096(cloud: Cloud) -> None:
    instance = cloud.emulator.add_instance("redis-prod")
    assert (await cloud.backup(instance.instance_id, {})).status == 200
    cloud.clock.advance(WAITING + 1)

    reply = await cloud.backup(instance.instance_id, {})

    assert_dcs_error(reply, 400, "DCS.4096")


async def test_next_backup_is_accepted_once_the_previous_one_ended(cloud: Cloud) -> None:
    instance = cloud.emulator.add_instance("redis-prod")
    await cloud.backup(instance.instance_id, {})
    cloud.clock.advance(WAITING + BACKUPING)

    reply = await cloud.backup(instance.instance_id, {})

    assert reply.status == 200
    assert len(cloud.emulator.backups_of(instance.instance_id)) == 2


async def test_running_automatic_backup_blocks_a_manual_one(cloud: Cloud) -> None:
    instance = cloud.emulator.add_instance("redis-prod")
    cloud.emulator.add_backup(instance.instance_id)

    reply = await cloud.backup(instance.instance_id, {})

    assert_dcs_error(reply, 400, "DCS.4096")


async def test_remark_over_128_characters_gets_dcs_4098(cloud: Cloud) -> None:
    instance = cloud.emulator.add_instance("redis-prod")

    reply = await cloud.backup(instance.instance_id, {"remark": "x" * 129})

    assert_dcs_error(reply, 400, "DCS.4098")


@pytest.mark.parametrize(
    ("payload", "parameter"),
    [
        ({"backup_format": "AOF"}, "backup_format"),
        ({"backup_format": "json"}, "backup_format"),
        ({"backup_format": 1}, "backup_format"),
        ({"remark": 5}, "remark"),
    ],
)
async def test_invalid_fields_get_dcs_4800(cloud: Cloud, payload: dict[str, object], parameter: str) -> None:
    instance = cloud.emulator.add_instance("redis-prod")

    reply = await cloud.backup(instance.instance_id, payload)

    assert_dcs_error(reply, 400, "DCS.4800")
    assert reply.json()["error_msg"] == f"Invalid {parameter} in the request."


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"aof"', b"\xff\xfe{"])
async def test_body_that_is_not_a_json_object_gets_dcs_4005(cloud: Cloud, body: bytes) -> None:
    instance = cloud.emulator.add_instance("redis-prod")

    reply = await cloud.signed("POST", backups_path(instance.instance_id), body=body)

    assert_dcs_error(reply, 400, "DCS.4005")


async def test_empty_body_gets_dcs_4004(cloud: Cloud) -> None:
    instance = cloud.emulator.add_instance("redis-prod")

    reply = await cloud.signed("POST", backups_path(instance.instance_id))

    assert_dcs_error(reply, 400, "DCS.4004")


# -- backup progress on the emulator's clock -------------------------------------------------------------


async def test_backup_goes_from_waiting_through_backuping_to_succeed(cloud: Cloud) -> None:
    instance = cloud.emulator.add_instance("redis-prod")
    backup_id = (await cloud.backup(instance.instance_id, {"backup_format": "aof"})).json()["backup_id"]

    [waiting] = await cloud.records(instance.instance_id)
    cloud.clock.advance(WAITING + BACKUPING * 0.375)
    [halfway] = await cloud.records(instance.instance_id)
    cloud.clock.advance(BACKUPING * 0.625)
    [done] = await cloud.records(instance.instance_id)

    assert (waiting.status, waiting.progress, waiting.size) == ("waiting", "0.00", 0)
    assert (waiting.updated_at, waiting.execution_at, waiting.error_code) == (None, None, None)
    assert waiting.created_at == datetime.fromtimestamp(START, UTC)
    assert waiting.backup_name == "backup_20240510083116"
    assert (halfway.status, halfway.progress, halfway.size) == ("backuping", "37.50", 0)
    assert halfway.execution_at == datetime.fromtimestamp(START + WAITING, UTC)
    assert halfway.updated_at is None
    assert (done.backup_id, done.status, done.progress) == (backup_id, "succeed", "100.00")
    assert done.size is not None
    assert done.size > 0
    assert done.updated_at == datetime.fromtimestamp(START + WAITING + BACKUPING, UTC)
    assert done.is_final
    assert cloud.emulator.backup_status(backup_id) == "succeed"


async def test_record_fields_have_the_documented_shapes(cloud: Cloud) -> None:
    instance = cloud.emulator.add_instance("redis-prod")
    await cloud.backup(instance.instance_id, {"remark": "r"})
    cloud.clock.advance(WAITING + BACKUPING)

    reply = await cloud.signed("GET", backups_path(instance.instance_id))

    assert reply.json()["total_num"] == 1
    [item] = reply.json()["backup_record_response"]
    assert set(item) == {
        "backup_id",
        "backup_name",
        "instance_id",
        "remark",
        "backup_type",
        "backup_format",
        "status",
        "progress",
        "size",
        "created_at",
        "updated_at",
        "execution_at",
        "period",
        "error_code",
        "is_support_restore",
    }
    assert item["created_at"] == "2024-05-10T08:31:16.166Z"
    assert isinstance(item["size"], int)
    assert (item["error_code"], item["period"], item["is_support_restore"]) == ({}, {}, "TRUE")


async def test_fail_next_backup_makes_the_next_backup_fail_with_its_code(cloud: Cloud) -> None:
    instance = cloud.emulator.add_instance("redis-prod")
    cloud.emulator.fail_next_backup(instance.instance_id, "dcs.08.0005")
    await cloud.backup(instance.instance_id, {})
    cloud.clock.advance(WAITING + BACKUPING)
    await cloud.backup(instance.instance_id, {})
    cloud.clock.advance(WAITING + BACKUPING)

    reply = await cloud.signed("GET", backups_path(instance.instance_id))

    later, failed = reply.json()["backup_record_response"]
    assert (failed["status"], failed["error_code"], failed["is_support_restore"]) == (
        "failed",
        "dcs.08.0005",
        "FALSE",
    )
    assert (failed["size"], failed["updated_at"] != "") == (0, True)
    assert (later["status"], later["error_code"]) == ("succeed", {})
    assert WireBackupRecord.model_validate(failed).to_core().error_code == "dcs.08.0005"


async def test_automatic_backup_progresses_like_a_manual_one(cloud: Cloud) -> None:
    instance = cloud.emulator.add_instance("redis-prod")
    added = cloud.emulator.add_backup(instance.instance_id, outcome="failed", error_code="dcs.08.0008")

    [before] = await cloud.records(instance.instance_id)
    cloud.clock.advance(WAITING + BACKUPING)
    [after] = await cloud.records(instance.instance_id)

    assert (before.backup_id, before.backup_type, before.backup_format) == (added.backup_id, "auto", "rdb")
    assert (before.status, after.status, after.error_code) == ("waiting", "failed", "dcs.08.0008")


async def test_old_automatic_backup_is_already_finished(cloud: Cloud) -> None:
    instance = cloud.emulator.add_instance("redis-prod")
    cloud.emulator.add_backup(instance.instance_id, created_at=START - 3600, size=4096, remark="nightly")

    [record] = await cloud.records(instance.instance_id)

    assert (record.status, record.size, record.remark) == ("succeed", 4096, "nightly")


async def test_failed_backup_defaults_to_the_timeout_code(emulator: DcsEmulator) -> None:
    instance = emulator.add_instance("redis-prod")

    added = emulator.add_backup(instance.instance_id, outcome="failed", created_at=START - 3600)

    assert (emulator.backup_status(added.backup_id), added.error_code) == ("failed", "dcs.08.0002")


async def test_per_backup_durations_override_the_defaults(emulator: DcsEmulator, clock: ManualClock) -> None:
    instance = emulator.add_instance("redis-prod")
    added = emulator.add_backup(instance.instance_id, waiting_seconds=0, backuping_seconds=1)

    clock.advance(1)

    assert emulator.backup_status(added.backup_id) == "succeed"


async def test_a_status_override_is_reported_until_cleared(cloud: Cloud) -> None:
    instance = cloud.emulator.add_instance("redis-prod")
    added = cloud.emulator.add_backup(instance.instance_id)

    cloud.emulator.set_backup_status(added.backup_id, "expired")
    [expired] = await cloud.records(instance.instance_id)
    cloud.emulator.set_backup_status(added.backup_id, "archiving")
    [odd] = await cloud.records(instance.instance_id)
    cloud.emulator.set_backup_status(added.backup_id, None)
    [timeline] = await cloud.records(instance.instance_id)

    assert (expired.status, expired.updated_at is not None) == ("expired", True)
    assert (odd.status, timeline.status) == ("archiving", "waiting")


async def test_a_record_quirk_shows_fields_as_given_until_cleared(cloud: Cloud) -> None:
    instance = cloud.emulator.add_instance("redis-prod")
    added = cloud.emulator.add_backup(instance.instance_id)

    cloud.emulator.set_record_quirk(added.backup_id, created_at="2026-12-01 10:00:00", updated_at=None)
    odd = await cloud.signed("GET", backups_path(instance.instance_id))
    cloud.emulator.set_record_quirk(added.backup_id)
    usual = await cloud.signed("GET", backups_path(instance.instance_id))

    [shown] = odd.json()["backup_record_response"]
    assert (shown["created_at"], shown["updated_at"]) == ("2026-12-01 10:00:00", None)
    assert shown["backup_id"] == added.backup_id and shown["status"] == "waiting"
    [plain] = usual.json()["backup_record_response"]
    assert str(plain["created_at"]).endswith("Z") and plain["updated_at"] == ""


# -- ListBackupRecords -------------------------------------------------------------------------------


async def test_no_records_is_204_with_an_empty_body(cloud: Cloud) -> None:
    instance = cloud.emulator.add_instance("redis-prod")

    reply = await cloud.signed("GET", backups_path(instance.instance_id))

    assert (reply.status, reply.body) == (204, b"")
    assert reply.headers["X-Request-Id"]


async def test_records_are_newest_first_and_paged(cloud: Cloud) -> None:
    instance = cloud.emulator.add_instance("redis-prod")
    added = [
        cloud.emulator.add_backup(instance.instance_id, created_at=START - 3600 * hours)
        for hours in (5, 1, 3, 2, 4)
    ]
    newest_first = [record.backup_id for record in sorted(added, key=lambda each: -each.created_at)]

    reply = await cloud.signed("GET", backups_path(instance.instance_id), query=[("offset", 1), ("limit", 2)])

    assert reply.json()["total_num"] == 5
    assert [item["backup_id"] for item in reply.json()["backup_record_response"]] == newest_first[1:3]
    assert [record.backup_id for record in await cloud.records(instance.instance_id)] == newest_first


async def test_time_window_filters_by_creation_time_inclusively(cloud: Cloud) -> None:
    instance = cloud.emulator.add_instance("redis-prod")
    for hours in (3, 2, 1):
        cloud.emulator.add_backup(instance.instance_id, created_at=START - 3600 * hours, remark=f"{hours}h")

    window = {"begin_time": "20240510063116", "end_time": "20240510073116"}
    records = await cloud.records(instance.instance_id, **window)
    outside = await cloud.signed(
        "GET", backups_path(instance.instance_id), query=[("begin_time", "20240511000000")]
    )

    assert [record.remark for record in records] == ["1h", "2h"]
    assert (outside.status, outside.body) == (204, b"")


async def test_end_before_begin_gets_dcs_4025(cloud: Cloud) -> None:
    instance = cloud.emulator.add_instance("redis-prod")

    reply = await cloud.signed(
        "GET",
        backups_path(instance.instance_id),
        query=[("begin_time", "20240510000000"), ("end_time", "20240509235959")],
    )

    assert_dcs_error(reply, 400, "DCS.4025")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("begin_time", "2024-05-10"),
        ("end_time", "20241310000000"),
        ("begin_time", "2024051000000"),
        ("limit", "0"),
        ("offset", "x"),
    ],
)
async def test_invalid_record_query_gets_dcs_4800(cloud: Cloud, name: str, value: str) -> None:
    instance = cloud.emulator.add_instance("redis-prod")

    reply = await cloud.signed("GET", backups_path(instance.instance_id), query=[(name, value)])

    assert_dcs_error(reply, 400, "DCS.4800")
    assert reply.json()["error_msg"] == f"Invalid {name} in the request."


async def test_only_the_24_newest_records_are_kept(cloud: Cloud) -> None:
    instance = cloud.emulator.add_instance("redis-prod")
    added = [
        cloud.emulator.add_backup(instance.instance_id, created_at=START - 3600 * (30 - number))
        for number in range(30)
    ]
    started = await cloud.backup(instance.instance_id, {})

    reply = await cloud.signed("GET", backups_path(instance.instance_id), query=[("limit", 100)])

    kept = [item["backup_id"] for item in reply.json()["backup_record_response"]]
    assert reply.json()["total_num"] == 24
    assert kept == [started.json()["backup_id"]] + [record.backup_id for record in reversed(added[7:])]
    with pytest.raises(KeyError):
        cloud.emulator.backup(added[6].backup_id)


async def test_many_tracked_backups_over_many_instances(cloud: Cloud) -> None:
    instances = [cloud.emulator.add_instance(f"redis-{number:02d}") for number in range(20)]
    for instance in instances:
        for _ in range(10):
            cloud.emulator.add_backup(instance.instance_id)
    cloud.clock.advance(WAITING + BACKUPING)

    totals = [
        (await cloud.signed("GET", backups_path(instance.instance_id))).json()["total_num"]
        for instance in instances
    ]

    assert totals == [10] * 20
    assert len(cloud.emulator.calls_to(Endpoint.LIST_BACKUPS)) == 20


# -- injected faults ---------------------------------------------------------------------------------


async def test_throttling_fault_answers_429_with_retry_after_once(cloud: Cloud) -> None:
    instance = cloud.emulator.add_instance("redis-prod")
    cloud.emulator.add_backup(instance.instance_id)
    cloud.emulator.inject_fault(endpoint="list_backups", status=429, retry_after=2.5)

    unaffected = await cloud.signed("GET", instance_path(instance.instance_id))
    throttled = await cloud.signed("GET", backups_path(instance.instance_id))
    after = await cloud.signed("GET", backups_path(instance.instance_id))

    assert unaffected.status == 200
    assert throttled.status == 429
    assert throttled.headers["Retry-After"] == "2.5"
    assert throttled.json()["error_code"] == "APIGW.0308"
    assert throttled.json()["request_id"] == throttled.headers["X-Request-Id"]
    assert after.status == 200


async def test_fault_without_endpoint_hits_any_dcs_call_the_given_number_of_times(cloud: Cloud) -> None:
    instance = cloud.emulator.add_instance("redis-prod")
    cloud.emulator.inject_fault(status=503, times=2)

    login = await cloud.token_reply(password_auth(scope={"id": PROJECT}))
    first = await cloud.signed("GET", instances_path())
    second = await cloud.backup(instance.instance_id, {})
    third = await cloud.signed("GET", instances_path())

    assert login.status == 201
    assert_dcs_error(first, 503, "DCS.5000")
    assert_dcs_error(second, 503, "DCS.5000")
    assert "Retry-After" not in first.headers
    assert third.status == 200
    assert cloud.emulator.backups_of(instance.instance_id) == []


async def test_fault_can_target_one_instance(cloud: Cloud) -> None:
    prod = cloud.emulator.add_instance("redis-prod")
    staging = cloud.emulator.add_instance("redis-staging")
    cloud.emulator.inject_fault(endpoint=Endpoint.CREATE_BACKUP, status=500, instance_id=prod.instance_id)

    other = await cloud.backup(staging.instance_id, {})
    target = await cloud.backup(prod.instance_id, {})

    assert other.status == 200
    assert_dcs_error(target, 500, "DCS.5000")


async def test_fault_can_hit_the_iam_endpoint(cloud: Cloud) -> None:
    cloud.emulator.inject_fault(endpoint="iam_token", status=503, retry_after=1)

    first = await cloud.token_reply(password_auth(scope={"id": PROJECT}))
    second = await cloud.token_reply(password_auth(scope={"id": PROJECT}))

    assert (first.status, first.headers["Retry-After"], second.status) == (503, "1", 201)


async def test_unauthenticated_calls_do_not_use_up_a_fault(cloud: Cloud) -> None:
    cloud.emulator.inject_fault(endpoint="list_instances", status=500, error_code="DCS.5078")

    refused = await cloud.signed("GET", instances_path(), secret_key="wrong")
    failed = await cloud.signed("GET", instances_path())

    assert refused.status == 401
    assert_dcs_error(failed, 500, "DCS.5078")


async def test_cleared_faults_no_longer_fire(cloud: Cloud) -> None:
    cloud.emulator.inject_fault(status=500, times=5)
    cloud.emulator.clear_faults()

    assert (await cloud.signed("GET", instances_path())).status == 200


async def test_a_delayed_fault_is_answered_after_its_delay(cloud: Cloud) -> None:
    cloud.emulator.clock = time.time
    cloud.emulator.max_sdk_date_skew = None
    cloud.emulator.inject_fault(endpoint="list_instances", status=429, retry_after=1, delay=0.2)

    asked = time.time()
    throttled = await cloud.signed("GET", instances_path())

    [call] = cloud.emulator.calls
    assert (throttled.status, call.status) == (429, 429)
    assert call.at - asked >= 0.2


async def test_waiting_for_calls_wakes_on_each_answered_call(cloud: Cloud) -> None:
    waiting = asyncio.create_task(cloud.emulator.wait_for_calls(lambda: len(cloud.emulator.calls) >= 2))

    await cloud.signed("GET", instances_path())
    assert not waiting.done()
    await cloud.signed("GET", instances_path())

    await asyncio.wait_for(waiting, timeout=5)


async def test_waiting_for_calls_that_never_come_names_the_last_ones(cloud: Cloud) -> None:
    await cloud.signed("GET", instances_path())

    with pytest.raises(TimeoutError, match="list_instances 200"):
        await cloud.emulator.wait_for_calls(lambda: False, timeout=0.05)


@pytest.mark.parametrize(
    "arguments",
    [
        {"status": 404},
        {"status": 200},
        {"times": 0},
        {"retry_after": -1.0},
        {"delay": -1.0},
        {"endpoint": "restore"},
    ],
)
def test_inject_fault_rejects_nonsense(emulator: DcsEmulator, arguments: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"."):
        emulator.inject_fault(**arguments)


# -- call log, routing, unexpected errors --------------------------------------------------------------


async def test_calls_are_recorded_with_endpoint_instance_query_and_status(cloud: Cloud) -> None:
    prod = cloud.emulator.add_instance("redis-prod")
    staging = cloud.emulator.add_instance("redis-staging")
    for _ in range(3):
        await cloud.signed("GET", backups_path(prod.instance_id), query=[("limit", 5)])
    await cloud.signed("GET", backups_path(staging.instance_id), secret_key="wrong")

    prod_calls = cloud.emulator.calls_to("list_backups", instance_id=prod.instance_id)
    [staging_call] = cloud.emulator.calls_to(Endpoint.LIST_BACKUPS, instance_id=staging.instance_id)

    assert len(prod_calls) == 3
    assert prod_calls[0].query == {"limit": "5"}
    assert (prod_calls[0].method, prod_calls[0].path, prod_calls[0].status) == (
        "GET",
        backups_path(prod.instance_id),
        204,
    )
    assert prod_calls[0].at == START
    assert staging_call.status == 401
    assert len({call.request_id for call in cloud.emulator.calls}) == 4


async def test_unknown_path_gets_dcs_4001(cloud: Cloud) -> None:
    reply = await cloud.signed("GET", f"/v2/{PROJECT}/nothing-here")

    assert_dcs_error(reply, 404, "DCS.4001")
    assert reply.headers["X-Request-Id"]
    assert cloud.emulator.calls[-1].endpoint is None


async def test_wrong_method_gets_dcs_5001(cloud: Cloud) -> None:
    reply = await cloud.signed("DELETE", instances_path())

    assert_dcs_error(reply, 405, "DCS.5001")


async def test_emulator_bug_is_a_500_with_a_request_id(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    instance = cloud.emulator.add_instance("redis-prod")

    def broken(instance_id: str) -> None:
        raise RuntimeError(instance_id)

    monkeypatch.setattr(cloud.emulator, "backups_of", broken)

    reply = await cloud.signed("GET", backups_path(instance.instance_id))

    assert_dcs_error(reply, 500, "DCS.5000")
    assert reply.headers["X-Request-Id"]
    assert "DCS emulator failed" in caplog.text


# -- the Python API ----------------------------------------------------------------------------------


def test_add_instance_rejects_bad_arguments(emulator: DcsEmulator) -> None:
    existing = emulator.add_instance("redis-prod")

    with pytest.raises(ValueError, match="cache_mode"):
        emulator.add_instance("x", cache_mode="memcached")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="UUID"):
        emulator.add_instance("x", instance_id="not-a-uuid")
    with pytest.raises(ValueError, match="already exists"):
        emulator.add_instance("x", instance_id=existing.instance_id)


def test_add_instance_keeps_a_given_id_and_allows_duplicate_names(emulator: DcsEmulator) -> None:
    first = emulator.add_instance("redis-prod", instance_id=UNKNOWN_ID)
    second = emulator.add_instance("redis-prod")

    assert first.instance_id == UNKNOWN_ID
    assert [instance.name for instance in emulator.instances] == ["redis-prod", "redis-prod"]
    assert emulator.instance(second.instance_id) is second


def test_state_helpers_reject_unknown_instances_and_inconsistent_backups(emulator: DcsEmulator) -> None:
    instance = emulator.add_instance("redis-prod")

    with pytest.raises(KeyError):
        emulator.set_status(UNKNOWN_ID, "RUNNING")
    with pytest.raises(KeyError):
        emulator.fail_next_backup(UNKNOWN_ID)
    with pytest.raises(KeyError):
        emulator.add_backup(UNKNOWN_ID)
    with pytest.raises(ValueError, match="error_code"):
        emulator.add_backup(instance.instance_id, error_code="dcs.08.0001")


def test_constructor_rejects_impossible_durations() -> None:
    with pytest.raises(ValueError, match="backuping_seconds"):
        DcsEmulator(backuping_seconds=0)


def test_same_seed_gives_the_same_ids(clock: ManualClock) -> None:
    first, second = DcsEmulator(clock=clock, id_seed=3), DcsEmulator(clock=clock, id_seed=3)

    assert first.add_instance("a").instance_id == second.add_instance("a").instance_id


def test_manual_clock_only_moves_forward() -> None:
    clock = ManualClock(100.0)
    clock.advance(2.5)

    assert clock() == 102.5
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)


# -- running it on its own ---------------------------------------------------------------------------


def test_demo_seed_has_every_type_and_some_history() -> None:
    emulator = DcsEmulator(id_seed=1)

    added = seed_demo_instances(emulator)

    assert {instance.cache_mode for instance in added} == {"single", "ha", "cluster", "proxy", "ha_rw_split"}
    assert {"redis-prod", "redis-staging", "cache-single"} <= {instance.name for instance in added}
    assert any(instance.status != "RUNNING" for instance in added)
    prod = next(instance for instance in added if instance.name == "redis-prod")
    assert [emulator.backup_status(record.backup_id) for record in emulator.backups_of(prod.instance_id)] == [
        "succeed"
    ]


async def test_started_emulator_serves_the_demo_on_a_free_local_port() -> None:
    async with await start_emulator() as running, aiohttp.ClientSession() as session:
        info = running.connection_info()
        login = password_auth(domain=info.iam_domain, username=info.iam_username, password=info.iam_password)
        login["auth"]["scope"] = {"project": {"id": info.project_id}}
        async with session.post(f"{info.endpoint}/v3/auth/tokens", json=login) as response:
            token = response.headers["X-Subject-Token"]
        async with session.get(
            f"{info.endpoint}/v2/{info.project_id}/instances",
            params={"name": "redis-prod", "name_equal": "true"},
            headers={"X-Auth-Token": token},
        ) as response:
            body = await response.json()

    assert info.endpoint.startswith("http://127.0.0.1:")
    assert [item["name"] for item in body["instances"]] == ["redis-prod"]
    assert info.env()["DCS_ENDPOINT"] == info.endpoint
    assert info.env()["DCS_IAM_ENDPOINT"] == info.endpoint
    assert set(info.env()) >= {
        "DCS_PROJECT_ID",
        "DCS_ACCESS_KEY",
        "DCS_SECRET_KEY",
        "DCS_USERNAME",
        "DCS_PASSWORD",
    }


async def test_serve_reports_readiness_and_stops_when_cancelled(emulator: DcsEmulator) -> None:
    ready: asyncio.Queue[ConnectionInfo] = asyncio.Queue()
    task = asyncio.create_task(serve(port=0, emulator=emulator, on_ready=ready.put_nowait))
    info = await asyncio.wait_for(ready.get(), timeout=10)

    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{info.endpoint}/v2/{PROJECT}/instances") as response,
    ):
        status = response.status
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert status == 401
    assert info.access_key == DEFAULT_ACCESS_KEY


# -- faults beyond error answers: not JSON, no answer, slow answers ------------------------------------


async def test_a_gateway_html_page_answers_any_dcs_call_once(cloud: Cloud) -> None:
    cloud.emulator.inject(Fault(Answer.HTML))

    page = await cloud.signed("GET", instances_path())
    after = await cloud.signed("GET", instances_path())

    assert (page.status, page.headers["Content-Type"]) == (502, "text/html; charset=utf-8")
    assert page.body.startswith(b"<html>")
    assert page.headers["X-Request-Id"]
    assert after.status == 200
    assert [call.fault for call in cloud.emulator.calls] == [Fault(Answer.HTML), None]


async def test_an_empty_body_says_json_but_is_empty(cloud: Cloud) -> None:
    instance = cloud.emulator.add_instance("redis-prod")
    cloud.emulator.inject(Fault(Answer.EMPTY, target="list_backups"))

    reply = await cloud.signed("GET", backups_path(instance.instance_id))

    assert (reply.status, reply.headers["Content-Type"], reply.body) == (200, "application/json", b"")


async def test_a_truncated_answer_still_creates_the_backup(cloud: Cloud) -> None:
    instance = cloud.emulator.add_instance("redis-prod")
    cloud.emulator.inject(Fault(Answer.TRUNCATED, target=Endpoint.CREATE_BACKUP))

    reply = await cloud.backup(instance.instance_id, {"remark": "cut short"})

    [record] = cloud.emulator.backups_of(instance.instance_id)
    assert reply.status == 200
    assert json.dumps({"backup_id": record.backup_id}).encode().startswith(reply.body)
    with pytest.raises(json.JSONDecodeError):
        reply.json()


async def test_a_backup_made_but_its_answer_lost(cloud: Cloud) -> None:
    instance = cloud.emulator.add_instance("redis-prod")
    cloud.emulator.inject(Fault(Answer.NOTHING, target="create_backup", applied=True))
    cloud.emulator.inject(Fault(Answer.ERROR, target="create_backup", status=504, applied=True))

    with pytest.raises(aiohttp.ServerDisconnectedError):
        await cloud.backup(instance.instance_id, {})
    cloud.clock.advance(WAITING + BACKUPING)
    timed_out = await cloud.backup(instance.instance_id, {})

    assert_dcs_error(timed_out, 504, "DCS.5000")
    assert len(cloud.emulator.backups_of(instance.instance_id)) == 2
    assert [call.status for call in cloud.emulator.calls] == [0, 504]


async def test_an_answer_held_back_longer_than_the_client_waits(cloud: Cloud) -> None:
    cloud.emulator.add_instance("redis-prod")
    cloud.emulator.inject(Fault(Answer.NORMAL, target="list_instances", delay=0.3))
    url = f"http://{cloud.host}{instances_path()}"
    headers = {"X-Auth-Token": await cloud.token()}

    with pytest.raises(TimeoutError):
        async with cloud.session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=0.05)):
            pass
    await cloud.emulator.wait_for_calls(lambda: len(cloud.emulator.calls_to("list_instances")) == 1)

    [call] = cloud.emulator.calls_to("list_instances")
    assert (call.status, call.fault) == (200, Fault(Answer.NORMAL, target="list_instances", delay=0.3))


@pytest.mark.parametrize(
    "fault",
    [
        {"answer": Answer.NORMAL, "status": 500},
        {"answer": Answer.HTML, "error": "DCS.5000"},
        {"times": 0},
        {"status": 99},
    ],
)
def test_nonsense_faults_are_refused(fault: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"status|times|error"):
        Fault(**fault)


def test_faults_name_endpoints_the_emulator_serves(emulator: DcsEmulator) -> None:
    with pytest.raises(ValueError, match="delete_backup"):
        emulator.inject(Fault(target="delete_backup"))
    with pytest.raises(ValueError, match="429 or 5xx"):
        emulator.inject(Fault(status=404))
