"""A webhook receiver on loopback for the tests and the benchmark: a real HTTP server (aiohttp) in
the test's own event loop, on a port from `free_port()`, that records every request it gets and
lets a test await "n requests have come" instead of sleeping. Each path answers as the test set
it up: 2xx by default, or a status, a redirect, a huge or a slow body, or a status chosen request
by request; `garbage()` starts a raw TCP server that answers something that is not HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web
from standardwebhooks import Webhook

from tests.harness import free_port


@dataclass(frozen=True)
class Arrival:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() when it came in

    def verified(self, secret: str) -> dict[str, object]:
        """The event, if the Standard Webhooks library accepts its signature with `secret`."""
        verified: dict[str, object] = Webhook(secret).verify(self.body, self.headers)
        return verified

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Behaviour:
    status: int = 204
    location: str | None = None
    body_bytes: int = 0
    # Send the headers, then hold the body back this long.
    stall_s: float = 0.0
    # Answer 503 to the first this many requests.
    fail_first: int = 0
    # Answer only once this is set.
    hold: asyncio.Event | None = None
    # Chooses the status of each request as it comes (None: as the fields above say).
    answer: Callable[[Arrival], int | None] | None = None


@dataclass
class Receiver:
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    arrivals: list[Arrival] = field(default_factory=list)
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def url(self, path: str = "/hook") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def at(self, path: str) -> list[Arrival]:
        return [a for a in self.arrivals if a.path == path]

    async def wait_for(self, path: str, count: int, timeout: float = 30) -> list[Arrival]:
        """Until `path` has had at least `count` requests; returns them."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.at(path)) >= count)
        return self.at(path)

    async def wait_until(self, done: Callable[[], bool], timeout: float) -> None:
        """Until `done()` is true, looked at again as each request comes."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(done)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {name.lower(): value for name, value in request.headers.items()}
        arrival = Arrival(request.path, headers, body, time.time())
        behaviour = self.behaviours.get(request.path, Behaviour())
        chosen = behaviour.answer(arrival) if behaviour.answer is not None else None
        async with self._changed:
            self.arrivals.append(arrival)
            self._changed.notify_all()
        if behaviour.hold is not None:
            await behaviour.hold.wait()
        if chosen is not None:
            return web.Response(status=chosen)
        if len(self.at(request.path)) <= behaviour.fail_first:
            return web.Response(status=503)
        answer_headers = {"Location": behaviour.location} if behaviour.location else None
        if not behaviour.stall_s:
            return web.Response(status=behaviour.status, body=b"x" * behaviour.body_bytes, headers=answer_headers)
        response = web.StreamResponse(status=behaviour.status, headers={"Content-Length": "100"})
        await response.prepare(request)
        await response.write(b"x")
        await asyncio.sleep(behaviour.stall_s)  # the behaviour under test: a body that comes slowly
        return response


@asynccontextmanager
async def receiving(receiver: Receiver | None = None) -> AsyncIterator[Receiver]:
    receiver = receiver or Receiver()
    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/{tail:.*}", receiver._handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, receiver.host, receiver.port)
    await site.start()
    try:
        yield receiver
    finally:
        await runner.cleanup()


@asynccontextmanager
async def garbage() -> AsyncIterator[tuple[str, list[bytes]]]:
    """A TCP server that reads a request and answers bytes that are not HTTP; yields its URL and
    the requests it read."""
    port = free_port()
    seen: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.read(65536))
        writer.write(b"\x00\x01 this is not HTTP\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", port)
    try:
        yield f"http://127.0.0.1:{port}/hook", seen
    finally:
        server.close()
        await server.wait_closed()
