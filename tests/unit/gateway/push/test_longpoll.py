from __future__ import annotations

import pytest

from gateway.push.longpoll import etag_matches, requested_wait


@pytest.mark.parametrize(
    ("prefer", "wait"),
    [
        ("wait=30", 30),
        ("wait=1", 1),
        ("wait=60", 60),
        ("wait=61", 60),
        ("wait=100000", 60),
        ("respond-async, wait=10", 10),
        ("wait=10; foo=bar", 10),
        ('wait="7"', 7),
        ("WAIT = 5", 5),
        ("wait=0", None),
        ("wait=-1", None),
        ("wait=abc", None),
        ("wait=1.5", None),
        ("return=minimal", None),
        ("", None),
        (None, None),
    ],
)
def test_requested_wait(prefer: str | None, wait: int | None) -> None:
    assert requested_wait(prefer) == wait


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        ('"3"', True),
        ('W/"3"', True),
        ('"1", "3"', True),
        ("*", True),
        ('"4"', False),
        ("3", False),
        ('"33"', False),
        ("", False),
        (None, False),
    ],
)
def test_etag_matches(header: str | None, matches: bool) -> None:
    assert etag_matches(header, '"3"') is matches
