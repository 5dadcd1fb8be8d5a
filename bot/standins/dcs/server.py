"""The HTTP face of the DCS stand-in: routes, authentication, parameter checks, error bodies, faults.

Every DCS call passes, in this order: route match (404 DCS.4001 / 405 DCS.5001), authentication
(X-Auth-Token or SDK-HMAC-SHA256), the project check, injected faults, then the handler. Each answer
carries ``X-Request-Id`` and is written to the project's call log. Serves a
:class:`~bot.standins.dcs.project.DcsProject`; tests arrange one through
:class:`~bot.standins.dcs.control.DcsEmulator`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web
from aiohttp.typedefs import Handler

from bot.dcs.signer import DATE_FORMAT, DATE_HEADER, parse_authorization, verify
from bot.standins.dcs.call_log import DCS_ENDPOINTS, CallRecord, Endpoint
from bot.standins.dcs.errors import CloudError, ErrorStyle, injected_error, invalid_parameter
from bot.standins.dcs.project import DcsProject
from bot.standins.dcs.records import IssuedToken, JsonObject, iso_micros
from bot.standins.faults import Fault, faulty_answer, hang_up

logger = logging.getLogger(__name__)

EMULATOR: web.AppKey[DcsProject] = web.AppKey("dcs_emulator")

REMARK_MAX_CHARACTERS = 128
_DEFAULT_LIMIT = 10
_MAX_LIMIT = 1000
_DIGITS = re.compile(r"[0-9]{1,9}")
_API_TIME = re.compile(r"[0-9]{14}")


def create_app(emulator: DcsProject) -> web.Application:
    app = web.Application(middlewares=[_answer_like_the_cloud])
    app[EMULATOR] = emulator
    instances = "/v2/{project_id}/instances"
    backups = instances + "/{instance_id}/backups"
    app.router.add_get(instances, _list_instances, name=Endpoint.LIST_INSTANCES, allow_head=False)
    app.router.add_get(
        instances + "/{instance_id}", _show_instance, name=Endpoint.SHOW_INSTANCE, allow_head=False
    )
    app.router.add_post(backups, _create_backup, name=Endpoint.CREATE_BACKUP)
    app.router.add_get(backups, _list_backups, name=Endpoint.LIST_BACKUPS, allow_head=False)
    app.router.add_post("/v3/auth/tokens", _issue_token, name=Endpoint.IAM_TOKEN)
    return app


# -- envelope: request ids, errors, the call log ---------------------------------------------------------


@web.middleware
async def _answer_like_the_cloud(request: web.Request, handler: Handler) -> web.StreamResponse:
    emulator = request.app[EMULATOR]
    request_id = emulator.new_request_id()
    endpoint = _endpoint_of(request)
    # Filled in as the call proceeds, so the call log holds it even if the client gives up and the
    # handler is cancelled (then with status 0, like a call closed without an answer).
    outcome = _Outcome()
    try:
        await _answer(request, handler, request_id, outcome)
    finally:
        emulator.log.record(
            CallRecord(
                at=emulator.now(),
                method=request.method,
                path=request.path,
                endpoint=endpoint,
                instance_id=request.match_info.get("instance_id"),
                status=0 if outcome.response is None else outcome.response.status,
                request_id=request_id,
                query=dict(request.query),
                fault=outcome.fault,
            )
        )
    if outcome.response is None:
        return hang_up(request)
    outcome.response.headers["X-Request-Id"] = request_id
    return outcome.response


@dataclass(slots=True)
class _Outcome:
    fault: Fault | None = None
    response: web.Response | None = None


async def _answer(request: web.Request, handler: Handler, request_id: str, outcome: _Outcome) -> None:
    emulator = request.app[EMULATOR]
    endpoint = _endpoint_of(request)
    try:
        if endpoint is not None and endpoint in DCS_ENDPOINTS:
            await _authenticate(request, emulator)
        if endpoint is not None:
            outcome.fault = emulator.faults.take(
                endpoint,
                main_api=endpoint in DCS_ENDPOINTS,
                instance_id=request.match_info.get("instance_id"),
            )
    except CloudError as failure:
        outcome.response = _failure_response(failure, request_id)
        return
    fault = outcome.fault
    if fault is None or fault.takes_effect:
        outcome.response = await _handled(request, handler, request_id)
    if fault is not None:
        error = _failure_response(injected_error(fault), request_id)
        outcome.response = await faulty_answer(fault, real=outcome.response, error=error)


async def _handled(request: web.Request, handler: Handler, request_id: str) -> web.Response:
    """The handler's answer, or the cloud's error body for whatever it raised."""
    try:
        response = await handler(request)
    except CloudError as failure:
        return _failure_response(failure, request_id)
    except web.HTTPException as routing_error:
        return _failure_response(_routing_failure(routing_error), request_id)
    except Exception:
        logger.exception("DCS emulator failed on %s %s", request.method, request.path)
        return _failure_response(CloudError(500, "DCS.5000", "Internal service error."), request_id)
    assert isinstance(response, web.Response)
    return response


def _endpoint_of(request: web.Request) -> Endpoint | None:
    name = request.match_info.route.name
    return Endpoint(name) if name is not None else None


def _failure_response(failure: CloudError, request_id: str) -> web.Response:
    return web.json_response(failure.body(request_id), status=failure.status, headers=failure.headers)


def _routing_failure(error: web.HTTPException) -> CloudError:
    if error.status == 404:
        return CloudError(404, "DCS.4001", "The requested URL does not exist.")
    if error.status == 405:
        return CloudError(405, "DCS.5001", "Method not allowed.")
    return CloudError(error.status, "DCS.5000", error.reason)


# -- authentication ----------------------------------------------------------------------------------


async def _authenticate(request: web.Request, emulator: DcsProject) -> None:
    path_project = request.match_info["project_id"]
    authorization = request.headers.get("Authorization")
    token = request.headers.get("X-Auth-Token")
    if authorization is not None:
        await _verify_signature(request, emulator, authorization)
        header_project = request.headers.get("X-Project-Id", path_project)
        if emulator.project_id != path_project or header_project != path_project:
            raise _project_mismatch()
    elif token is not None:
        if _valid_token(emulator, token).project_id != path_project:
            raise _project_mismatch()
    else:
        raise CloudError(401, "DCS.1003", "The request carries no token.")


def _project_mismatch() -> CloudError:
    # Chosen over 404 so a misconfigured project ID reads as a credentials problem, as DCS.1004 does.
    return CloudError(401, "DCS.1004", "The project ID does not match the token.")


def _valid_token(emulator: DcsProject, value: str) -> IssuedToken:
    issued = emulator.token(value)
    if issued is None:
        raise CloudError(401, "DCS.1001", "The token is invalid.")
    if emulator.now() >= issued.expires_at:
        raise CloudError(401, "DCS.1002", "The token has expired.")
    return issued


async def _verify_signature(request: web.Request, emulator: DcsProject, authorization: str) -> None:
    parsed = parse_authorization(authorization)
    if parsed is None or parsed.access_key != emulator.access_key:
        raise _signature_failure()
    signed_at = _sdk_date_seconds(request.headers.get(DATE_HEADER, ""))
    if signed_at is None:
        raise _signature_failure()
    skew = emulator.max_sdk_date_skew
    if skew is not None and abs(emulator.now() - signed_at) > skew:
        raise CloudError(
            401,
            "APIGW.0303",
            "Incorrect app authentication information: X-Sdk-Date is more than 15 minutes off.",
            style=ErrorStyle.GATEWAY,
        )
    genuine = verify(
        secret_key=emulator.secret_key,
        parsed=parsed,
        method=request.method,
        path=request.rel_url.raw_path,
        raw_query=request.rel_url.raw_query_string,
        headers=request.headers,
        body=await request.read(),
    )
    if not genuine:
        raise _signature_failure()


def _signature_failure() -> CloudError:
    return CloudError(
        401,
        "APIGW.0301",
        "Incorrect IAM authentication information: verify aksk signature fail.",
        style=ErrorStyle.GATEWAY,
    )


def _sdk_date_seconds(value: str) -> float | None:
    try:
        return datetime.strptime(value, DATE_FORMAT).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


# -- DCS handlers ------------------------------------------------------------------------------------


async def _list_instances(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    offset = _int_param(request, "offset", default=0, minimum=0)
    limit = _int_param(request, "limit", default=_DEFAULT_LIMIT, minimum=1, maximum=_MAX_LIMIT)
    exact = _bool_param(request, "name_equal", default=False)
    name = request.query.get("name")
    instance_id = request.query.get("instance_id")
    status = request.query.get("status")
    matches = [
        instance
        for instance in emulator.instances
        if _name_matches(instance.name, name, exact=exact)
        and instance_id in (None, instance.instance_id)
        and status in (None, instance.status)
    ]
    page = matches[offset : offset + limit]
    return web.json_response(
        {"instance_num": len(matches), "instances": [instance.list_json() for instance in page]}
    )


def _name_matches(name: str, wanted: str | None, *, exact: bool) -> bool:
    if wanted is None:
        return True
    return name == wanted if exact else wanted.casefold() in name.casefold()


async def _show_instance(request: web.Request) -> web.Response:
    instance = request.app[EMULATOR].require_instance(request.match_info["instance_id"])
    return web.json_response(instance.show_json())


async def _create_backup(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    instance = emulator.require_instance(request.match_info["instance_id"])
    payload = _json_object(await request.read())
    record = emulator.start_backup(
        instance.instance_id, backup_format=_backup_format(payload), remark=_remark(payload)
    )
    return web.json_response({"backup_id": record.backup_id})


def _json_object(body: bytes) -> JsonObject:
    if not body.strip():
        raise CloudError(400, "DCS.4004", "The request body is empty.")
    try:
        payload: object = json.loads(body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise CloudError(400, "DCS.4005", "The request body contains invalid characters or is not JSON.")
    return payload


def _remark(payload: JsonObject) -> str:
    remark = payload.get("remark")
    if remark is None:
        return ""
    if not isinstance(remark, str):
        raise invalid_parameter("remark")
    if len(remark) > REMARK_MAX_CHARACTERS:
        raise CloudError(
            400, "DCS.4098", "The value of the remark parameter must be 0 to 128 characters in length."
        )
    return remark


def _backup_format(payload: JsonObject) -> str:
    backup_format = payload.get("backup_format")
    if backup_format is None:
        return "rdb"
    if not isinstance(backup_format, str):
        raise invalid_parameter("backup_format")
    return backup_format


async def _list_backups(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    instance = emulator.require_instance(request.match_info["instance_id"])
    begin = _time_param(request, "begin_time")
    end = _time_param(request, "end_time")
    if begin is not None and end is not None and end < begin:
        raise CloudError(400, "DCS.4025", "The end time must be later than the start time.")
    offset = _int_param(request, "offset", default=0, minimum=0)
    limit = _int_param(request, "limit", default=_DEFAULT_LIMIT, minimum=1, maximum=_MAX_LIMIT)
    matches = [
        record
        for record in emulator.backups_of(instance.instance_id)
        if (begin is None or record.created_at >= begin) and (end is None or record.created_at < end + 1)
    ]
    if not matches:
        return web.Response(status=204)
    now = emulator.now()
    return web.json_response(
        {
            "total_num": len(matches),
            "backup_record_response": [record.to_json(now) for record in matches[offset : offset + limit]],
        }
    )


def _int_param(
    request: web.Request, name: str, *, default: int, minimum: int, maximum: int | None = None
) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if _DIGITS.fullmatch(raw) is None:
        raise invalid_parameter(name)
    value = int(raw)
    if value < minimum or (maximum is not None and value > maximum):
        raise invalid_parameter(name)
    return value


def _bool_param(request: web.Request, name: str, *, default: bool) -> bool:
    raw = request.query.get(name)
    if raw is None:
        return default
    if raw.lower() not in {"true", "false"}:
        raise invalid_parameter(name)
    return raw.lower() == "true"


def _time_param(request: web.Request, name: str) -> float | None:
    """``yyyyMMddHHmmss`` in UTC, as UNIX seconds."""
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        if _API_TIME.fullmatch(raw) is None:
            raise ValueError(raw)
        return datetime.strptime(raw, "%Y%m%d%H%M%S").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise invalid_parameter(name) from None


# -- IAM ---------------------------------------------------------------------------------------------


async def _issue_token(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    try:
        payload: object = json.loads(await request.read())
    except ValueError:
        raise _iam_failure(400, "The request body is not valid JSON.") from None
    domain, username, password = _password_identity(payload)
    if not emulator.password_matches(domain, username, password):
        raise _iam_failure(401, "The username or password is wrong.")
    project_scoped = _wants_project_scope(emulator, _dig(payload, "auth", "scope"))
    issued = emulator.issue_token(domain, username, project_scoped=project_scoped)
    with_catalog = not request.query.get("nocatalog")
    body = _token_body(emulator, issued, catalog_url=str(request.url.origin()) if with_catalog else None)
    return web.json_response(body, status=201, headers={"X-Subject-Token": issued.token})


def _iam_failure(status: int, message: str) -> CloudError:
    return CloudError(status, str(status), message, style=ErrorStyle.IAM)


def _dig(value: object, *keys: str) -> object:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _password_identity(payload: object) -> tuple[str, str, str]:
    methods = _dig(payload, "auth", "identity", "methods")
    if not isinstance(methods, list) or "password" not in methods:
        raise _iam_failure(400, "Only the password method is supported by the emulator.")
    user = _dig(payload, "auth", "identity", "password", "user")
    domain, username, password = _dig(user, "domain", "name"), _dig(user, "name"), _dig(user, "password")
    if not (isinstance(domain, str) and isinstance(username, str) and isinstance(password, str)):
        raise _iam_failure(400, "The request body must name the user, its password and its domain.")
    return domain, username, password


def _wants_project_scope(emulator: DcsProject, scope: object) -> bool:
    """True for a scope on the emulator's project; False for a domain scope or none (DCS refuses those)."""
    project = _dig(scope, "project")
    if not isinstance(project, dict):
        return False
    project_id, project_name = project.get("id"), project.get("name")
    if project_id is None and project_name is None:
        raise _iam_failure(400, "A project scope needs the project's id or name.")
    if project_id not in (None, emulator.project_id) or project_name not in (None, emulator.project_name):
        raise _iam_failure(401, "The user has no access to the requested project.")
    return True


