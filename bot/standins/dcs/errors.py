"""The DCS stand-in's answers that are not a success, in the body shapes the real cloud uses."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from http import HTTPStatus

from bot.standins.faults import Fault

JsonObject = dict[str, object]


class ErrorStyle(StrEnum):
    """Which body shape an error is rendered in, depending on who answers in the real cloud."""

    DCS = "dcs"  # {"error_code", "error_msg", "error_ext_msg": null}
    GATEWAY = "gateway"  # API gateway in front of DCS: {"error_code", "error_msg", "request_id"}
    IAM = "iam"  # keystone: {"error": {"code", "message", "title"}}


class CloudError(Exception):
    """An answer of the emulated cloud that is not a success."""

    def __init__(
        self,
        status: int,
        error_code: str,
        error_msg: str,
        *,
        style: ErrorStyle = ErrorStyle.DCS,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"HTTP {status} {error_code}: {error_msg}")
        self.status = status
        self.error_code = error_code
        self.error_msg = error_msg
        self.style = style
        self.headers: dict[str, str] = dict(headers or {})

    def body(self, request_id: str) -> JsonObject:
        if self.style is ErrorStyle.GATEWAY:
            return {"error_code": self.error_code, "error_msg": self.error_msg, "request_id": request_id}
        if self.style is ErrorStyle.IAM:
            title = HTTPStatus(self.status).phrase
            return {"error": {"code": self.status, "message": self.error_msg, "title": title}}
        return {"error_code": self.error_code, "error_msg": self.error_msg, "error_ext_msg": None}


def invalid_parameter(name: str) -> CloudError:
    return CloudError(400, "DCS.4800", f"Invalid {name} in the request.")


#: The status of an injected ``ERROR`` fault that names none.
DEFAULT_FAULT_STATUS = 503

_FAULT_MESSAGES: Mapping[int, str] = {
    500: "Internal service error.",
    502: "Bad gateway.",
    503: "Service temporarily unavailable.",
    504: "Gateway timeout.",
}


def injected_error(fault: Fault) -> CloudError:
    """The cloud's answer for an injected ``ERROR`` fault (429 or 5xx)."""
    status = DEFAULT_FAULT_STATUS if fault.status is None else fault.status
    headers = fault.retry_after_header
    if status == 429:
        # Throttling comes from the API gateway, not from DCS itself.
        return CloudError(
            429,
            fault.error or "APIGW.0308",
            "The throttling threshold has been reached.",
            style=ErrorStyle.GATEWAY,
            headers=headers,
        )
    # The codes real 5xx answers carry are not documented; DCS.5000 is the emulator's choice.
    message = _FAULT_MESSAGES.get(status, HTTPStatus(status).phrase + ".")
    return CloudError(status, fault.error or "DCS.5000", message, headers=headers)
