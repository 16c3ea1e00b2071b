from __future__ import annotations

import logging

import pytest
from prometheus_client import REGISTRY
from starlette.types import Receive, Scope, Send

from common.logs import request_id_var
from gateway.middleware.context import RequestContext
from tests.unit.gateway.asgi import Echo, http_scope, run, websocket_scope


def requests_counted(method: str, route: str, status: int) -> float:
    labels = {"method": method, "route": route, "status": str(status)}
    return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0


async def test_a_well_formed_request_id_is_adopted_and_returned() -> None:
    seen: list[str | None] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(request_id_var.get())
        await Echo()(scope, receive, send)

    exchange = await run(RequestContext(app), http_scope(headers=[("X-Request-ID", "client-42")]))
    assert exchange.headers["x-request-id"] == "client-42"
    assert seen == ["client-42"]  # in the logging context while the route runs
    assert request_id_var.get() is None  # and gone afterwards


@pytest.mark.parametrize("given", [None, "", "x" * 500, "has space"])
async def test_otherwise_one_is_made(given: str | None) -> None:
    headers = [] if given is None else [("X-Request-ID", given)]
    exchange = await run(RequestContext(Echo()), http_scope(headers=headers))
    assert exchange.headers["x-request-id"].startswith("req_")


async def test_each_request_is_logged_and_counted_by_its_route(caplog: pytest.LogCaptureFixture) -> None:
    before = requests_counted("POST", "unmatched", 200)
    with caplog.at_level(logging.INFO, logger="gateway.access"):
        await run(RequestContext(Echo()), http_scope("POST", "/v1/orders"))
    (line,) = [r for r in caplog.records if r.name == "gateway.access"]
    assert (line.method, line.route, line.path, line.status) == ("POST", "unmatched", "/v1/orders", 200)  # type: ignore[attr-defined]
    assert requests_counted("POST", "unmatched", 200) == before + 1


async def test_probes_are_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    class Route:
        path = "/healthz"

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = Route()
        await Echo()(scope, receive, send)

    with caplog.at_level(logging.DEBUG, logger="gateway.access"):
        await run(RequestContext(app), http_scope(path="/healthz"))
    assert [r.levelno for r in caplog.records if r.name == "gateway.access"] == [logging.DEBUG]


async def test_a_websocket_is_counted_by_how_its_handshake_ended() -> None:
    accepted = requests_counted("WS", "unmatched", 101)
    await run(RequestContext(Echo()), websocket_scope())
    assert requests_counted("WS", "unmatched", 101) == accepted + 1

    async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "websocket.close", "code": 1008})

    refused = requests_counted("WS", "unmatched", 403)
    await run(RequestContext(refuse), websocket_scope())
    assert requests_counted("WS", "unmatched", 403) == refused + 1


async def test_a_crash_is_counted_as_500() -> None:
    async def crash(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    before = requests_counted("GET", "unmatched", 500)
    with pytest.raises(RuntimeError):
        await run(RequestContext(crash), http_scope())
    assert requests_counted("GET", "unmatched", 500) == before + 1
