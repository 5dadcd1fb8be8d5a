"""``GET /livez``, ``GET /readyz`` and ``GET /healthz`` (INTERFACE §10).

- ``/livez`` answers 200 while the process serves; it asks nobody anything.
- ``/readyz`` answers 200 when the database answers, the policy is loaded, (Socket Mode) the link to
  Slack is up and the bot is not shutting down; 503 otherwise. DCS is not part of it: the bot still
  answers people when DCS or IAM is down, and restarting it would not bring them back.
- ``/healthz`` is the detailed JSON — ``ok``, ``role`` and the ``checks`` — with the status of ``/readyz``.
  Its DCS check is what the bot already knows (the last call's outcome and the cached IAM token), never a
  fresh call to DCS or IAM.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web

from bot.dcs.auth import TokenAuth, TokenState
from bot.operations.observed import OBSERVED, DcsCall, Observed, ObservedCloud
from bot.slack.socket_mode import SocketState

# A database that takes longer than this to answer SELECT 1 counts as not answering.
_DATABASE_TIMEOUT = 2.0


@dataclass(frozen=True)
class Check:
    ok: bool
    text: str


async def livez(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def readyz(request: web.Request) -> web.Response:
    checks = await _readiness(request.app[OBSERVED])
    ready = all(check.ok for check in checks.values())
    body: dict[str, object] = {"ok": ready}
    if not ready:
        body["failing"] = {name: check.text for name, check in checks.items() if not check.ok}
    return web.json_response(body, status=_status(ready))


async def healthz(request: web.Request) -> web.Response:
    observed = request.app[OBSERVED]
    readiness = await _readiness(observed)
    ready = all(check.ok for check in readiness.values())
    checks: dict[str, object] = {name: check.text for name, check in readiness.items()}
    now = observed.clock.now()
    checks["dcs"] = {name: dcs_check(cloud, now) for name, cloud in observed.clouds.items()}
    checks.setdefault("socket", "not used (HTTP mode)")
    body = {"ok": ready, "role": observed.role(), "checks": checks}
    return web.json_response(body, status=_status(ready))


def _status(ready: bool) -> int:
    return 200 if ready else 503


async def _readiness(observed: Observed) -> dict[str, Check]:
    policy = observed.policy()
    checks = {
        "database": await _database_check(observed),
        "policy": Check(True, f"ok ({len(policy.rules)} rules, {len(policy.watch)} watches)"),
    }
    if observed.socket is not None:
        await observed.socket.observe()
        checks["socket"] = _socket_check(observed.socket)
    if observed.lifecycle.stopping or not observed.supervisor.accepting:
        checks["shutdown"] = Check(False, "stopping: taking no new work")
    return checks


async def _database_check(observed: Observed) -> Check:
    try:
        async with asyncio.timeout(_DATABASE_TIMEOUT):
            await observed.database.ping()
    except TimeoutError:
        return Check(False, f"error: no answer within {_DATABASE_TIMEOUT:g} s")
    except Exception as error:  # any failure means not ready; its type is enough for a prober
        return Check(False, f"error: {type(error).__name__}")
    return Check(True, "ok")


def _socket_check(socket: SocketState) -> Check:
    down_since = socket.down_since
    if down_since is None:
        return Check(True, "ok (connected)")
    down_for = socket.clock.now() - down_since
    if down_for <= socket.down_grace:
        return Check(True, f"ok (reconnecting for {down_for.total_seconds():.0f} s)")
    return Check(False, f"error: disconnected for {down_for.total_seconds():.0f} s")


def dcs_check(cloud: ObservedCloud, now: datetime) -> str:
    """``ok``, ``error`` or ``unknown`` for one cloud, then what that rests on: the last DCS call (and,
    after a failure, the last one DCS answered) and how the bot authenticates — never a call of its own."""
    calls = cloud.calls
    auth = cloud.auth
    credentials = _token_text(auth.state(), now) if isinstance(auth, TokenAuth) else "AK/SK signing"
    last = calls.last
    if last is None:
        return f"unknown (no DCS call yet; {credentials})"
    facts = [f"last call {_call_text(last, now)}"]
    if not last.answered:
        answered = calls.last_answered
        facts.append(
            "no answer since start-up" if answered is None else f"last answer {_ago(answered.at, now)}"
        )
    facts.append(credentials)
    return f"{'ok' if last.answered else 'error'} ({'; '.join(facts)})"


def _call_text(call: DcsCall, now: datetime) -> str:
    outcome = f"HTTP {call.status}" if call.status else "no answer"
    return f"{call.operation} {_ago(call.at, now)}: {outcome}"


def _token_text(state: TokenState, now: datetime) -> str:
    if state.usable and state.refresh_at is not None:
        text = f"IAM token cached, renewed after {state.refresh_at.isoformat(timespec='seconds')}"
    elif state.refresh_at is not None:
        text = "IAM token due for renewal"
    else:
        text = "no IAM token cached"
    if state.failure is not None and state.failed_at is not None:
        text += f"; the last request for one failed {_ago(state.failed_at, now)}: {state.failure}"
    return text


def _ago(moment: datetime, now: datetime) -> str:
    return f"{max(0.0, (now - moment).total_seconds()):.0f} s ago"
