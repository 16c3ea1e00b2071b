"""The two web pages (docs/demo-page.md#the-demo-page-and-the-qr-code-confirmation): the demo
checkout page `/`, the phone's confirmation page `/pay/{payment_id}`, and their static files. Plain
HTML, CSS and JavaScript from gateway/static; nothing is loaded from another site."""

from __future__ import annotations

import html
import re
from decimal import Decimal
from pathlib import Path
from string import Template
from typing import Annotated

import grpc
from fastapi import APIRouter, Query
from starlette.responses import FileResponse, HTMLResponse, Response

from common.caller import CallerScope
from common.input_limits import CLIENT_SECRET_RE
from common.timestamps import rfc3339
from gateway.deps import BackendsDep, ResourceId
from gateway.errors import problem
from shop.payment.v1 import payment_pb2

router = APIRouter(include_in_schema=False)

STATIC = Path(__file__).resolve().parent.parent / "static"
_PAY_PAGE = Template((STATIC.parent / "templates" / "pay.html").read_text(encoding="utf-8"))
_STATIC_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*\.(css|js|svg)$")
# Same-origin only: no CDN, no inline script or style (so none can be injected either).
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@router.get("/")
async def demo_page() -> Response:
    """The demo checkout page: create an order, show the QR code, follow the order."""
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8", headers=_HEADERS)


@router.get("/static/{name}")
async def static_file(name: str) -> Response:
    path = STATIC / name
    if not _STATIC_NAME.match(name) or not path.is_file():
        return problem(404, f"no static file {name}")
    return FileResponse(path, headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


def _not_found(payment_id: str) -> HTMLResponse:
    page = _render(payment_id, "Payment not found", amount="", status="not_found", failure_code="", expires_at="")
    return HTMLResponse(page, 404, headers=_HEADERS)


@router.get("/pay/{payment_id}")
async def pay_page(
    payment_id: ResourceId,
    backends: BackendsDep,
    client_secret: Annotated[str | None, Query()] = None,
) -> Response:
    """The phone's confirmation page (what the QR code opens): the amount, Approve, Decline.

    It shows the payment only to whoever holds the order's client secret — the QR code and
    `confirm_url` carry it as `?client_secret=` — and the page's script confirms with it. Without
    it, or with a wrong one, the page is the one for a payment that does not exist (404): a
    payment id alone, which appears in logs and support tickets, shows nothing."""
    if client_secret is None or not CLIENT_SECRET_RE.match(client_secret):
        return _not_found(payment_id)
    message = payment_pb2.GetPaymentRequest(payment_id=payment_id)
    scope = CallerScope(client_secret=client_secret)
    try:
        payment, _ = await backends.call("GetPayment", backends.payments.GetPayment, message, scope)
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.NOT_FOUND:
            raise
        return _not_found(payment_id)
    status = payment_pb2.PaymentStatus.Name(payment.status).removeprefix("PAYMENT_STATUS_").lower()
    expires = rfc3339(payment.next_action.expires_at) if payment.HasField("next_action") else ""
    amount = format_amount(payment.amount, payment.currency)
    page = _render(
        payment_id,
        "Confirm your payment",
        amount=amount,
        status=status,
        failure_code=payment.failure_code if payment.HasField("failure_code") else "",
        expires_at=expires,
    )
    return HTMLResponse(page, headers=_HEADERS)


# ISO 4217 minor units where they are not 2.
_ZERO = ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF")
_EXPONENTS = {
    **dict.fromkeys((*_ZERO, "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}


def format_amount(minor_units: int, currency: str) -> str:
    """`2598, "EUR"` → `25.98 EUR`; `500, "JPY"` → `500 JPY`."""
    exponent = _EXPONENTS.get(currency, 2)
    return f"{Decimal(minor_units).scaleb(-exponent):,.{exponent}f} {currency}"


def _render(payment_id: str, title: str, **values: str) -> str:
    values.update(payment_id=payment_id, title=title)
    return _PAY_PAGE.substitute({key: html.escape(value, quote=True) for key, value in values.items()})
