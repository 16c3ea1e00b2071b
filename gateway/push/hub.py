"""The hub: one shared `WatchOrder` stream per watched order in this gateway process.

    client ─┐                        ┌─ subscription (bounded queue) ── SSE response
    client ─┼─ hub ── topic(order) ──┼─ subscription ──────────────── WebSocket
    client ─┘          │             └─ subscription ──────────────── held GET (long poll)
                       └── one WatchOrder stream to the order service

A topic opens its stream when the first client of an order arrives and closes it when the last
one leaves. It keeps the versions it has seen (`HISTORY` of them) so that a client that joins
later gets its snapshot or replay from memory. If the stream breaks (the order service
restarted, the network failed) the topic re-opens it with `after_version` = the last version
it saw; the order service replays the rest from its durable log, so no client misses a
version. A client that resumes from before what the topic remembers gets the missing versions
through one short replay call first.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
from collections import deque
from collections.abc import Callable

import grpc
from prometheus_client import Counter

from common.caller import CallerScope
from common.order_status import FINAL
from gateway.metrics import WATCH_STREAMS
from gateway.push.heartbeat import Heartbeat
from gateway.push.shutdown import on_exit_signals
from gateway.push.subscription import End, Subscription
from gateway.push.updates import OrderUpdate
from shop.order.v1 import order_pb2, order_pb2_grpc

log = logging.getLogger(__name__)

# Versions each topic keeps for clients that join late or resume.
HISTORY = 64
# Waits between attempts to re-open a broken stream (seconds; then the last one, with jitter).
RESUME_BACKOFF_S = (0.05, 0.2, 0.5, 1.0, 2.0)
_REFUSED = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT)

REPLAY_CALLS = Counter(
    "push_replay_calls_total", "Short WatchOrder calls that replay versions a topic no longer keeps in memory"
)


class OrderNotFound(Exception):
    pass


class PushUnavailable(Exception):
    """The order service could not be reached in time to start following the order."""


class ResumeAhead(Exception):
    """The resume point is a version the order has not reached: nothing to resume from."""

    def __init__(self, order_id: str, current: int) -> None:
        super().__init__(f"order {order_id} is at version {current}")
        self.current = current


class Hub:
    def __init__(
        self,
        orders: order_pb2_grpc.OrderServiceAsyncStub,
        public_url: str,
        join_timeout_s: float,
        heartbeat_s: float = 15.0,
    ) -> None:
        self.orders = orders
        self.heartbeat = Heartbeat(heartbeat_s)  # the SSE streams' keep-alives
        self.public_url = public_url
        self.join_timeout_s = join_timeout_s
        self._topics: dict[str, _Topic] = {}
        self._draining = False
        self._restore_signals: Callable[[], None] = lambda: None

    def start(self) -> None:
        """At start-up: end every stream as soon as the process is asked to stop (shutdown.py)."""
        self._restore_signals = on_exit_signals(self.drain)

    def drain(self) -> None:
        """End every subscription (End.SHUTDOWN) and refuse new ones: the process is stopping."""
        self._draining = True
        for topic in list(self._topics.values()):
            topic.stop(End.SHUTDOWN)

    async def subscribe(
        self, order_id: str, after_version: int | None, scope: CallerScope, *, channel: str, replay: bool
    ) -> Subscription:
        """Follow an order, for a client acting for `scope` (its account or the order's client
        secret). The topic's stream is the order service's internal one, shared by every client of
        the order in this process; so each client is checked here, against the order's owner and
        client secret, before it sees anything — another account's order is OrderNotFound.

        `replay`: every version after `after_version` (0: the whole history), then each new one
        (SSE, WebSocket); otherwise only the newest version, if it is after `after_version`, then
        each new one (long polling). `after_version` None: the current version, then each new one.

        Raises OrderNotFound, ResumeAhead, or PushUnavailable when the order service does not
        answer within the join timeout (or the gateway is stopping)."""
        if self._draining:
            raise PushUnavailable("the gateway is stopping")
        topic = self._topics.get(order_id)
        if topic is None:
            topic = self._topics[order_id] = _Topic(self, order_id)
        subscription = Subscription(channel, topic.leave)
        topic.subscribers.add(subscription)
        try:
            await topic.wait_ready(self.join_timeout_s)
            latest = topic.history[-1]
            if not scope.may_see(latest.account_id, latest.client_secret):
                raise OrderNotFound(f"order {order_id} not found")
            if after_version is not None and after_version > latest.version and not topic.ended:
                await self._check_reached(order_id, after_version)
            initial = await self._initial(topic, after_version, replay)
        except BaseException:
            subscription.close()
            raise
        # No await since `initial` was read: every later version reaches the subscription as an offer.
        start_after = initial[0].version - 1 if initial else after_version
        assert start_after is not None
        subscription.start(initial, start_after, topic.ended)
        return subscription

    async def _check_reached(self, order_id: str, version: int) -> None:
        """The topic has not seen `version`: it may lag behind a change made elsewhere (another
        gateway, another replica), or the client names a version that does not exist yet."""
        try:
            request = order_pb2.GetOrderRequest(order_id=order_id)
            order = await self.orders.GetOrder(request, timeout=self.join_timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise PushUnavailable(f"could not read the order: {exc.code().name}") from exc
        # Past the final version is no error: nothing more will come (SSE answers 204).
        if order.version < version and order.status not in FINAL:
            raise ResumeAhead(order_id, order.version)

    async def _initial(self, topic: _Topic, after: int | None, replay: bool) -> list[OrderUpdate]:
        latest = topic.history[-1]
        if after is None:
            return [latest]
        if not replay:
            return [latest] if latest.version > after else []
        while after + 1 < topic.history[0].version:
            oldest = topic.history[0].version
            missing = await self._replay(topic.order_id, after, oldest - 1)
            if topic.history[0].version == oldest:  # else the history moved on meanwhile: again
                return [*missing, *topic.history]
        return [update for update in topic.history if update.version > after]

    async def _replay(self, order_id: str, after: int, until: int) -> list[OrderUpdate]:
        """Versions after..until from the order service's log, through one short call."""
        REPLAY_CALLS.inc()
        request = order_pb2.WatchOrderRequest(order_id=order_id, after_version=after)
        call = self.orders.WatchOrder(request, timeout=self.join_timeout_s)
        found: list[OrderUpdate] = []
        try:
            async for event in call:
                found.append(OrderUpdate.encode(event.order, self.public_url))
                if event.version >= until:
                    break
        except grpc.aio.AioRpcError as exc:
            raise PushUnavailable(f"replay failed: {exc.code().name}") from exc
        finally:
            call.cancel()
        return found

    def _forget(self, topic: _Topic) -> None:
        if self._topics.get(topic.order_id) is topic:
            del self._topics[topic.order_id]

    async def close(self) -> None:
        self._restore_signals()
        topics = list(self._topics.values())
        self.drain()
        self.heartbeat.close()
        await asyncio.gather(*(topic.task for topic in topics), return_exceptions=True)


