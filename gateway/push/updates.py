"""One version of an order, encoded once for every channel that sends it."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from common.order_status import FINAL_NAMES
from gateway.convert import order_json
from shop.order.v1 import order_pb2

EVENT_TYPE = "order.updated"
# After these the order never changes again (docs/rest-api.md#order-statuses): streams end.


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    version: int
    status: str
    body: bytes  # the order JSON, exactly as GET /v1/orders/{id} answers it
    sse: bytes  # one SSE event: `id`, `event` and `data` lines
    ws: str  # one WebSocket text frame
    # Whose it is, so that the hub can tell each client apart before it joins
    # (docs/security.md#client-secrets).
    account_id: str
    client_secret: str

    @property
    def final(self) -> bool:
        return self.status in FINAL_NAMES

    @classmethod
    def encode(cls, order: order_pb2.Order, public_url: str) -> OrderUpdate:
        document = order_json(order, public_url)
        body = orjson.dumps(document)
        # {"type": …, "version": …, "order": …} without encoding the order a second time.
        data = b'{"type":"%s","version":%d,"order":%s}' % (EVENT_TYPE.encode(), order.version, body)
        sse = b"id: %d\nevent: %s\ndata: %s\n\n" % (order.version, EVENT_TYPE.encode(), data)
        return cls(order.version, document["status"], body, sse, data.decode(), order.account_id, order.client_secret)
