"""Faults both stand-ins can inject: one value says what goes wrong, where, and how often.

A test arranges a fault with the stand-in's single entry point, ``DcsEmulator.inject`` or
``SlackStandIn.inject``, and the next ``times`` matching calls get it::

    dcs.inject(Fault(Answer.HTML))                                  # any DCS call: a gateway's 502 page
    dcs.inject(Fault(Answer.NOTHING, target="create_backup", applied=True))  # backup made, answer lost
    dcs.inject(Fault(Answer.NORMAL, target="list_backups", delay=10))        # slower than the client waits
    slack.inject(Fault(Answer.TRUNCATED, target="chat.postMessage"))        # posted, half a JSON body
    slack.inject(Fault(Answer.ERROR, target="response_url", status=504, applied=True))

What the client gets (``answer``):

- ``ERROR``: the stand-in's own error answer, as the real service sends it (a DCS error body with a 429 or
  5xx status, Slack's ``{"ok": false, "error": ...}``; plain text for a response_url);
- ``HTML``: a gateway's HTML error page instead of JSON (status 502 unless given, e.g. 504);
- ``EMPTY``: no body at all (status 200 unless given), though the content type says JSON;
- ``TRUNCATED``: the real answer with its body cut off half-way;
- ``NOTHING``: the connection is closed without any response;
- ``NORMAL``: the real answer, unchanged; with a ``delay`` that makes it merely slow.

``applied`` makes the call take effect before the faulty answer goes out ("processed, but the answer was
lost": DCS creates the backup, Slack posts the message); ``TRUNCATED`` and ``NORMAL`` always take effect,
since they need the real answer. ``delay`` holds the answer back that many seconds first, so a delay longer
than the client's timeout is a timeout. ``target`` names the call (a DCS endpoint such as
``"create_backup"``, a Slack Web API method or ``"response_url"``); None matches every call of the
stand-in's main API (all DCS endpoints but IAM; every Web API method).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum
from http import HTTPStatus

from aiohttp import web

__all__ = ["Answer", "Fault", "FaultPlan", "faulty_answer", "hang_up"]


class Answer(StrEnum):
    """What a client gets from a faulty call; see the module docstring."""

    ERROR = "error"
    HTML = "html"
    EMPTY = "empty"
    TRUNCATED = "truncated"
    NOTHING = "nothing"
    NORMAL = "normal"


_DEFAULT_STATUS = {Answer.HTML: 502, Answer.EMPTY: 200}
_REAL_ANSWERS = frozenset({Answer.TRUNCATED, Answer.NORMAL})


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected fault; see the module docstring. ``status``, ``error`` and ``retry_after`` shape an
    ``ERROR`` answer (``error`` is the DCS error code or the Slack error name; ``Retry-After`` seconds may
    be fractions, for fast tests); ``status`` also sets the status of ``HTML`` and ``EMPTY`` answers.
    ``instance_id`` (DCS only) limits the fault to calls about that instance."""

    answer: Answer = Answer.ERROR
    target: str | None = None
    times: int = 1
    delay: float = 0.0
    applied: bool = False
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None
    instance_id: str | None = None

    def __post_init__(self) -> None:
        if self.times < 1:
            raise ValueError("times must be at least 1")
        if self.delay < 0:
            raise ValueError("delay must not be negative")
        if self.retry_after is not None and self.retry_after < 0:
            raise ValueError("retry_after must not be negative")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError(f"status {self.status} is no HTTP status")
        if self.status is not None and self.answer not in (Answer.ERROR, Answer.HTML, Answer.EMPTY):
            raise ValueError(f"a {self.answer} answer has no status of its own")
        if (self.error is not None or self.retry_after is not None) and self.answer is not Answer.ERROR:
            raise ValueError("error and retry_after shape ERROR answers only")

    @property
    def takes_effect(self) -> bool:
        """Whether the call is carried out before the faulty answer."""
        return self.applied or self.answer in _REAL_ANSWERS

    @property
    def status_or_default(self) -> int:
        """The status of an ``HTML`` or ``EMPTY`` answer."""
        return self.status if self.status is not None else _DEFAULT_STATUS.get(self.answer, 502)

    @property
    def retry_after_header(self) -> dict[str, str]:
        return {} if self.retry_after is None else {"Retry-After": f"{self.retry_after:g}"}


@dataclass(slots=True)
class _Pending:
    fault: Fault
    remaining: int


class FaultPlan:
    """The faults injected into one stand-in, used up in the order they were injected."""

    def __init__(self) -> None:
        self._pending: list[_Pending] = []

    def add(self, fault: Fault) -> None:
        self._pending.append(_Pending(fault, fault.times))

    def clear(self) -> None:
        self._pending.clear()

    def take(self, target: str, *, main_api: bool = True, instance_id: str | None = None) -> Fault | None:
        """Consumes one use of the first fault matching a call of ``target``. Faults without a target
        match only calls of the main API (``main_api``); those with an ``instance_id`` only that one."""
        for pending in self._pending:
            fault = pending.fault
            if fault.target is None and not main_api:
                continue
            if fault.target not in (None, target) or fault.instance_id not in (None, instance_id):
                continue
            pending.remaining -= 1
            if pending.remaining == 0:
                self._pending.remove(pending)
            return fault
        return None


def _html_page(status: int) -> str:
    phrase = HTTPStatus(status).phrase
    return (
        f"<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {phrase}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )


async def faulty_answer(
    fault: Fault, *, real: web.Response | None, error: web.Response
) -> web.Response | None:
    """What the client gets once ``fault.delay`` has passed: ``error`` is the stand-in's own error answer,
    ``real`` the answer of the call when it took effect. None means no answer at all (see :func:`hang_up`).
    """
    if fault.delay:
        await asyncio.sleep(fault.delay)
    match fault.answer:
        case Answer.ERROR:
            return error
        case Answer.HTML:
            status = fault.status_or_default
            return web.Response(status=status, text=_html_page(status), content_type="text/html")
        case Answer.EMPTY:
            return web.Response(status=fault.status_or_default, content_type="application/json")
        case Answer.NOTHING:
            return None
    assert real is not None, "TRUNCATED and NORMAL answers need the real answer"
    if fault.answer is Answer.NORMAL:
        return real
    body = real.body if isinstance(real.body, bytes) else b""
    headers = {key: value for key, value in real.headers.items() if key.lower() != "content-length"}
    return web.Response(status=real.status, body=body[: len(body) // 2], headers=headers)


def hang_up(request: web.Request) -> web.Response:
    """Closes the connection without an answer; the handler returns the (never sent) response."""
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=499)