def _token_body(emulator: DcsProject, issued: IssuedToken, *, catalog_url: str | None) -> JsonObject:
    domain = {"id": _stable_id("domain", issued.domain), "name": issued.domain}
    token: JsonObject = {
        "methods": ["password"],
        "issued_at": iso_micros(issued.issued_at),
        "expires_at": iso_micros(issued.expires_at),
        "user": {
            "id": _stable_id("user", issued.domain, issued.username),
            "name": issued.username,
            "domain": domain,
            "password_expires_at": "",
        },
        "roles": [{"id": _stable_id("role", "te_admin"), "name": "te_admin"}],
    }
    if issued.project_id is not None:
        token["project"] = {"id": issued.project_id, "name": emulator.project_name, "domain": domain}
    else:
        token["domain"] = domain
    if catalog_url is not None:
        token["catalog"] = [_dcs_catalog_entry(emulator, catalog_url)]
    return {"token": token}


def _dcs_catalog_entry(emulator: DcsProject, url: str) -> JsonObject:
    endpoint = {
        "id": _stable_id("endpoint", url),
        "interface": "public",
        "region": emulator.project_name,
        "region_id": emulator.project_name,
        "url": url,
    }
    return {"id": _stable_id("service", "dcs"), "name": "dcs", "type": "dcs", "endpoints": [endpoint]}


def _stable_id(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:32]
