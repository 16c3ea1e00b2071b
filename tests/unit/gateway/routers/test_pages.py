from __future__ import annotations

import grpc
import httpx
import pytest

from gateway.routers.pages import format_amount
from shop.payment.v1 import payment_pb2
from tests.unit.gateway.fake_services import Answers
from tests.unit.gateway.messages import SECRET, payment


async def test_the_pay_page_shows_the_payment_to_the_holder_of_the_secret(
    anonymous: httpx.AsyncClient, answers: Answers
) -> None:
    answers.messages["GetPayment"] = payment(payment_pb2.PAYMENT_STATUS_REQUIRES_ACTION)
    page = await anonymous.get(f"/pay/pay_1?client_secret={SECRET}")
    assert (page.status_code, page.headers["content-type"]) == (200, "text/html; charset=utf-8")
    assert "25.98 EUR" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert answers.last("GetPayment").metadata["x-client-secret"] == SECRET  # the page acts for it


@pytest.mark.parametrize("query", [{}, {"client_secret": "short"}])
async def test_without_a_usable_secret_the_service_is_not_asked(
    anonymous: httpx.AsyncClient, answers: Answers, query: dict[str, str]
) -> None:
    reply = await anonymous.get("/pay/pay_1", params=query)
    assert reply.status_code == 404
    assert "Payment not found" in reply.text
    assert answers.asked == []


async def test_a_wrong_secret_is_the_page_of_a_payment_that_does_not_exist(
    anonymous: httpx.AsyncClient, answers: Answers
) -> None:
    answers.errors["GetPayment"] = grpc.StatusCode.NOT_FOUND
    reply = await anonymous.get("/pay/pay_1", params={"client_secret": SECRET})
    assert reply.status_code == 404
    assert "Payment not found" in reply.text


async def test_the_page_escapes_what_it_shows(anonymous: httpx.AsyncClient, answers: Answers) -> None:
    failed = payment(payment_pb2.PAYMENT_STATUS_FAILED)
    failed.failure_code = "<script>"
    answers.messages["GetPayment"] = failed
    reply = await anonymous.get("/pay/pay_1", params={"client_secret": SECRET})
    assert "<script>" not in reply.text
    assert "&lt;script&gt;" in reply.text


async def test_static_files_only_by_their_names(anonymous: httpx.AsyncClient) -> None:
    assert (await anonymous.get("/static/app.js")).status_code == 200
    assert (await anonymous.get("/static/..%2Fpay.html")).status_code == 404
    assert (await anonymous.get("/static/missing.js")).status_code == 404


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [(2598, "EUR", "25.98 EUR"), (500, "JPY", "500 JPY"), (1234567, "KWD", "1,234.567 KWD"), (5, "USD", "0.05 USD")],
)
def test_format_amount(minor: int, currency: str, text: str) -> None:
    assert format_amount(minor, currency) == text
