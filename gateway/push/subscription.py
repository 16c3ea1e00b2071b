"""One client's place in the hub: a small bounded queue of the order's versions.

The hub offers each new version to every subscription without waiting (`offer` never blocks).
A client that falls `QUEUE_LIMIT` versions behind is dropped: its stream ends, and it resumes
from the last version it received (`Last-Event-ID`, `after_version`), which the durable event
log replays in full. So a slow or stuck client never delays the others, costs bounded memory,
and — unlike skipping ahead — never silently misses a version.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from enum import Enum

from gateway.metrics import WATCHERS
from gateway.push.updates import OrderUpdate

# Versions a client may have waiting before it is dropped. An order has a handful of versions
# in its life; a client this far behind has stopped reading.
QUEUE_LIMIT = 16


class End(Enum):
    """Why a subscription delivers nothing more."""

    FINAL = "final"  # it delivered the final status (or the client has seen it already)
    SLOW = "slow"  # the client fell too far behind and was dropped
    CLOSED = "closed"  # the client left
    SHUTDOWN = "shutdown"  # the gateway is stopping
    FAILED = "failed"  # the order service refused the watch


class KeepAlive:
    """What `next_event` gives when it is time for a keep-alive."""

    __slots__ = ()


KEEP_ALIVE = KeepAlive()


class Subscription:
    __slots__ = (
        "_beat",
        "_closed",
        "_last",
        "_leave",
        "_limit",
        "_pending",
        "_started",
        "_waiter",
        "channel",
        "end",
    )

    def __init__(self, channel: str, leave: Callable[[Subscription], None]) -> None:
        self.channel = channel
        self.end: End | None = None
        self._leave = leave
        self._pending: list[OrderUpdate] = []
        self._waiter: asyncio.Future[None] | None = None
        self._started = False
        self._closed = False
        self._last = 0
        self._limit = QUEUE_LIMIT
        self._beat = False
        WATCHERS.labels(channel).inc()

    # -- the hub's side ------------------------------------------------------------------------

    def start(self, initial: Sequence[OrderUpdate], after_version: int, ended: bool) -> None:
        """Begin with `initial` (a snapshot or a replay); live versions follow. Until now the
        hub's offers were ignored: `initial` was taken from what the hub had seen so far."""
        self._pending = list(initial)
        self._last = initial[-1].version if initial else after_version
        self._limit = len(self._pending) + QUEUE_LIMIT
        self._started = True
        if not initial and ended:
            self._finish(End.FINAL)

    def offer(self, update: OrderUpdate) -> None:
        if not self._started or self.end is not None:
            return
        if update.version <= self._last:
            if update.final:  # the client is at or past the end already
                self._finish(End.FINAL)
            return
        if len(self._pending) >= self._limit:
            self._finish(End.SLOW)
            return
        self._pending.append(update)
        self._last = update.version
        self._wake()

    def stop(self, end: End) -> None:
        """The hub ends the subscription (shutdown, or the order service refused the watch)."""
        self._finish(end)

    def beat(self) -> None:
        """Time for a keep-alive (push/heartbeat.py): `next_event` gives one once nothing is
        waiting, unless a version goes out first."""
        if self._started and self.end is None:
            self._beat = True
            self._wake()

    # -- the client's side ---------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """Nothing is waiting and nothing more will come."""
        return self.end is not None and not self._pending

    async def get(self) -> OrderUpdate | None:
        """The next version, or None when the subscription has ended (see `end`)."""
        while not self._pending:
            if self.end is not None:
                return None
            await self._wait()
        return self._pop()

    async def next_event(self) -> OrderUpdate | KeepAlive | None:
        """Like `get`, or KEEP_ALIVE when a beat came while nothing was waiting (SSE)."""
        while not self._pending:
            if self.end is not None:
                return None
            if self._beat:
                self._beat = False
                return KEEP_ALIVE
            await self._wait()
        self._beat = False  # the stream is not silent: this version is as good as a keep-alive
        return self._pop()

    async def get_latest(self) -> OrderUpdate | None:
        """Like `get`, but skip to the newest version waiting (for long polling)."""
        update = await self.get()
        while update is not None and self._pending:
            update = await self.get()
        return update

    def close(self) -> None:
        """The client leaves (idempotent)."""
        self._finish(End.CLOSED)

    # -- both ----------------------------------------------------------------------------------

    def _finish(self, end: End) -> None:
        if self.end is None:
            self.end = end
        if end is not End.FINAL:
            self._pending.clear()
        self._wake()
        if not self._closed:
            self._closed = True
            WATCHERS.labels(self.channel).dec()
            self._leave(self)

    async def _wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _pop(self) -> OrderUpdate:
        update = self._pending.pop(0)
        if update.final:
            self._finish(End.FINAL)
        return update

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
