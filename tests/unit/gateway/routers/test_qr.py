from __future__ import annotations

import grpc
import httpx

from gateway.routers.qr import qr_svg
from shop.payment.v1 import payment_pb2
from tests.unit.gateway.fake_services import Answers
from tests.unit.gateway.messages import SECRET, payment
from tests.unit.gateway.routers.conftest import PUBLIC_URL


async def test_the_qr_code_encodes_the_confirmation_page_with_the_secret(
    anonymous: httpx.AsyncClient, answers: Answers
) -> None:
    answers.messages["GetPayment"] = payment(payment_pb2.PAYMENT_STATUS_REQUIRES_ACTION)
    reply = await anonymous.get("/v1/payments/pay_1/qr.svg", params={"client_secret": SECRET})
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "image/svg+xml"
    assert reply.headers["cache-control"] == "private, max-age=3600"
    assert reply.content == qr_svg(f"{PUBLIC_URL}/pay/pay_1?client_secret={SECRET}")
    assert answers.last("GetPayment").metadata["x-client-secret"] == SECRET


async def test_a_payment_outside_the_scope_has_no_qr_code(client: httpx.AsyncClient, answers: Answers) -> None:
    answers.errors["GetPayment"] = grpc.StatusCode.NOT_FOUND
    reply = await client.get("/v1/payments/pay_1/qr.svg")
    assert reply.status_code == 404
    assert reply.headers["content-type"] == "application/problem+json"


def test_qr_svg_is_a_scalable_svg() -> None:
    svg = qr_svg("https://shop.example/pay/pay_1")
    assert svg.startswith(b"<svg")
    assert b"viewBox" in svg
    assert b"width=" not in svg.split(b">", 1)[0]
