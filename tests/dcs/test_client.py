"""DcsClient against a fake DCS on 127.0.0.1 that verifies every signature with huaweicloudsdkcore."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import aiohttp
import pytest

from bot.core.errors import DcsApiError, DcsError, DcsTransportError
from bot.core.ports import DcsApi
from bot.core.rules.instances import BackupFormat, BackupPage
from bot.dcs.auth import AkSkAuth
from bot.dcs.client import DcsClient, dcs_time
from bot.dcs.errors import (
    api_error,
    describe_client_error,
    error_fields,
    retry_after_seconds,
)
from tests.dcs.conftest import (
    ACCESS_KEY,
    FAST_BACKOFF,
    INSTANCE_ID,
    PASSWORD,
    PROJECT_ID,
    SECRET_KEY,
    TIMEOUT,
    TOKEN_PREFIX,
    Canned,
    FakeCloud,
    token_auth,
    unused_port,
)

PROJECT_PATH = f"/v2/{PROJECT_ID}"
BACKUP_ID = "548ceeff-2cbb-47ab-9a1c-7b085a8c08d7"

SHOWN_INSTANCE = {
    "instance_id": INSTANCE_ID,
    "name": "redis-prod",
    "status": "RUNNING",
    "sub_status": "normal",
    "cache_mode": "ha",
    "engine": "Redis",
    "engine_version": {},
    "spec_code": "redis.ha.xu1.tiny.r2.128",
    "capacity": 2,
    "capacity_minor": "",
    "task": {},
    "instance_backup_policy": None,
    "features": {"support_acl": True, "support_ssl": False},
    "tags": [{"key": "env", "value": "prod"}],
}

LISTED_INSTANCE = {
    "instance_id": "22222222-2222-3333-4444-555555555555",
    "name": "redis-prod-2",
    "status": "RUNNING",
    "engine": "Redis",
    "engine_version": "6.0",
    "spec_code": "redis.single.xu1.tiny.128",
    "capacity": 1,
}

BACKUP_RECORD = {
    "backup_id": BACKUP_ID,
    "backup_name": "backup_20190510163116",
    "instance_id": INSTANCE_ID,
    "remark": "nightly",
    "backup_type": "manual",
    "backup_format": "aof",
    "status": "succeed",
    "progress": "100.00",
    "size": 1024,
    "created_at": "2019-05-10T08:31:16.166Z",
    "updated_at": "2019-05-10T08:35:16.166Z",
    "execution_at": "2019-05-10T08:31:16.166Z",
    "period": {},
    "error_code": {},
    "is_support_restore": "TRUE",
}


# --- happy paths


def test_client_is_a_dcs_api(aksk_client: DcsClient) -> None:
    api: DcsApi = aksk_client

    assert api is aksk_client


async def test_show_instance(cloud: FakeCloud, aksk_client: DcsClient) -> None:
    cloud.reply(Canned(body=SHOWN_INSTANCE))

    instance = await aksk_client.show_instance(INSTANCE_ID)

    (request,) = cloud.dcs_requests
    assert (request.method, request.raw_path, request.raw_query, request.body) == (
        "GET",
        f"{PROJECT_PATH}/instances/{INSTANCE_ID}",
        "",
        b"",
    )
    assert instance.instance_id == INSTANCE_ID
    assert (instance.name, instance.status, instance.cache_mode) == ("redis-prod", "RUNNING", "ha")
    assert instance.engine_version is None
    assert instance.is_running
    assert instance.tags == (("env", "prod"),)
    assert not instance.is_single_node


async def test_list_instances_by_exact_name(cloud: FakeCloud, aksk_client: DcsClient) -> None:
    cloud.reply(Canned(body={"instance_num": 3, "instances": [SHOWN_INSTANCE, LISTED_INSTANCE]}))

    page = await aksk_client.list_instances(name="redis prod/ü+~", exact=True, limit=10, offset=20)

    (request,) = cloud.dcs_requests
    assert request.raw_path == f"{PROJECT_PATH}/instances"
    assert request.raw_query == "limit=10&name=redis%20prod%2F%C3%BC%2B~&name_equal=true&offset=20"
    assert page.total == 3
    assert [instance.name for instance in page.instances] == ["redis-prod", "redis-prod-2"]
    assert page.instances[1].is_single_node


async def test_list_instances_fuzzy_and_unfiltered(cloud: FakeCloud, aksk_client: DcsClient) -> None:
    cloud.reply(
        Canned(body={"instance_num": 0, "instances": None}), Canned(body={"instances": [LISTED_INSTANCE]})
    )

    fuzzy = await aksk_client.list_instances(name="redis")
    everything = await aksk_client.list_instances()

    assert [request.raw_query for request in cloud.dcs_requests] == [
        "limit=100&name=redis&name_equal=false&offset=0",
        "limit=100&offset=0",
    ]
    assert (fuzzy.instances, fuzzy.total) == ([], 0)
    assert everything.total == 1


@pytest.mark.parametrize("backup_format", [BackupFormat.AOF, BackupFormat.RDB])
async def test_create_backup(cloud: FakeCloud, aksk_client: DcsClient, backup_format: BackupFormat) -> None:
    cloud.reply(Canned(body={"backup_id": BACKUP_ID}))

    backup_id = await aksk_client.create_backup(INSTANCE_ID, backup_format=backup_format, remark="nightly")

    (request,) = cloud.dcs_requests
    assert request.method == "POST"
    assert request.raw_path == f"{PROJECT_PATH}/instances/{INSTANCE_ID}/backups"
    assert request.body == f'{{"remark":"nightly","backup_format":"{backup_format}"}}'.encode()
    assert request.headers["Content-Type"] == "application/json"
    assert backup_id == BACKUP_ID


async def test_create_backup_with_a_unicode_remark(cloud: FakeCloud, aksk_client: DcsClient) -> None:
    cloud.reply(Canned(body={"backup_id": BACKUP_ID}))

    await aksk_client.create_backup(
        INSTANCE_ID, backup_format=BackupFormat.AOF, remark='vor dem "Update" – ü'
    )

    assert cloud.dcs_requests[0].json() == {"remark": 'vor dem "Update" – ü', "backup_format": "aof"}


async def test_list_backups(cloud: FakeCloud, aksk_client: DcsClient) -> None:
    failed = {**BACKUP_RECORD, "backup_id": "b2", "status": "failed", "error_code": "dcs.08.0002"}
    failed |= {"is_support_restore": "FALSE", "created_at": "", "progress": {}}
    cloud.reply(Canned(body={"total_num": 7, "backup_record_response": [BACKUP_RECORD, failed]}))
    cest = timezone(timedelta(hours=2))

    page = await aksk_client.list_backups(
        INSTANCE_ID,
        begin_time=datetime(2024, 5, 1, 14, 0, 0, tzinfo=cest),
        end_time=datetime(2024, 5, 1, 13, 30, 15),
        limit=5,
        offset=10,
    )

    (request,) = cloud.dcs_requests
    assert request.raw_path == f"{PROJECT_PATH}/instances/{INSTANCE_ID}/backups"
    assert request.raw_query == "begin_time=20240501120000&end_time=20240501133015&limit=5&offset=10"
    assert page.total == 7
    succeeded, broken = page.records
    assert (succeeded.backup_id, succeeded.status, succeeded.error_code) == (BACKUP_ID, "succeed", None)
    assert succeeded.created_at == datetime(2019, 5, 10, 8, 31, 16, 166000, tzinfo=UTC)
    assert succeeded.is_final
    assert (broken.error_code, broken.created_at, broken.progress) == ("dcs.08.0002", None, None)


@pytest.mark.parametrize("canned", [Canned(status=204), Canned(status=200, raw_body=b"")])
async def test_list_backups_without_content_is_an_empty_page(
    cloud: FakeCloud, aksk_client: DcsClient, canned: Canned
) -> None:
    cloud.reply(canned)

    page = await aksk_client.list_backups(INSTANCE_ID)

    assert cloud.dcs_requests[0].raw_query == "limit=10&offset=0"
    assert page == BackupPage(records=[], total=0)


async def test_list_backups_without_total(cloud: FakeCloud, aksk_client: DcsClient) -> None:
    cloud.reply(Canned(body={"backup_record_response": [BACKUP_RECORD]}))

    page = await aksk_client.list_backups(INSTANCE_ID)

    assert page.total == 1


async def test_token_auth_end_to_end(cloud: FakeCloud, token_client: DcsClient) -> None:
    cloud.reply(Canned(body=SHOWN_INSTANCE), Canned(body={"backup_id": BACKUP_ID}), Canned(status=204))

    await token_client.show_instance(INSTANCE_ID)
    await token_client.create_backup(INSTANCE_ID, backup_format=BackupFormat.AOF, remark="x")
    await token_client.list_backups(INSTANCE_ID)

    assert len(cloud.iam_requests) == 1
    assert {request.headers["X-Auth-Token"] for request in cloud.dcs_requests} == {cloud.issued_tokens[0]}
    assert all("Authorization" not in request.headers for request in cloud.dcs_requests)


async def test_endpoint_with_trailing_slash(cloud: FakeCloud, session: aiohttp.ClientSession) -> None:
    auth = AkSkAuth(ACCESS_KEY, SECRET_KEY, PROJECT_ID)
    client = DcsClient(
        session, endpoint=cloud.base_url + "/", project_id=PROJECT_ID, auth=auth, timeout=TIMEOUT
    )
    cloud.reply(Canned(body=SHOWN_INSTANCE))

    await client.show_instance(INSTANCE_ID)

    assert cloud.dcs_requests[0].raw_path == f"{PROJECT_PATH}/instances/{INSTANCE_ID}"


@pytest.mark.parametrize("endpoint", ["dcs.eu-de.otc.t-systems.com", "ftp://dcs.example", "/v2"])
def test_endpoint_must_be_an_http_url(session: aiohttp.ClientSession, endpoint: str) -> None:
    auth = AkSkAuth(ACCESS_KEY, SECRET_KEY, PROJECT_ID)

    with pytest.raises(ValueError, match="absolute http"):
        DcsClient(session, endpoint=endpoint, project_id=PROJECT_ID, auth=auth, timeout=TIMEOUT)


# --- path safety


@pytest.mark.parametrize(
    ("instance_id", "segment"),
    [
        ("../x", "..%2Fx"),
        ("a/../../b", "a%2F..%2F..%2Fb"),
        ("x?y#z", "x%3Fy%23z"),
        ("100% ü", "100%25%20%C3%BC"),
    ],
)
async def test_instance_ids_stay_one_path_segment(
    cloud: FakeCloud, aksk_client: DcsClient, instance_id: str, segment: str
) -> None:
    cloud.reply(Canned(body={"backup_id": BACKUP_ID}))

    await aksk_client.create_backup(instance_id, backup_format=BackupFormat.AOF, remark="")

    assert cloud.dcs_requests[0].raw_path == f"{PROJECT_PATH}/instances/{segment}/backups"


@pytest.mark.parametrize("instance_id", ["", ".", ".."])
async def test_dot_and_empty_ids_are_refused(
    cloud: FakeCloud, aksk_client: DcsClient, instance_id: str
) -> None:
    with pytest.raises(ValueError, match="cannot be used as an id"):
        await aksk_client.show_instance(instance_id)

    assert cloud.dcs_requests == []


# --- API errors


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (
            {"error_code": "DCS.4096", "error_msg": "backuping", "error_ext_msg": None},
            "DCS.4096",
            "backuping",
        ),
        ({"errorCode": "DCS.3022", "errorMsg": "no such instance"}, "DCS.3022", "no such instance"),
        (
            {"code": "APIGW.0301", "message": "Incorrect IAM authentication"},
            "APIGW.0301",
            "Incorrect IAM authentication",
        ),
        ({"error": {"code": "APIGW.0101", "message": "API not found"}}, "APIGW.0101", "API not found"),
        ({"error_code": "DCS.5000"}, "DCS.5000", "HTTP 400 Bad Request from DCS"),
        ({"unexpected": True}, None, "HTTP 400 Bad Request from DCS"),
        ([1, 2], None, "HTTP 400 Bad Request from DCS"),
    ],
)
async def test_error_bodies(
    cloud: FakeCloud, aksk_client: DcsClient, body: object, code: str | None, message: str
) -> None:
    cloud.reply(Canned(status=400, body=body, headers={"X-Request-Id": "req-42"}))

    with pytest.raises(DcsApiError) as caught:
        await aksk_client.create_backup(INSTANCE_ID, backup_format=BackupFormat.AOF, remark="")

    error = caught.value
    assert (error.status, error.error_code, error.error_msg, error.request_id) == (
        400,
        code,
        message,
        "req-42",
    )
    assert error.retry_after is None
    assert not error.is_retryable


async def test_non_json_error_body(cloud: FakeCloud, aksk_client: DcsClient) -> None:
    cloud.reply(Canned(status=502, raw_body=b"<html><body>Bad Gateway</body></html>"))

    with pytest.raises(DcsApiError) as caught:
        await aksk_client.create_backup(INSTANCE_ID, backup_format=BackupFormat.RDB, remark="")

    error = caught.value
    assert (error.status, error.error_code, error.request_id) == (502, None, None)
    assert error.error_msg == "HTTP 502 Bad Gateway from DCS"
    assert "<html>" not in str(error)
    assert error.is_retryable


async def test_429_surfaces_retry_after(cloud: FakeCloud, aksk_client: DcsClient) -> None:
    cloud.reply(Canned(status=429, raw_body=b"", headers={"Retry-After": "7"}))

    with pytest.raises(DcsApiError) as caught:
        await aksk_client.list_backups(INSTANCE_ID)

    assert (caught.value.status, caught.value.retry_after) == (429, 7.0)
    assert caught.value.error_msg == "HTTP 429 Too Many Requests from DCS"
    assert len(cloud.dcs_requests) == 1


async def test_redirects_are_not_followed(cloud: FakeCloud, aksk_client: DcsClient) -> None:
    cloud.reply(Canned(status=302, headers={"Location": "http://127.0.0.1:1/elsewhere"}))

    with pytest.raises(DcsApiError) as caught:
        await aksk_client.show_instance(INSTANCE_ID)

    assert caught.value.status == 302
    assert len(cloud.dcs_requests) == 1


@pytest.mark.parametrize(
    "canned",
    [
        Canned(raw_body=b"<html>maintenance</html>"),
        Canned(raw_body=b""),
        Canned(body={"name": "no id"}),
        Canned(body=["not", "an", "object"]),
    ],
)
async def test_unreadable_success_bodies(cloud: FakeCloud, aksk_client: DcsClient, canned: Canned) -> None:
    cloud.reply(canned)

    with pytest.raises(
        DcsTransportError, match="DCS answered show_instance with HTTP 200 but an unreadable body"
    ):
        await aksk_client.show_instance(INSTANCE_ID)


async def test_create_backup_without_backup_id(cloud: FakeCloud, aksk_client: DcsClient) -> None:
    cloud.reply(Canned(body={"backup_id": ""}))

    with pytest.raises(DcsTransportError, match="create_backup"):
        await aksk_client.create_backup(INSTANCE_ID, backup_format=BackupFormat.RDB, remark="")


async def test_list_backups_with_a_broken_record(cloud: FakeCloud, aksk_client: DcsClient) -> None:
    cloud.reply(Canned(body={"total_num": 1, "backup_record_response": [{"backup_id": BACKUP_ID}]}))

    with pytest.raises(DcsTransportError, match="list_backups"):
        await aksk_client.list_backups(INSTANCE_ID)


# --- transport failures


async def test_timeout(cloud: FakeCloud, aksk_client: DcsClient) -> None:
    cloud.reply(Canned(hang=True))

    with pytest.raises(DcsTransportError) as caught:
        await aksk_client.show_instance(INSTANCE_ID)

    assert str(caught.value) == "DCS did not answer within 0.2 s"


async def test_connection_refused(session: aiohttp.ClientSession) -> None:
    port = unused_port()
    auth = AkSkAuth(ACCESS_KEY, SECRET_KEY, PROJECT_ID)
    client = DcsClient(
        session, endpoint=f"http://127.0.0.1:{port}", project_id=PROJECT_ID, auth=auth, timeout=TIMEOUT
    )

    with pytest.raises(DcsTransportError) as caught:
        await client.show_instance(INSTANCE_ID)

    assert str(caught.value).startswith(f"DCS is unreachable: cannot connect to 127.0.0.1:{port}")
    assert "Traceback" not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


# --- 401 and token refresh


async def test_401_refreshes_the_token_once(cloud: FakeCloud, token_client: DcsClient) -> None:
    cloud.reply(Canned(status=401, body={"error_code": "DCS.1002", "error_msg": "Token expired"}))
    cloud.reply(Canned(body=SHOWN_INSTANCE))

    instance = await token_client.show_instance(INSTANCE_ID)

    assert instance.instance_id == INSTANCE_ID
    assert len(cloud.iam_requests) == 2
    assert [request.headers["X-Auth-Token"] for request in cloud.dcs_requests] == cloud.issued_tokens


async def test_401_twice_gives_up(cloud: FakeCloud, token_client: DcsClient) -> None:
    expired = Canned(status=401, body={"error_code": "DCS.1002", "error_msg": "Token expired"})
    cloud.reply(expired, expired)

    with pytest.raises(DcsApiError) as caught:
        await token_client.show_instance(INSTANCE_ID)

    assert (caught.value.status, caught.value.error_code) == (401, "DCS.1002")
    assert len(cloud.dcs_requests) == 2
    assert len(cloud.iam_requests) == 2


async def test_401_with_aksk_is_not_retried(cloud: FakeCloud, aksk_client: DcsClient) -> None:
    cloud.reply(
        Canned(status=401, body={"error_code": "APIGW.0301", "error_msg": "Incorrect IAM authentication"})
    )

    with pytest.raises(DcsApiError) as caught:
        await aksk_client.show_instance(INSTANCE_ID)

    assert caught.value.status == 401
    assert len(cloud.dcs_requests) == 1


async def test_other_errors_do_not_refresh_the_token(cloud: FakeCloud, token_client: DcsClient) -> None:
    cloud.reply(Canned(status=403, body={"error_code": "DCS.2003", "error_msg": "no permission"}))

    with pytest.raises(DcsApiError):
        await token_client.show_instance(INSTANCE_ID)

    assert len(cloud.dcs_requests) == 1
    assert len(cloud.iam_requests) == 1


async def test_revoked_token_is_replaced(cloud: FakeCloud, token_client: DcsClient) -> None:
    cloud.reply(Canned(body=SHOWN_INSTANCE), Canned(body=SHOWN_INSTANCE))
    await token_client.show_instance(INSTANCE_ID)

    cloud.revoke_tokens()
    await token_client.show_instance(INSTANCE_ID)

    assert [request.headers["X-Auth-Token"] for request in cloud.dcs_requests] == [
        cloud.issued_tokens[0],
        cloud.issued_tokens[0],
        cloud.issued_tokens[1],
    ]


async def test_iam_failure_during_refresh_surfaces(cloud: FakeCloud, token_client: DcsClient) -> None:
    cloud.reply(Canned(body=SHOWN_INSTANCE))
    await token_client.show_instance(INSTANCE_ID)
    cloud.revoke_tokens()
    cloud.iam_reply(Canned(status=401, body={"error": {"code": 401, "message": "password expired"}}))

    with pytest.raises(DcsApiError, match="IAM refused a token") as caught:
        await token_client.show_instance(INSTANCE_ID)

    assert caught.value.error_msg.endswith("password expired")
    assert len(cloud.dcs_requests) == 2


# --- observer


async def test_observer_sees_every_call(cloud: FakeCloud, session: aiohttp.ClientSession) -> None:
    seen: list[tuple[str, int, float]] = []
    client = DcsClient(
        session,
        endpoint=cloud.base_url,
        project_id=PROJECT_ID,
        auth=token_auth(cloud, session),
        timeout=TIMEOUT,
        observer=lambda *observation: seen.append(observation),
    )
    cloud.reply(
        Canned(body=SHOWN_INSTANCE),
        Canned(body={"instance_num": 0, "instances": []}),
        Canned(status=401),
        Canned(body={"backup_id": BACKUP_ID}),
        Canned(status=204),
        Canned(hang=True),
    )

    await client.show_instance(INSTANCE_ID)
    await client.list_instances()
    await client.create_backup(INSTANCE_ID, backup_format=BackupFormat.AOF, remark="")
    await client.list_backups(INSTANCE_ID)
    with pytest.raises(DcsTransportError):
        await client.list_backups(INSTANCE_ID)

    assert [(name, status) for name, status, _ in seen] == [
        ("show_instance", 200),
        ("list_instances", 200),
        ("create_backup", 200),
        ("list_backups", 204),
        ("list_backups", 0),
    ]
    assert all(seconds >= 0 for _, _, seconds in seen)


async def test_observer_sees_api_errors(cloud: FakeCloud, session: aiohttp.ClientSession) -> None:
    seen: list[tuple[str, int, float]] = []
    auth = AkSkAuth(ACCESS_KEY, SECRET_KEY, PROJECT_ID)
    client = DcsClient(
        session,
        endpoint=cloud.base_url,
        project_id=PROJECT_ID,
        auth=auth,
        timeout=TIMEOUT,
        observer=lambda *observation: seen.append(observation),
    )
    cloud.reply(Canned(status=404, body={"error_code": "DCS.3022", "error_msg": "does not exist"}))

    with pytest.raises(DcsApiError):
        await client.show_instance(INSTANCE_ID)

    assert [(name, status) for name, status, _ in seen] == [("show_instance", 404)]


# --- secrets


async def test_secrets_never_appear_in_errors_or_reprs(
    cloud: FakeCloud, session: aiohttp.ClientSession, aksk_client: DcsClient, token_client: DcsClient
) -> None:
    cloud.reply(
        Canned(status=400, body={"error_code": "DCS.4096", "error_msg": "backuping"}),
        *[Canned(status=502, raw_body=b"bad gateway")] * FAST_BACKOFF.attempts,
        Canned(raw_body=b"{"),
        Canned(status=403, body={"error_code": "DCS.2003", "error_msg": "no permission"}),
        Canned(hang=True),
    )
    errors: list[DcsError] = []
    for call in (aksk_client.show_instance, aksk_client.show_instance, token_client.show_instance):
        with pytest.raises(DcsError) as caught:
            await call(INSTANCE_ID)
        errors.append(caught.value)
    for client in (token_client, token_client):
        with pytest.raises(DcsError) as caught:
            await client.list_backups(INSTANCE_ID)
        errors.append(caught.value)

    texts = [repr(aksk_client), repr(token_client), str(aksk_client), str(token_client)]
    texts += [text for error in errors for text in (str(error), repr(error), repr(error.args))]
    for text in texts:
        for secret in (SECRET_KEY, PASSWORD, TOKEN_PREFIX):
            assert secret not in text


# --- helpers


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (b'{"error_code":"DCS.4096","error_msg":" busy "}', ("DCS.4096", "busy")),
        (b'{"error_code":null,"errorCode":"X","errorMsg":"y"}', ("X", "y")),
        (b'{"code":401,"message":"nope"}', ("401", "nope")),
        (b'{"code":true,"message":{}}', (None, None)),
        (b'{"error":"flat"}', (None, None)),
        (b"\xff\xfe", (None, None)),
        (b"", (None, None)),
        (b"null", (None, None)),
    ],
)
def test_error_fields(body: bytes, fields: tuple[str | None, str | None]) -> None:
    assert error_fields(body) == fields


NOW = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("7", 7.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("nan", None),
        ("inf", None),
        ("Tue, 02 Jan 2024 03:05:05 GMT", 60.0),
        ("Tue, 02 Jan 2024 03:00:00 GMT", 0.0),
        ("Tue, 02 Jan 2024 03:04:35 -0000", 30.0),
        ("soon", None),
    ],
)
def test_retry_after_seconds(value: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(value, now=NOW) == seconds


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC), "20240501120000"),
        (datetime(2024, 5, 1, 1, 2, 3, tzinfo=timezone(timedelta(hours=5))), "20240430200203"),
        (datetime(2024, 5, 1, 1, 2, 3), "20240501010203"),
    ],
)
def test_dcs_time(moment: datetime, text: str) -> None:
    assert dcs_time(moment) == text


async def test_the_fake_cloud_catches_a_bad_signature(
    cloud: FakeCloud, session: aiohttp.ClientSession
) -> None:
    # Guards the other tests: the SDK oracle must actually reject what it did not sign.
    auth = AkSkAuth(ACCESS_KEY, "not-the-secret-key", PROJECT_ID)
    client = DcsClient(session, endpoint=cloud.base_url, project_id=PROJECT_ID, auth=auth, timeout=TIMEOUT)

    with pytest.raises(DcsApiError) as caught:
        await client.show_instance(INSTANCE_ID)

    assert (caught.value.status, caught.value.error_code) == (401, "APIGW.0301")
    assert [problem.split(":")[0] for problem in cloud.problems] == ["signature mismatch"]
    cloud.problems.clear()


def test_unknown_status_without_a_body() -> None:
    error = api_error(599, {}, b"", service="DCS")

    assert error.error_msg == "HTTP 599 from DCS"


def test_transport_errors_are_described_by_their_kind() -> None:
    assert describe_client_error(aiohttp.ServerDisconnectedError()) == "ServerDisconnectedError"
