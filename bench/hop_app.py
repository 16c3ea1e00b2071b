"""The two ends of the hop benchmark, doing the same work behind two wire formats.

Both are built from the payment service's own parts (payment_service/server.py's
`open_payments`: its transactions, simulated processor and store, on a throw-away SQLite file),
so that the benchmark compares the hops (encoding, transport, framework), not two
implementations:

- gRPC: the real `PaymentServicer` (steps 6-11) on the services' own server (`build_service`:
  the interceptors, health, reflection), plus an `OrderService.CreateOrder` that validates with
  the order service's own rules and charges in-process: the large, 100-item payload;
- JSON over HTTP/1.1: FastAPI endpoints with strict pydantic models (the gateway's own
  `OrderCreate` for orders), the same `Payments`, answered with the gateway's own JSON documents
  (gateway/convert.py), encoded with orjson.
"""

from __future__ import annotations

from typing import Annotated, Any

import grpc
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from bench.payloads import PUBLIC_URL, paid_order
from common.ids import new_id
from common.input_limits import IDENTIFIER_PATTERN, MAX_ORDER_AMOUNT
from gateway.convert import create_order_request, order_json, payment_json
from gateway.responses import JSONResponse
from gateway.schemas import Currency, OrderCreate, PaymentMethod
from order_service.domain import order_amount, validate_create
from order_service.payment_client import charge_key
from payment_service.payments import NewCharge, Payments
from payment_service.servicer import PaymentServicer
from shop.order.v1 import order_pb2, order_pb2_grpc
from shop.payment.v1 import payment_pb2

Context = grpc.aio.ServicerContext[Any, Any]


# -- gRPC ------------------------------------------------------------------------------------


class HopOrderServicer(order_pb2_grpc.OrderServiceServicer):
    """CreateOrder only: the order service's validation, then the charge, in one process."""

    def __init__(self, payments: PaymentServicer) -> None:
        self.payments = payments

    async def CreateOrder(self, request: order_pb2.CreateOrderRequest, context: Context) -> order_pb2.Order:
        amount = validate_create(request)
        order_id = new_id("ord")
        charge = payment_pb2.ChargeRequest(
            order_id=order_id,
            amount=amount,
            currency=request.currency,
            payment_method=request.payment_method,
            idempotency_key=charge_key(order_id),
        )
        return paid_order(request, await self.payments.Charge(charge, context))


# -- JSON over HTTP/1.1 ------------------------------------------------------------------------


class ChargeBody(BaseModel):
    """ChargeRequest's fields and limits, as the payment service's validation checks them."""

    model_config = ConfigDict(extra="forbid", strict=True)

    order_id: Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN)]
    amount: int = Field(ge=1, le=MAX_ORDER_AMOUNT)
    currency: Currency  # type: ignore[valid-type]
    payment_method: PaymentMethod  # type: ignore[valid-type]
    idempotency_key: str = Field(min_length=1, max_length=255)


def create_json_app(payments: Payments) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/charges")
    async def charge(body: ChargeBody) -> JSONResponse:
        payment = await payments.charge(NewCharge(**body.model_dump()))
        return JSONResponse(payment_json(payment.to_proto(), PUBLIC_URL))

    @app.post("/v1/orders", status_code=201)
    async def create_order(body: OrderCreate) -> JSONResponse:
        request = create_order_request(body)
        amount = order_amount(list(request.items))  # the body model validated it
        order_id = new_id("ord")
        new = NewCharge(order_id, amount, body.currency, body.payment_method, charge_key(order_id))
        payment = (await payments.charge(new)).to_proto()
        return JSONResponse(order_json(paid_order(request, payment), PUBLIC_URL), status_code=201)

    return app
