"""A TCP proxy whose replies can be held back: what the client sends goes through at once, what
the server answers waits until it is released. Put between two services, it makes a real lost
answer — the server does the work, the caller's deadline runs out before the answer arrives —
without touching either program. It runs its own event loop in a thread, so that a test may
block (starting a stack) while connections go through it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from tests.harness import free_port


class HoldingProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._released: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="holding-proxy", daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> HoldingProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the proxy did not start")
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @contextmanager
    def replies_held(self) -> Iterator[None]:
        """Within the block, nothing the server sends reaches the client; it all arrives, in
        order, when the block ends."""
        assert self._released is not None
        released = self._released
        self._loop.call_soon_threadsafe(released.clear)
        try:
            yield
        finally:
            self._loop.call_soon_threadsafe(released.set)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._released = asyncio.Event()
        self._released.set()
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", self.port))
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            self._loop.close()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            self._pump(client_reader, server_writer, hold=False),
            self._pump(server_reader, client_writer, hold=True),
        )

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, hold: bool) -> None:
        assert self._released is not None
        with suppress(OSError):
            while data := await reader.read(65536):
                if hold:
                    await self._released.wait()
                writer.write(data)
                await writer.drain()
        writer.close()
