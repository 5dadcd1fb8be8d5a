"""The checks /slack/events makes before Bolt sees a request: the signature over the raw bytes (as
slack_sdk's verifier computes it, but for any bytes), then the body's shape as Bolt will read it."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from slack_sdk.signature import SignatureVerifier

from bot.slack.app import RawBodyVerifier, UnreadableBodyError, _check_shape, signature_problem

SECRET = "unit-signing-secret"


def headers_for(body: bytes, *, secret: str = SECRET, at: float | None = None) -> dict[str, str]:
    stamp = str(int(time.time() if at is None else at))
    signature = RawBodyVerifier(secret).generate_signature(timestamp=stamp, body=body)
    assert signature is not None
    return {"x-slack-request-timestamp": stamp, "x-slack-signature": signature}


@given(st.text(), st.integers(0, 2**40))
def test_the_raw_verifier_signs_text_as_slack_sdk_does(body: str, timestamp: int) -> None:
    ours = RawBodyVerifier(SECRET).generate_signature(timestamp=str(timestamp), body=body.encode())
    theirs = SignatureVerifier(SECRET).generate_signature(timestamp=str(timestamp), body=body)

    assert ours == theirs


@given(st.binary(max_size=200))
def test_any_bytes_signed_with_the_secret_just_now_pass(body: bytes) -> None:
    verifier = RawBodyVerifier(SECRET)

    assert signature_problem(verifier, body, headers_for(body)) is None
    assert signature_problem(verifier, body, headers_for(body, secret="other")) is not None
    assert signature_problem(verifier, body + b"x", headers_for(body)) is not None


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ({}, "no signature"),
        ({"x-slack-request-timestamp": "1"}, "no signature"),
        ({"x-slack-signature": "v0=00"}, "no signature"),
        (
            {"x-slack-request-timestamp": "soon", "x-slack-signature": "v0=00"},
            "a timestamp that is no number",
        ),
        ({"x-slack-request-timestamp": "nan", "x-slack-signature": "v0=00"}, "a timestamp that is no number"),
    ],
)
def test_what_is_not_a_signature(headers: dict[str, str], problem: str) -> None:
    assert signature_problem(RawBodyVerifier(SECRET), b"a=1", headers) == problem


def test_a_stale_signature_is_refused() -> None:
    body = b"command=%2Fdcs-backup"
    stale = headers_for(body, at=time.time() - 301)

    assert signature_problem(RawBodyVerifier(SECRET), body, stale) is not None


@pytest.mark.parametrize(
    ("text", "content_type", "form"),
    [
        ("", "application/x-www-form-urlencoded", None),
        # A plain form is left to Bolt to parse (once); only one mentioning "payload" is parsed here.
        ("command=%2Fdcs-backup&text=", "application/x-www-form-urlencoded", None),
        ("text=payload%3D1&a=b&", "application/x-www-form-urlencoded", {"text": "payload=1", "a": "b"}),
        (
            "payload=%7B%22type%22%3A%22x%22%7D",
            "application/x-www-form-urlencoded",
            {"payload": '{"type":"x"}'},
        ),
        ('{"type": "url_verification"}', "application/json", None),
        ('{"type": "event_callback"}', "application/x-www-form-urlencoded", None),
    ],
)
def test_bodies_bolt_can_read(text: str, content_type: str, form: dict[str, str] | None) -> None:
    assert _check_shape(text, content_type) == form


@pytest.mark.parametrize(
    ("text", "content_type", "why"),
    [
        ("payload=%7Bnot", "application/x-www-form-urlencoded", "the payload field is not JSON"),
        ("payload=%5B%5D", "application/x-www-form-urlencoded", "the payload field is not a JSON object"),
        ("payload=", "application/x-www-form-urlencoded", "the payload field is not JSON"),
        ("{not", "application/x-www-form-urlencoded", "the JSON body is not JSON"),
        ("[1]", "application/json", "the JSON body is not a JSON object"),
        ("just text", "application/x-www-form-urlencoded", "the body is not a form"),
        ("a=1&b", "text/plain", "the body is not a form"),
    ],
)
def test_bodies_bolt_cannot_read(text: str, content_type: str, why: str) -> None:
    with pytest.raises(UnreadableBodyError, match=f"^{why}$"):
        _check_shape(text, content_type)
