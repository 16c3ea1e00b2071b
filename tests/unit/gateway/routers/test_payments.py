from __future__ import annotations

import httpx

from shop.order.v1 import order_pb2
from shop.payment.v1 import payment_pb2
from tests.unit.gateway.fake_services import Answers
from tests.unit.gateway.messages import SECRET, payment
from tests.unit.gateway.routers.conftest import PUBLIC_URL


async def test_read_asks_the_payment_service_for_the_keys_account(client: httpx.AsyncClient, answers: Answers) -> None:
    answers.messages["GetPayment"] = payment()
    reply = await client.get("/v1/payments/pay_1")
    assert reply.status_code == 200
    assert reply.json()["status"] == "succeeded"
    asked = answers.last("GetPayment")
    assert asked.message == payment_pb2.GetPaymentRequest(payment_id="pay_1")
    assert asked.metadata["x-account-id"] == "acct_shop"


async def test_a_payment_that_waits_for_the_customer_links_its_confirmation(
    client: httpx.AsyncClient, answers: Answers
) -> None:
    waiting = payment(payment_pb2.PAYMENT_STATUS_REQUIRES_ACTION)
    waiting.next_action.expires_at.FromSeconds(1_900_000_000)
    answers.messages["GetPayment"] = waiting
    action = (await client.get("/v1/payments/pay_1")).json()["next_action"]
    assert action["confirm_url"] == f"{PUBLIC_URL}/pay/pay_1?client_secret={SECRET}"
    assert action["qr_svg_url"] == f"{PUBLIC_URL}/v1/payments/pay_1/qr.svg?client_secret={SECRET}"


async def test_confirm_goes_through_the_order_service(client: httpx.AsyncClient, answers: Answers) -> None:
    answers.messages["ConfirmPayment"] = payment()
    answers.replayed = True
    reply = await client.post("/v1/payments/pay_1/confirm", json={"approve": False}, headers={"Idempotency-Key": "k"})
    assert reply.status_code == 200
    assert reply.headers["idempotent-replayed"] == "true"
    asked = answers.last("ConfirmPayment")
    assert asked.message == order_pb2.ConfirmPaymentRequest(payment_id="pay_1", approve=False)
    assert asked.metadata["idempotency-key"] == "k"


async def test_confirm_without_a_key_acts_for_the_secret_in_its_body(
    anonymous: httpx.AsyncClient, answers: Answers
) -> None:
    answers.messages["ConfirmPayment"] = payment()
    reply = await anonymous.post("/v1/payments/pay_1/confirm", json={"client_secret": SECRET})
    assert reply.status_code == 200
    asked = answers.last("ConfirmPayment")
    assert asked.metadata["x-client-secret"] == SECRET
    assert "x-account-id" not in asked.metadata
    assert asked.message == order_pb2.ConfirmPaymentRequest(payment_id="pay_1", approve=True)
