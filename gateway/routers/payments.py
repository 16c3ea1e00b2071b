"""/v1/payments: read a payment, and the customer's confirmation."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from gateway.convert import payment_json
from gateway.deps import BackendsDep, IdempotencyKey, JSONResponse, ResourceId, SettingsDep, call
from gateway.routers.orders import ERRORS
from gateway.schemas import PaymentConfirm, PaymentPublic
from shop.order.v1 import order_pb2
from shop.payment.v1 import payment_pb2

router = APIRouter(prefix="/v1/payments", tags=["payments"])


@router.get("/{payment_id}", response_model=PaymentPublic, responses=ERRORS)
async def get_payment(payment_id: ResourceId, backends: BackendsDep, settings: SettingsDep) -> Response:
    request = payment_pb2.GetPaymentRequest(payment_id=payment_id)
    payment, _ = await call("GetPayment", backends.payments.GetPayment, request, settings)
    return JSONResponse(payment_json(payment, settings.gateway_public_url))


@router.post("/{payment_id}/confirm", response_model=PaymentPublic, responses={**ERRORS, 422: ERRORS[400]})
async def confirm_payment(
    payment_id: ResourceId,
    backends: BackendsDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey,
    body: PaymentConfirm | None = None,
) -> Response:
    """The customer approves (`{}` or `{"approve": true}`) or declines a payment that requires action.
    Goes through the order service, which records the outcome on the order and tells its watchers."""
    approve = body.approve if body is not None else True
    request = order_pb2.ConfirmPaymentRequest(payment_id=payment_id, approve=approve)
    payment, replayed = await call("ConfirmPayment", backends.orders.ConfirmPayment, request, settings, idempotency_key)
    response = JSONResponse(payment_json(payment, settings.gateway_public_url))
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response
