"""The HTTP face of the Slack stand-in: the Web API (``/api/{method}``), response_urls
(``/response/{token}``) and the Socket Mode WebSocket links, with injected faults.

Every Web API call passes, in this order: reading the parameters (query, JSON or form body), the token
check, injected faults, then the method. Faults without a target hit Web API methods only; response_url
posts are hit by faults aimed at ``"response_url"``. Each call and post is recorded in the traffic log.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping

from aiohttp import web
from multidict import CIMultiDict

from bot.standins.faults import Answer, Fault, FaultPlan, faulty_answer, hang_up
from bot.standins.slack.payloads import FORM_CONTENT_TYPE
from bot.standins.slack.response_urls import ResponsePost, ResponseUrls
from bot.standins.slack.socket_mode import SOCKET_PATH, SocketModeServer
from bot.standins.slack.timeline import JsonDict
from bot.standins.slack.traffic import ApiCall, Traffic
from bot.standins.slack.web_api import ApiReply, WebApi, error

#: The fault target for posts to response_urls.
RESPONSE_URL = "response_url"


class _BadRequestBodyError(Exception):
    pass


async def _read_params(request: web.Request) -> JsonDict:
    """Query parameters merged with a JSON or form body, as Slack accepts all three."""
    params: JsonDict = dict(request.query)
    if not request.body_exists:
        return params
    if request.content_type == "application/json":
        raw = await request.text()
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            raise _BadRequestBodyError from exc
        if not isinstance(body, dict):
            raise _BadRequestBodyError
        params.update(body)
    elif request.content_type in (FORM_CONTENT_TYPE, "multipart/form-data"):
        form = await request.post()
        params.update({key: value for key, value in form.items() if isinstance(value, str)})
    return params


def _bearer(headers: Mapping[str, str]) -> str | None:
    value = headers.get("Authorization", "")
    scheme, _, credentials = value.partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None


def _json_response(reply: ApiReply) -> web.Response:
    return web.json_response(reply.body, status=reply.status, headers=dict(reply.headers))


def _api_error(fault: Fault) -> ApiReply:
    """Slack's answer for an injected ``ERROR`` fault: ``ratelimited`` is HTTP 429 with ``Retry-After``
    (1 unless given), as Slack sends it; other errors HTTP 200 unless given."""
    name = fault.error or "internal_error"
    rate_limited = name == "ratelimited"
    default_wait = rate_limited and fault.retry_after is None
    headers = {"Retry-After": "1"} if default_wait else fault.retry_after_header
    status = fault.status if fault.status is not None else (429 if rate_limited else 200)
    return error(name, status=status, headers=headers)


class SlackServer:
    """Serves the Web API, response_urls and Socket Mode of one stand-in on one aiohttp application."""

    def __init__(
        self, web_api: WebApi, response_urls: ResponseUrls, socket: SocketModeServer, traffic: Traffic
    ) -> None:
        self.faults = FaultPlan()
        self._web_api = web_api
        self._response_urls = response_urls
        self._socket = socket
        self._traffic = traffic
        self._base_url: str | None = None
        self._app: web.Application | None = None
        self._runner: web.AppRunner | None = None

    def inject(self, fault: Fault) -> None:
        """The next ``fault.times`` calls of ``fault.target`` get ``fault`` (see bot.standins.faults)."""
        known = self._web_api.methods | {RESPONSE_URL}
        if fault.target is not None and fault.target not in known:
            raise ValueError(f"the stand-in serves no {fault.target!r}; faults can target {sorted(known)}")
        if fault.instance_id is not None:
            raise ValueError("instance_id applies to DCS faults only")
        self.faults.add(fault)

    # ---- serving ---------------------------------------------------------------------------------------

    def app(self) -> web.Application:
        """The aiohttp application (one per stand-in)."""
        if self._app is None:
            app = web.Application()
            app.router.add_route("*", "/api/{method}", self._handle_api)
            app.router.add_post("/response/{token}", self._handle_response_url)
            app.router.add_get(SOCKET_PATH, self._socket.handle_websocket)
            # Open WebSocket handlers would otherwise hold up the server's shutdown.
            app.on_shutdown.append(self._socket.shutdown)
            self._app = app
        return self._app

    def bind(self, base_url: str) -> None:
        """Tells the stand-in where it is served; response_urls it hands out point there."""
        self._base_url = base_url.rstrip("/")

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("SlackStandIn is not bound to a URL yet: call bind() or start() first")
        return self._base_url

    @property
    def api_url(self) -> str:
        """The Web API base URL for ``AsyncWebClient(base_url=...)``, with the trailing slash it needs."""
        return f"{self.base_url}/api/"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serves the app (port 0 picks a free one) and returns the base URL."""
        runner = web.AppRunner(self.app())
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        self._runner = runner
        bound_port = runner.addresses[0][1]
        self.bind(f"http://{host}:{bound_port}")
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ---- handlers --------------------------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params: JsonDict = {}
        fault: Fault | None = None
        try:
            params = await _read_params(request)
        except _BadRequestBodyError:
            reply = error("invalid_json")
        else:
            bearer = _bearer(request.headers)
            token = bearer or str(params.get("token") or "") or None
            refusal = self._web_api.refusal(method, token=token, token_in_header=bearer is not None)
            fault = None if refusal is not None else self.faults.take(method)
            if refusal is not None:
                reply = refusal
            elif fault is not None and fault.answer is Answer.ERROR and not fault.applied:
                reply = _api_error(fault)
            elif fault is None or fault.takes_effect:
                reply = self._web_api.call(method, params)
            else:
                reply = ApiReply({}, status=0)
        call = ApiCall(method, params, CIMultiDict(request.headers), request.method, reply, fault)
        self._traffic.record_call(call)
        if fault is None:
            return _json_response(reply)
        real = None if reply.status == 0 else _json_response(reply)
        sent = await faulty_answer(fault, real=real, error=_json_response(_api_error(fault)))
        return hang_up(request) if sent is None else sent

    async def _handle_response_url(self, request: web.Request) -> web.StreamResponse:
        raw = await request.text()
        fault = self.faults.take(RESPONSE_URL, main_api=False)
        post = self._response_urls.post(
            request.match_info["token"], raw, apply=fault is None or fault.takes_effect
        )
        if fault is not None:
            post = _with_fault(post, fault)
        self._traffic.record_post(post)
        real = web.Response(status=post.status, text=post.answer)
        if fault is None:
            return real
        error_answer = web.Response(
            status=fault.status or 500, text=fault.error or "internal_error", headers=fault.retry_after_header
        )
        sent = await faulty_answer(fault, real=real, error=error_answer)
        return hang_up(request) if sent is None else sent


def _with_fault(post: ResponsePost, fault: Fault) -> ResponsePost:
    return dataclasses.replace(post, fault=fault)
