"""The QR code a checkout page shows while a payment waits for the customer (the article's
"scan the QR code with the phone"): it encodes the phone's confirmation page, /pay/{id}."""

from __future__ import annotations

import io

import segno
from fastapi import APIRouter, Request
from starlette.responses import Response

from gateway.auth import authenticated
from gateway.convert import confirm_url
from gateway.deps import BackendsDep, ResourceId, SettingsDep
from gateway.schemas import PROBLEMS
from shop.payment.v1 import payment_pb2

router = APIRouter(prefix="/v1/payments", tags=["payments"])

SVG = "image/svg+xml"


def qr_svg(text: str) -> bytes:
    """An SVG QR code of `text`: error correction M, a quiet zone of 4 modules, black on white,
    sized by its viewBox so that a page can draw it at any size."""
    code = segno.make(text, error="m", micro=False)
    out = io.BytesIO()
    code.save(out, kind="svg", scale=1, border=4, xmldecl=False, omitsize=True, dark="#000", light="#fff", title=text)
    return out.getvalue()


@router.get(
    "/{payment_id}/qr.svg",
    response_class=Response,
    responses={200: {"content": {SVG: {}}, "description": "QR code of the confirmation page URL"}, **PROBLEMS},
)
async def payment_qr(
    payment_id: ResourceId, request: Request, backends: BackendsDep, settings: SettingsDep
) -> Response:
    """QR code (SVG) of `<GATEWAY_PUBLIC_URL>/pay/{payment_id}?client_secret=…`, the phone's
    confirmation page with the order's client secret (the phone has no API key)."""
    message = payment_pb2.GetPaymentRequest(payment_id=payment_id)
    # 404 for an unknown payment, and for one outside the caller's scope.
    scope = authenticated(request).scope
    payment, _ = await backends.call("GetPayment", backends.payments.GetPayment, message, scope)
    svg = qr_svg(confirm_url(settings.gateway_public_url, payment))
    # The image holds a secret: no shared cache may keep it.
    return Response(svg, media_type=SVG, headers={"Cache-Control": "private, max-age=3600"})
