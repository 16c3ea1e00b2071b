from __future__ import annotations

import orjson

from gateway.convert import order_json
from gateway.responses import JSONResponse, etag, order_response, payment_response
from tests.unit.gateway.messages import order, payment

URL = "https://shop.example"


def test_an_order_with_its_version_as_etag() -> None:
    message = order(version=4)
    response = order_response(message, URL)
    assert response.status_code == 200
    assert response.headers["etag"] == etag(4) == '"4"'
    assert "location" not in response.headers
    assert orjson.loads(response.body) == order_json(message, URL)


def test_a_created_order_is_201_with_its_location() -> None:
    response = order_response(order(), URL, created=True)
    assert response.status_code == 201
    assert response.headers["location"] == "/v1/orders/ord_1"


def test_a_replayed_answer_says_so() -> None:
    assert order_response(order(), URL, replayed=True).headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in order_response(order(), URL).headers
    assert payment_response(payment(), URL, replayed=True).headers["idempotent-replayed"] == "true"


def test_json_is_compact_utf8() -> None:
    response = JSONResponse({"detail": "€"})
    assert response.body == '{"detail":"€"}'.encode()
    assert response.headers["content-type"] == "application/json"
