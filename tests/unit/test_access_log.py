"""The access log leaves out answered Slack requests, and keeps errors and every other path."""

from __future__ import annotations

import logging

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from aiohttp.web_log import AccessLogger

from bot.cli import QuietEventsAccessLogger


@pytest.mark.parametrize(
    ("method", "path", "status", "logged"),
    [
        ("POST", "/slack/events", 200, False),
        ("POST", "/slack/events", 401, True),
        ("POST", "/slack/events", 400, True),
        ("GET", "/healthz", 200, True),
        ("GET", "/metrics", 200, True),
    ],
)
def test_which_requests_get_an_access_line(
    caplog: pytest.LogCaptureFixture, method: str, path: str, status: int, logged: bool
) -> None:
    logger = logging.getLogger("test.access")
    access = QuietEventsAccessLogger(logger, AccessLogger.LOG_FORMAT)
    with caplog.at_level(logging.INFO, logger="test.access"):
        access.log(make_mocked_request(method, path), web.Response(status=status), 0.001)
    assert (path in caplog.text) is logged
