"""Errors the core understands, raised by the adapters: what the flow needs to know about a failed DCS
call, already explained — never an error code to interpret."""

from __future__ import annotations


class DcsError(Exception):
    """A DCS call did not produce a result."""


class DcsApiError(DcsError):
    """The DCS API answered with an error status and (usually) a documented error body.

    ``hint`` says in plain language what the error means for the person who asked; the DCS adapter
    fills it in.
    """

    def __init__(
        self,
        status: int,
        error_code: str | None,
        error_msg: str,
        *,
        request_id: str | None = None,
        retry_after: float | None = None,
        hint: str = "",
    ) -> None:
        super().__init__(f"HTTP {status} {error_code or '-'}: {error_msg}")
        self.status = status
        self.error_code = error_code
        self.error_msg = error_msg
        self.request_id = request_id
        self.retry_after = retry_after
        self.hint = hint

    @property
    def is_retryable(self) -> bool:
        return self.status == 429 or self.status >= 500


class InstanceNotFoundError(DcsApiError):
    """DCS does not know the instance (any more), or the ID cannot be one."""


class DcsTransportError(DcsError):
    """The DCS API could not be reached or did not answer within ``DCS_TIMEOUT``."""