class _Topic:
    """One watched order: its upstream stream, the versions seen, and the subscriptions."""

    def __init__(self, hub: Hub, order_id: str) -> None:
        self.hub = hub
        self.order_id = order_id
        self.subscribers: set[Subscription] = set()
        self.history: deque[OrderUpdate] = deque(maxlen=HISTORY)
        self.ended = False
        self.stopped = False
        self.failure: Exception | None = None
        self.ready = asyncio.Event()
        # A context of its own: the stream must not carry the request id of whoever opened it.
        self.task = asyncio.create_task(self._follow(), name=f"watch {order_id}", context=contextvars.Context())

    async def wait_ready(self, timeout: float) -> None:
        if not self.ready.is_set():
            try:
                await asyncio.wait_for(self.ready.wait(), timeout)
            except TimeoutError:
                raise PushUnavailable("the order service did not answer in time") from None
        if self.failure is not None:
            raise self.failure

    def leave(self, subscription: Subscription) -> None:
        self.subscribers.discard(subscription)
        if not self.subscribers:
            self.stop(End.CLOSED)

    def stop(self, end: End) -> None:
        if self.stopped:
            return
        self.stopped = True
        self.hub._forget(self)
        self.task.cancel()
        for subscription in list(self.subscribers):
            subscription.stop(end)

    async def _follow(self) -> None:
        failures = 0
        while not self.ended:
            # First the current version (no after_version), then resume after the last one seen.
            after = self.history[-1].version if self.history else None
            request = order_pb2.WatchOrderRequest(order_id=self.order_id, after_version=after)
            # No deadline: the stream lives as long as the topic. wait_for_ready: while the
            # order service restarts, the call waits for it instead of failing at once.
            call = self.hub.orders.WatchOrder(request, wait_for_ready=True)
            WATCH_STREAMS.inc()
            try:
                async for event in call:
                    self._receive(event.order)
                    failures = 0
            except grpc.aio.AioRpcError as exc:
                if exc.code() in _REFUSED:
                    self._fail(
                        OrderNotFound(f"order {self.order_id} not found")
                        if not self.history
                        else PushUnavailable(f"the order service refused the watch: {exc.code().name}")
                    )
                    return
                log.info(
                    "watch stream broke; resuming",
                    extra={"order_id": self.order_id, "after_version": after, "grpc_code": exc.code().name},
                )
            finally:
                call.cancel()
                WATCH_STREAMS.dec()
            if not self.ended:
                pause = RESUME_BACKOFF_S[min(failures, len(RESUME_BACKOFF_S) - 1)]
                await asyncio.sleep(pause * random.uniform(0.8, 1.2))
                failures += 1

    def _receive(self, order: order_pb2.Order) -> None:
        if self.history and order.version <= self.history[-1].version:
            return
        update = OrderUpdate.encode(order, self.hub.public_url)
        self.history.append(update)
        self.ended = update.final
        self.ready.set()
        for subscription in list(self.subscribers):
            subscription.offer(update)

    def _fail(self, error: Exception) -> None:
        log.info("watch refused", extra={"order_id": self.order_id, "error": str(error)})
        self.failure = error
        self.ready.set()
        self.hub._forget(self)
        for subscription in list(self.subscribers):
            subscription.stop(End.FAILED)
