from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from prometheus_client import REGISTRY

from common.caller import CallerScope
from gateway.backends import Backends
from shop.order.v1 import order_pb2
from tests.harness import free_port
from tests.unit.gateway.fake_services import Answers, Services
from tests.unit.gateway.messages import SECRET, order

GET = order_pb2.GetOrderRequest(order_id="ord_1")


@pytest.fixture(scope="module")
async def backends(services: Services) -> AsyncIterator[Backends]:
    opened = Backends.open(services.target, services.target, deadline_s=5)
    yield opened
    await opened.close()


def calls(method: str, code: str) -> float:
    return REGISTRY.get_sample_value("grpc_client_calls_total", {"method": method, "code": code}) or 0.0


async def test_a_call_acts_for_the_scope_and_carries_the_key(backends: Backends, answers: Answers) -> None:
    answers.messages["GetOrder"] = order()
    before = calls("GetOrder", "OK")
    account = CallerScope(account_id="acct_1")
    answer, replayed = await backends.call("GetOrder", backends.orders.GetOrder, GET, account, "k1")
    assert answer.id == "ord_1"
    assert replayed is False
    asked = answers.last("GetOrder")
    assert (asked.metadata["x-account-id"], asked.metadata["idempotency-key"]) == ("acct_1", "k1")
    assert calls("GetOrder", "OK") == before + 1


async def test_a_client_secret_travels_instead_of_an_account(backends: Backends, answers: Answers) -> None:
    answers.messages["GetOrder"] = order()
    await backends.call("GetOrder", backends.orders.GetOrder, GET, CallerScope(client_secret=SECRET))
    metadata = answers.last("GetOrder").metadata
    assert metadata["x-client-secret"] == SECRET
    assert "x-account-id" not in metadata
    assert "idempotency-key" not in metadata


async def test_a_replayed_answer_is_reported(backends: Backends, answers: Answers) -> None:
    answers.messages["GetOrder"] = order()
    answers.replayed = True
    _, replayed = await backends.call("GetOrder", backends.orders.GetOrder, GET, CallerScope(account_id="acct_1"))
    assert replayed is True


async def test_an_error_propagates_and_is_counted_by_its_code(backends: Backends, answers: Answers) -> None:
    answers.errors["GetOrder"] = grpc.StatusCode.NOT_FOUND
    before = calls("GetOrder", "NOT_FOUND")
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await backends.call("GetOrder", backends.orders.GetOrder, GET, CallerScope(account_id="acct_1"))
    assert failed.value.code() == grpc.StatusCode.NOT_FOUND
    assert calls("GetOrder", "NOT_FOUND") == before + 1


def test_creates_and_refunds_are_retried_only_with_a_key(backends: Backends) -> None:
    assert backends.order_writes("k1") is backends.keyed_orders
    assert backends.order_writes(None) is backends.orders


async def test_health_of_both_services(backends: Backends) -> None:
    assert await backends.health(2) == {"order_service": "SERVING", "payment_service": "SERVING"}
    nowhere = Backends.open(f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}", deadline_s=1)
    try:
        assert await nowhere.health(0.5) == {"order_service": "UNREACHABLE", "payment_service": "UNREACHABLE"}
    finally:
        await nowhere.close()
