"""POST /v1/bench/orders: the bare endpoint `make bench` compares `POST /v1/orders` against.

Mounted only when GATEWAY_BENCH_ROUTES is on (never by default, never in OpenAPI). It does what
any FastAPI endpoint in this process must do for that request — the same middleware, the same
strict body model, the same JSON encoder, the same status and headers — and answers the same
order document, built in memory: no gRPC hop, no database. So the ratio of the two throughputs
is the price of the two hops, the two durable writes and the services' own work.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from common.ids import new_id
from common.timestamps import rfc3339, to_timestamp, utcnow
from gateway.deps import JSONResponse
from gateway.schemas import OrderCreate

router = APIRouter(prefix="/v1/bench", tags=["bench"], include_in_schema=False)


def bare_order(body: OrderCreate) -> dict[str, Any]:
    """The document `POST /v1/orders` answers for a card that succeeds, field for field."""
    now = rfc3339(to_timestamp(utcnow()))
    amount = sum(item.quantity * item.unit_price for item in body.items)
    order_id = new_id("ord")
    return {
        "id": order_id,
        "client_secret": f"{order_id}_secret_{secrets.token_urlsafe(24)}",
        "customer_id": body.customer_id,
        "status": "paid",
        "currency": body.currency,
        "items": [{"sku": i.sku, "quantity": i.quantity, "unit_price": i.unit_price} for i in body.items],
        "amount": amount,
        "amount_refunded": 0,
        "payment": {
            "id": new_id("pay"),
            "status": "succeeded",
            "payment_method": body.payment_method,
            "amount": amount,
            "amount_refunded": 0,
            "currency": body.currency,
            "failure_code": None,
            "decline_code": None,
            "failure_message": None,
            "next_action": None,
            "created_at": now,
            "updated_at": now,
        },
        "version": 2,
        "created_at": now,
        "updated_at": now,
    }


@router.post("/orders", status_code=201)
async def bare_create_order(body: OrderCreate) -> Response:
    order = bare_order(body)
    headers = {"ETag": f'"{order["version"]}"', "Location": f"/v1/orders/{order['id']}"}
    return JSONResponse(order, status_code=201, headers=headers)
