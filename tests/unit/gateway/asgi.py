"""Driving an ASGI app by hand in a unit test: a request's scope, its body as messages, what the
app sent back; and `Echo`, an innermost app that answers 200 with what reached it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CLIENT = ("203.0.113.7", 50000)


def http_scope(
    method: str = "GET", path: str = "/", headers: Iterable[tuple[str, str]] = (), query: bytes = b""
) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": CLIENT,
        "server": ("gateway.test", 80),
        "extensions": {},
    }


def websocket_scope(
    path: str = "/", headers: Iterable[tuple[str, str]] = (), query: bytes = b""
) -> dict[str, Any]:
    scope = http_scope("GET", path, headers, query)
    del scope["method"]
    return scope | {"type": "websocket", "scheme": "ws", "subprotocols": []}


@dataclass
class Exchange:
    """One request's messages: `chunks` is the body as the client sends it, then a disconnect."""

    chunks: list[bytes] = field(default_factory=lambda: [b""])
    sent: list[Message] = field(default_factory=list)
    received: int = 0

    async def receive(self) -> Message:
        self.received += 1
        if self.received <= len(self.chunks):
            more = self.received < len(self.chunks)
            return {"type": "http.request", "body": self.chunks[self.received - 1], "more_body": more}
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        start = next(m for m in self.sent if m["type"].endswith("http.response.start"))
        return int(start["status"])

    @property
    def headers(self) -> dict[str, str]:
        start = next(m for m in self.sent if m["type"].endswith("http.response.start"))
        return {k.decode("latin-1"): v.decode("latin-1") for k, v in start.get("headers", [])}

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"].endswith("http.response.body"))

    def json(self) -> Any:
        return orjson.loads(self.body)


async def run(app: ASGIApp, scope: Scope, *chunks: bytes) -> Exchange:
    exchange = Exchange(list(chunks) or [b""])
    await app(scope, exchange.receive, exchange.send)
    return exchange


class Echo:
    """Answers 200 `{"method": …, "body_bytes": …}` after reading the whole body; keeps the scope
    and the body it got."""

    def __init__(self) -> None:
        self.scope: Scope | None = None
        self.body = b""

    @property
    def called(self) -> bool:
        return self.scope is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": 1000})
            return
        while True:
            message = await receive()
            self.body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        document = orjson.dumps({"method": scope["method"], "body_bytes": len(self.body)})
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(document)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": document})
