"""One keep-alive clock for every SSE stream of the process, in place of a timer per stream.

The period (SSE_HEARTBEAT_S) is cut into `SLOTS` ticks, and each stream joins the slot of the
last tick: it is beaten (`Subscription.beat`, which makes its stream send `: keep-alive`) when
the clock comes round to that slot again — a period after the last tick before it joined, so
within a period of its start and then every period — and the beats of a thousand streams are
spread over the period rather than all due at once.
"""

from __future__ import annotations

import asyncio
import contextvars

from gateway.push.subscription import Subscription

SLOTS = 16


class Heartbeat:
    def __init__(self, period_s: float) -> None:
        self.tick_s = period_s / SLOTS
        self._slots: list[set[Subscription]] = [set() for _ in range(SLOTS)]
        self._now = 0
        self._task: asyncio.Task[None] | None = None

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def join(self, subscription: Subscription) -> int:
        """Beat `subscription` every period from now on; the slot to `leave` with. The clock
        starts with the first stream."""
        if self._task is None:
            # A context of its own: the clock must not carry the request id of whoever came first.
            self._task = asyncio.create_task(self._run(), name="sse keep-alive", context=contextvars.Context())
        self._slots[self._now].add(subscription)
        return self._now

    def leave(self, subscription: Subscription, slot: int) -> None:
        self._slots[slot].discard(subscription)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            due += self.tick_s
            await asyncio.sleep(due - loop.time())
            if loop.time() - due > self.tick_s:
                due = loop.time()  # held up (a busy loop): go on from now, not in a burst
            self._now = (self._now + 1) % SLOTS
            for subscription in list(self._slots[self._now]):
                subscription.beat()
