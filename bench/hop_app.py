"""The two ends of the hop benchmark, doing the same work behind two wire formats.

Both servers run the payment service's real charge logic — validate, look the key up, ask the
(simulated) processor, keep the payment — on the same in-memory store, so that the benchmark
measures the hop (encoding, transport, framework) and not the database:

- gRPC: the real `PaymentServicer` (steps 6-11) served by the real `create_grpc_server` (the
  interceptor, health, reflection), plus an `OrderService.CreateOrder` that validates with the
  order service's own rules and charges in-process: the large, 100-item payload;
- JSON over HTTP/1.1: FastAPI endpoints with strict pydantic models (the gateway's own
  `OrderCreate` for orders), the same store and processor, answers encoded with orjson.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Annotated, Any, cast

import grpc
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from common.db import Database
from common.ids import new_id
from common.input_limits import IDENTIFIER_PATTERN, MAX_ORDER_AMOUNT
from common.timestamps import now_us, rfc3339, timestamp_us, to_timestamp, utcnow
from gateway.deps import JSONResponse
from gateway.schemas import Currency, OrderCreate, PaymentMethod
from order_service.domain import validate_create
from payment_service.processor import Processor
from payment_service.servicer import PaymentServicer
from payment_service.store import PaymentRecord
from shop.order.v1 import order_pb2, order_pb2_grpc
from shop.payment.v1 import payment_pb2

Context = grpc.aio.ServicerContext[Any, Any]

# Keeps the memory of a long run flat; far more than the keys in flight at any time.
_MAX_PAYMENTS = 20_000


class MemoryPayments(PaymentServicer):
    """The real payment handlers, with `charge_once` — the step both hops share — keeping its
    payments in a bounded dict instead of a database: the benchmark measures the hop."""

    def __init__(self) -> None:
        super().__init__(cast(Database, None), Processor(latency_ms=0, action_timeout_s=900))
        self._by_key: OrderedDict[str, PaymentRecord] = OrderedDict()

    async def charge_once(
        self,
        order_id: str,
        amount: int,
        currency: str,
        payment_method: str,
        key: str,
        *,
        account_id: str | None = None,
        client_secret: str | None = None,
    ) -> PaymentRecord:
        existing = self._by_key.get(key)
        if existing is not None:
            return existing
        now = now_us()
        decision = await self.processor.authorize(payment_method, now, key)
        record = PaymentRecord(
            id=new_id("pay"), idempotency_key=key, order_id=order_id, payment_method=payment_method,
            amount=amount, amount_refunded=0, currency=currency, version=1, created_us=now, updated_us=now_us(),
            account_id=account_id, client_secret=client_secret, **vars(decision),
        )  # fmt: skip
        self._by_key[key] = record
        while len(self._by_key) > _MAX_PAYMENTS:
            self._by_key.popitem(last=False)
        return record


def new_payments() -> PaymentServicer:
    return MemoryPayments()


# -- gRPC ------------------------------------------------------------------------------------


class HopOrderServicer(order_pb2_grpc.OrderServiceServicer):
    """CreateOrder only: the order service's validation, then the charge, in one process."""

    def __init__(self, payments: PaymentServicer) -> None:
        self.payments = payments

    async def CreateOrder(self, request: order_pb2.CreateOrderRequest, context: Context) -> order_pb2.Order:
        amount = validate_create(request)
        order_id = new_id("ord")
        payment = await self.payments.Charge(
            _charge_message(order_id, amount, request.currency, request.payment_method), context
        )
        now = to_timestamp(utcnow())
        return order_pb2.Order(
            id=order_id,
            customer_id=request.customer_id,
            status=order_pb2.ORDER_STATUS_PAID,
            currency=request.currency,
            items=request.items,
            amount=amount,
            payment=payment,
            version=2,
            created_at=now,
            updated_at=now,
        )


def _charge_message(order_id: str, amount: int, currency: str, method: str) -> payment_pb2.ChargeRequest:
    return payment_pb2.ChargeRequest(
        order_id=order_id, amount=amount, currency=currency, payment_method=method, idempotency_key=f"{order_id}:charge"
    )


# -- JSON over HTTP/1.1 ------------------------------------------------------------------------


class ChargeBody(BaseModel):
    """ChargeRequest's fields and limits, as the payment service's validation checks them."""

    model_config = ConfigDict(extra="forbid", strict=True)

    order_id: Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN)]
    amount: int = Field(ge=1, le=MAX_ORDER_AMOUNT)
    currency: Currency  # type: ignore[valid-type]
    payment_method: PaymentMethod  # type: ignore[valid-type]
    idempotency_key: str = Field(min_length=1, max_length=255)


async def _charge_record(payments: PaymentServicer, body: ChargeBody) -> PaymentRecord:
    """PaymentServicer.Charge's work on a validated JSON body."""
    return await payments.charge_once(
        body.order_id, body.amount, body.currency, body.payment_method, body.idempotency_key
    )


def _payment_document(record: PaymentRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "order_id": record.order_id,
        "status": record.status,
        "payment_method": record.payment_method,
        "amount": record.amount,
        "amount_refunded": record.amount_refunded,
        "currency": record.currency,
        "failure_code": record.failure_code,
        "decline_code": record.decline_code,
        "failure_message": record.failure_message,
        "next_action": None,
        "created_at": rfc3339(timestamp_us(record.created_us)),
        "updated_at": rfc3339(timestamp_us(record.updated_us)),
    }


def create_json_app(payments: PaymentServicer) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/charges")
    async def charge(body: ChargeBody) -> JSONResponse:
        return JSONResponse(_payment_document(await _charge_record(payments, body)))

    @app.post("/v1/orders", status_code=201)
    async def create_order(body: OrderCreate) -> JSONResponse:
        amount = sum(item.quantity * item.unit_price for item in body.items)
        order_id = new_id("ord")
        charge = ChargeBody(
            order_id=order_id,
            amount=amount,
            currency=body.currency,
            payment_method=body.payment_method,
            idempotency_key=f"{order_id}:charge",
        )
        payment = _payment_document(await _charge_record(payments, charge))
        now = rfc3339(to_timestamp(utcnow()))
        document = {
            "id": order_id,
            "customer_id": body.customer_id,
            "status": "paid",
            "currency": body.currency,
            "items": [{"sku": i.sku, "quantity": i.quantity, "unit_price": i.unit_price} for i in body.items],
            "amount": amount,
            "amount_refunded": 0,
            "payment": payment,
            "version": 2,
            "created_at": now,
            "updated_at": now,
        }
        return JSONResponse(document, status_code=201)

    return app
