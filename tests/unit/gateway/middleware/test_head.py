from __future__ import annotations

from starlette.types import Message, Receive, Scope, Send

from gateway.middleware.head import HeadAsGet
from tests.unit.gateway.asgi import Echo, http_scope, run


async def test_head_is_answered_as_get_without_the_body() -> None:
    inner = Echo()
    exchange = await run(HeadAsGet(inner), http_scope("HEAD"))
    assert inner.scope is not None
    assert exchange.status == 200
    assert exchange.headers["content-length"] == str(len(b'{"method":"GET","body_bytes":0}'))
    assert exchange.body == b""
    assert inner.scope["method"] == "HEAD"  # again, for the server that sends the answer


async def test_other_methods_pass_untouched() -> None:
    exchange = await run(HeadAsGet(Echo()), http_scope("GET"))
    assert exchange.json() == {"method": "GET", "body_bytes": 0}


async def test_a_stream_ends_with_its_first_body_message_and_hears_that_its_client_left() -> None:
    heard: list[Message] = []

    async def stream(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        await send({"type": "http.response.body", "body": b"retry: 2000\n\n", "more_body": True})
        heard.append(await receive())
        await send({"type": "http.response.body", "body": b"data: more\n\n", "more_body": True})

    exchange = await run(HeadAsGet(stream), http_scope("HEAD"))
    assert [m["type"] for m in exchange.sent] == ["http.response.start", "http.response.body"]
    assert exchange.sent[1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert heard == [{"type": "http.disconnect"}]
