"""/v1/payments: read a payment, and the customer's confirmation.

A payment is read from the payment service, within the caller's scope (its account, or the
order's client secret); the confirmation goes through the order service, which records it on the
order. The phone page confirms with the client secret in the body (no API key in a browser).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from gateway.auth import authenticated
from gateway.deps import BackendsDep, IdempotencyKey, ResourceId, SettingsDep
from gateway.responses import payment_response
from gateway.schemas import CHANGE_PROBLEMS, PROBLEMS, PaymentConfirm, PaymentPublic
from shop.order.v1 import order_pb2
from shop.payment.v1 import payment_pb2

router = APIRouter(prefix="/v1/payments", tags=["payments"])


@router.get("/{payment_id}", response_model=PaymentPublic, responses=PROBLEMS)
async def get_payment(
    payment_id: ResourceId, request: Request, backends: BackendsDep, settings: SettingsDep
) -> Response:
    message = payment_pb2.GetPaymentRequest(payment_id=payment_id)
    scope = authenticated(request).scope
    payment, _ = await backends.call("GetPayment", backends.payments.GetPayment, message, scope)
    return payment_response(payment, settings.gateway_public_url)


@router.post("/{payment_id}/confirm", response_model=PaymentPublic, responses=CHANGE_PROBLEMS)
async def confirm_payment(
    payment_id: ResourceId,
    request: Request,
    backends: BackendsDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey,
    body: PaymentConfirm | None = None,
) -> Response:
    """The customer approves (`{}` or `{"approve": true}`) or declines a payment that requires action.
    Goes through the order service, which records the outcome on the order and tells its watchers.
    Without an API key, the body's `client_secret` (the order's) is the credential: what the phone
    page that the QR code opens sends. With an API key it is not needed."""
    approve = body.approve if body is not None else True
    message = order_pb2.ConfirmPaymentRequest(payment_id=payment_id, approve=approve)
    # The key's account, or the client secret that gateway/auth.py found in the body.
    scope = authenticated(request).scope
    stub = backends.orders
    payment, replayed = await backends.call("ConfirmPayment", stub.ConfirmPayment, message, scope, idempotency_key)
    return payment_response(payment, settings.gateway_public_url, replayed=replayed)
