from __future__ import annotations

import base64

import pytest

from gateway.auth import client_secret_of, key_from_header

KEY = "sk_test_0123456789abcdefghij"


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("header", "key"),
    [
        (f"Bearer {KEY}", KEY),
        (f"bearer   {KEY} ", KEY),
        (basic(f"{KEY}:"), KEY),  # curl -u "$KEY:"
        (basic(f"{KEY}:ignored"), KEY),
        (basic(KEY), KEY),
        ("Bearer", None),
        (basic(":password"), None),
        ("Basic not*base64", None),
        ("Basic " + base64.b64encode(b"\xff\xfe:").decode(), None),
        (f"Token {KEY}", None),
        (KEY, None),
    ],
)
def test_key_from_header(header: str, key: str | None) -> None:
    assert key_from_header(header) == key


@pytest.mark.parametrize(
    ("query", "secret"),
    [
        (b"", None),
        (b"client_secret=abc", "abc"),
        (b"a=1&client_secret=x&client_secret=y", "y"),
        (b"client_secret=", ""),
    ],
)
def test_client_secret_of(query: bytes, secret: str | None) -> None:
    assert client_secret_of(query) == secret
