"""Errors the core understands, raised by adapters."""

from __future__ import annotations


class DcsError(Exception):
    """A DCS call did not produce a result."""


class DcsApiError(DcsError):
    """The DCS API answered with an error status and (usually) a documented error body."""

    def __init__(
        self,
        status: int,
        error_code: str | None,
        error_msg: str,
        *,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"HTTP {status} {error_code or '-'}: {error_msg}")
        self.status = status
        self.error_code = error_code
        self.error_msg = error_msg
        self.request_id = request_id
        self.retry_after = retry_after

    @property
    def is_retryable(self) -> bool:
        return self.status == 429 or self.status >= 500


class DcsTransportError(DcsError):
    """The DCS API could not be reached or did not answer within ``DCS_TIMEOUT``."""
