from __future__ import annotations

from gateway.middleware.headers import request_headers
from tests.unit.gateway.asgi import http_scope


def test_one_reading_per_request() -> None:
    scope = http_scope(headers=[("X-Request-ID", "req-1")])
    first = request_headers(scope)
    scope["headers"].append((b"x-request-id", b"changed"))
    assert request_headers(scope) is first
    assert first.get(b"x-request-id") == "req-1"


def test_size_counts_names_and_values() -> None:
    scope = http_scope(headers=[("a", "12345"), ("bb", "")])
    assert request_headers(scope).size == len("a12345bb")


def test_the_first_value_counts_and_absent_is_none() -> None:
    scope = http_scope(headers=[("Authorization", "Bearer one"), ("authorization", "Bearer two")])
    headers = request_headers(scope)
    assert headers.get(b"authorization") == "Bearer one"
    assert headers.get(b"content-type") is None


def test_repeated_names_the_first_single_header_sent_twice() -> None:
    twice = [("Idempotency-Key", "a"), ("Content-Type", "application/json")] * 2
    assert request_headers(http_scope(headers=twice)).repeated == b"content-type"
    assert request_headers(http_scope(headers=[("Idempotency-Key", "a")] * 2)).repeated == b"idempotency-key"
    assert request_headers(http_scope(headers=[("Content-Type", "application/json")])).repeated is None


def test_content_codings_of_every_header_in_order() -> None:
    scope = http_scope(headers=[("Content-Encoding", "GZIP, identity"), ("content-encoding", " br")])
    assert request_headers(scope).content_encodings == [b"gzip", b"identity", b"br"]


def test_trace_context_keeps_the_last_of_each() -> None:
    scope = http_scope(headers=[("traceparent", "00-a-b-01"), ("traceparent", "00-c-d-01"), ("tracestate", "x=1")])
    assert request_headers(scope).trace == {b"traceparent": b"00-c-d-01", b"tracestate": b"x=1"}
