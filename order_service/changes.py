"""How watchers learn that an order changed: hints only — what a watcher sends is always read
from the durable `order_events` log, so a hint that is lost can only delay a version, never skip
or repeat one.

Two backends behind one interface:
- `LocalChanges` (SQLite, one process): a commit wakes this process's watchers of the order.
- `PostgresChanges` (any number of replicas): the committing transaction also NOTIFYs
  `order_id:version`; each replica keeps one dedicated LISTEN connection (not a pooled one) and
  wakes its watchers. When that connection drops, every watcher re-reads the log, the replica
  polls until it has reconnected, and then every watcher re-reads once more. A safety net runs
  all the time: one query a second for the versions of every watched order, waking any watcher
  behind — so even a notification path that fails silently delays a change by a second at most.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager

import asyncpg

from common.db import Tx
from common.db.hosts import CONNECT_ERRORS
from common.errors import Unavailable

log = logging.getLogger(__name__)

CHANNEL = "shop_order_changes"
# How the listening connection shows in pg_stat_activity.
LISTENER_NAME = "order_service listener"
# The safety net's period while the listener is up, and the polling period while it is down.
SAFETY_NET_S = 1.0
FALLBACK_POLL_S = 0.2
RECONNECT_S = 0.5
PING_TIMEOUT_S = 2.0


class Watcher:
    """One watch of one order: woken by `changed`; `version` is the last one it has sent."""

    __slots__ = ("changed", "order_id", "version")

    def __init__(self, order_id: str) -> None:
        self.order_id = order_id
        self.changed = asyncio.Event()
        self.version = 0


class LocalChanges:
    def __init__(self) -> None:
        self._watchers: dict[str, set[Watcher]] = defaultdict(set)
        self.closed = False

    async def start(self) -> None:
        return None

    def close(self) -> None:
        """At shutdown, before the grace period: wake every watch so that it ends. A watch never
        finishes by itself, so an open one would otherwise hold the shutdown for the whole grace."""
        self.closed = True
        self.wake_all()

    async def announce(self, tx: Tx, order_id: str, version: int) -> None:
        """Part of the transaction that commits `version`: its watchers hear of it after commit."""
        self.wake_after_commit(tx, order_id)

    def wake_after_commit(self, tx: Tx, order_id: str) -> None:
        """This process's watchers of the order, woken once `tx` commits (a statement that
        NOTIFYs by itself, single_statements.py, needs only this)."""
        tx.after_commit(lambda: self.wake(order_id))

    def wake(self, order_id: str) -> None:
        for watcher in self._watchers.get(order_id, ()):
            watcher.changed.set()

    def wake_all(self) -> None:
        for watchers in self._watchers.values():
            for watcher in watchers:
                watcher.changed.set()

    def watched(self) -> list[Watcher]:
        return [w for watchers in self._watchers.values() for w in watchers]

    @contextmanager
    def subscribe(self, order_id: str) -> Iterator[Watcher]:
        watcher = Watcher(order_id)
        self._watchers[order_id].add(watcher)
        try:
            yield watcher
        finally:
            self._watchers[order_id].discard(watcher)
            if not self._watchers[order_id]:
                del self._watchers[order_id]


class PostgresChanges(LocalChanges):
    def __init__(
        self,
        connect: Callable[..., Awaitable[asyncpg.Connection]],
        versions: Callable[[Sequence[str]], Awaitable[dict[str, int]]],
    ) -> None:
        """`connect`: a new connection to the primary (common/db/hosts.py: after a failover, the
        new one)."""
        super().__init__()
        self._connect = connect
        self._versions = versions
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever(), name="listen for order changes")

    def close(self) -> None:
        super().close()
        if self._task is not None:
            self._task.cancel()

    async def announce(self, tx: Tx, order_id: str, version: int) -> None:
        # Delivered by PostgreSQL at commit, to every replica's listener (this one's too); the
        # local wake is only quicker.
        await tx.notify(CHANNEL, f"{order_id}:{version}")
        await super().announce(tx, order_id, version)

    def _on_notification(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.wake(payload.rpartition(":")[0])

    async def _listen_forever(self) -> None:
        while not self.closed:
            try:
                await self._listen()
            except (*CONNECT_ERRORS, Unavailable) as exc:  # the listening connection lost: ConnectionError
                log.warning("order change listener lost; polling until it is back", extra={"error": str(exc)})
            except Exception:  # whatever it was, the replica must not stop listening for good
                log.exception("order change listener failed; polling until it is back")
            self.listening.clear()
            self.wake_all()  # whatever was announced meanwhile is in the log
            await self._poll_for(RECONNECT_S)

    async def _listen(self) -> None:
        conn = await self._connect(server_settings={"application_name": LISTENER_NAME})
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        try:
            await conn.add_listener(CHANNEL, self._on_notification)
            self.listening.set()
            # Anything committed before LISTEN took effect was not heard: read the log again.
            self.wake_all()
            log.info("listening for order changes")
            while not lost.is_set():
                try:
                    await asyncio.wait_for(lost.wait(), SAFETY_NET_S)
                except TimeoutError:
                    await asyncio.wait_for(conn.fetchval("SELECT 1"), PING_TIMEOUT_S)
                    await self._wake_behind()
            raise ConnectionError("the listening connection was closed")
        finally:
            conn.terminate()

    async def _poll_for(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        while loop.time() < until and not self.closed:
            await asyncio.sleep(FALLBACK_POLL_S)
            try:
                await self._wake_behind()
            except Exception as exc:
                log.debug("polling for order changes failed", extra={"error": str(exc)})

    async def _wake_behind(self) -> None:
        """One query for every watched order: wake the watchers that are behind."""
        watchers = self.watched()
        if not watchers:
            return
        current = await self._versions(sorted({w.order_id for w in watchers}))
        for watcher in watchers:
            if current.get(watcher.order_id, 0) > watcher.version:
                watcher.changed.set()
