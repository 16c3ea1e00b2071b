from __future__ import annotations

from gateway.middleware.context import RequestContext
from gateway.middleware.header_limit import MAX_HEADER_BYTES, HeaderLimit
from tests.unit.gateway.asgi import Echo, http_scope, run
from tests.unit.gateway.middleware.test_context import requests_counted


async def test_headers_over_the_limit_are_431_and_go_no_further() -> None:
    inner = Echo()
    before = requests_counted("GET", "unmatched", 431)
    scope = http_scope(headers=[("X-Filler", "x" * MAX_HEADER_BYTES)])
    exchange = await run(RequestContext(HeaderLimit(inner)), scope)
    assert exchange.status == 431
    assert exchange.headers["content-type"] == "application/problem+json"
    assert exchange.json()["request_id"] == exchange.headers["x-request-id"]
    assert not inner.called
    assert requests_counted("GET", "unmatched", 431) == before + 1


async def test_headers_at_the_limit_pass() -> None:
    filler = MAX_HEADER_BYTES - len("x-filler")
    assert (await run(HeaderLimit(Echo()), http_scope(headers=[("X-Filler", "x" * filler)]))).status == 200
