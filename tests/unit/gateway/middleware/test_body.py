from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from starlette.middleware import Middleware

from gateway import errors
from gateway.middleware.body import MAX_BODY_BYTES, TOO_LARGE, BodyGuard, replay
from tests.unit.gateway.asgi import Echo, http_scope, run

JSON = ("Content-Type", "application/json")


def post(*headers: tuple[str, str]) -> dict[str, Any]:
    return http_scope("POST", "/v1/orders", headers)


@pytest.mark.parametrize("method", ["GET", "DELETE", "OPTIONS"])
async def test_requests_without_a_body_pass_untouched(method: str) -> None:
    inner = Echo()
    exchange = await run(BodyGuard(inner), http_scope(method, headers=[("Content-Type", "text/plain")]))
    assert exchange.status == 200
    assert inner.called


async def test_a_json_body_reaches_the_route_whole() -> None:
    inner = Echo()
    exchange = await run(BodyGuard(inner), post(JSON, ("Content-Length", "2")), b"{}")
    assert exchange.status == 200
    assert inner.body == b"{}"


@pytest.mark.parametrize(
    ("headers", "status", "field"),
    [
        ([JSON, JSON, ("Content-Length", "2")], 400, "Content-Type"),
        ([JSON, ("Idempotency-Key", "a"), ("Idempotency-Key", "b"), ("Content-Length", "2")], 400, "Idempotency-Key"),
        ([JSON, ("Content-Length", str(MAX_BODY_BYTES + 1))], 413, None),
        ([JSON, ("Content-Length", "-1")], 413, None),
        ([("Content-Length", "2")], 415, None),
        ([("Content-Type", "text/plain"), ("Content-Length", "2")], 415, None),
        ([("Content-Type", "application/merge-patch+jsonx"), ("Content-Length", "2")], 415, None),
        ([JSON, ("Content-Encoding", "gzip"), ("Content-Length", "2")], 415, None),
    ],
)
async def test_a_body_that_breaks_a_rule_is_refused_before_the_route(
    headers: list[tuple[str, str]], status: int, field: str | None
) -> None:
    inner = Echo()
    exchange = await run(BodyGuard(inner), post(*headers), b"{}")
    assert exchange.status == status
    assert exchange.headers["content-type"] == "application/problem+json"
    assert not inner.called
    if field is not None:
        assert exchange.json()["errors"] == [{"field": field, "message": "must be sent once"}]


async def test_a_compressed_body_is_told_what_is_accepted() -> None:
    exchange = await run(BodyGuard(Echo()), post(JSON, ("Content-Encoding", "br"), ("Content-Length", "2")), b"{}")
    assert exchange.headers["accept-encoding"] == "identity"


async def test_identity_and_an_empty_body_are_not_checked_for_type() -> None:
    inner = Echo()
    assert (await run(BodyGuard(inner), post(("Content-Length", "0")))).status == 200
    headers = (JSON, ("Content-Encoding", "identity"), ("Content-Length", "2"))
    assert (await run(BodyGuard(Echo()), post(*headers), b"{}")).status == 200


async def test_a_chunked_body_is_read_before_the_route_and_given_to_it_whole() -> None:
    inner = Echo()
    exchange = await run(BodyGuard(inner), post(JSON, ("Transfer-Encoding", "chunked")), b'{"a"', b": 1}", b"")
    assert exchange.status == 200
    assert inner.body == b'{"a": 1}'


async def test_a_chunked_body_over_the_limit_is_413_and_the_route_never_starts() -> None:
    inner = Echo()
    chunks = [b"x" * 1024] * 65
    exchange = await run(BodyGuard(inner), post(JSON, ("Transfer-Encoding", "chunked")), *chunks)
    assert exchange.status == 413
    assert exchange.json()["detail"] == TOO_LARGE
    assert not inner.called


async def test_a_body_longer_than_its_content_length_is_413_all_the_same() -> None:
    # Servers stop at Content-Length; should one not, the route reading it gets a 413.
    app = FastAPI(middleware=[Middleware(BodyGuard)])
    errors.install(app)

    @app.post("/v1/orders")
    async def create(body: dict[str, Any]) -> dict[str, Any]:
        return body

    exchange = await run(app, post(JSON, ("Content-Length", "2")), b"{" + b" " * MAX_BODY_BYTES + b"}")
    assert exchange.status == 413
    assert exchange.headers["content-type"] == "application/problem+json"


async def test_replay_gives_the_body_once_then_what_follows() -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    replayed = replay(b"{}", receive)
    assert await replayed() == {"type": "http.request", "body": b"{}", "more_body": False}
    assert await replayed() == {"type": "http.disconnect"}
