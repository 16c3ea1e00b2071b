"""Idempotency-Key on every POST (docs/rest-api.md#idempotency), and creations under concurrency."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from tests.integration.helpers import assert_problem, create_order, order_body


def new_key() -> str:
    return f"key-{uuid.uuid4()}"


async def count_orders(client: httpx.AsyncClient, customer_id: str) -> list[dict[str, object]]:
    reply = await client.get("/v1/orders", params={"customer_id": customer_id, "page_size": 100})
    assert reply.status_code == 200
    orders: list[dict[str, object]] = reply.json()["orders"]
    return orders


async def test_replay_returns_the_first_response(client: httpx.AsyncClient) -> None:
    key, body = new_key(), order_body()
    first = await client.post("/v1/orders", json=body, headers={"Idempotency-Key": key})
    second = await client.post("/v1/orders", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 201
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert len(await count_orders(client, body["customer_id"])) == 1


async def test_same_key_other_body_is_422(client: httpx.AsyncClient) -> None:
    key, body = new_key(), order_body()
    assert (await client.post("/v1/orders", json=body, headers={"Idempotency-Key": key})).status_code == 201
    changed = {**body, "items": [{"sku": "OTHER", "quantity": 1, "unit_price": 5}]}
    reply = await client.post("/v1/orders", json=changed, headers={"Idempotency-Key": key})
    assert_problem(reply, 422)
    assert len(await count_orders(client, body["customer_id"])) == 1


async def test_keys_are_scoped_per_path(client: httpx.AsyncClient) -> None:
    key = new_key()
    a = await create_order(client, "pm_wallet_qr")
    b = await create_order(client, "pm_wallet_qr")
    first = await client.post(f"/v1/orders/{a['id']}/cancel", json={}, headers={"Idempotency-Key": key})
    other = await client.post(f"/v1/orders/{b['id']}/cancel", json={}, headers={"Idempotency-Key": key})
    assert first.status_code == other.status_code == 200
    assert first.json()["id"] == a["id"]
    assert other.json()["id"] == b["id"]
    assert "idempotent-replayed" not in other.headers


async def test_refund_replay_refunds_once(client: httpx.AsyncClient) -> None:
    order = await create_order(client)
    key = new_key()
    replies = [
        await client.post(f"/v1/orders/{order['id']}/refund", json={"amount": 100}, headers={"Idempotency-Key": key})
        for _ in range(3)
    ]
    assert [r.status_code for r in replies] == [200, 200, 200]
    assert [r.headers.get("idempotent-replayed") for r in replies] == [None, "true", "true"]
    assert (await client.get(f"/v1/orders/{order['id']}")).json()["amount_refunded"] == 100


async def test_confirm_replay(client: httpx.AsyncClient) -> None:
    order = await create_order(client, "pm_wallet_qr")
    url, key = f"/v1/payments/{order['payment']['id']}/confirm", new_key()
    first = await client.post(url, json={}, headers={"Idempotency-Key": key})
    second = await client.post(url, json={}, headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 200
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()


async def test_invalid_key_is_400(client: httpx.AsyncClient) -> None:
    for key in ("k" * 256, "with space"):
        reply = await client.post("/v1/orders", json=order_body(), headers={"Idempotency-Key": key})
        assert_problem(reply, 400, "INVALID_ARGUMENT")


async def test_16_concurrent_posts_with_one_key_make_one_order(client: httpx.AsyncClient) -> None:
    key, body = new_key(), order_body()
    replies = await asyncio.gather(
        *(client.post("/v1/orders", json=body, headers={"Idempotency-Key": key}) for _ in range(16))
    )
    statuses = sorted(r.status_code for r in replies)
    assert set(statuses) <= {201, 409}, statuses
    assert 201 in statuses
    for reply in replies:
        if reply.status_code == 409:
            assert_problem(reply, 409, "ABORTED")
            assert int(reply.headers["retry-after"]) >= 1
    ids = {r.json()["id"] for r in replies if r.status_code == 201}
    payments = {r.json()["payment"]["id"] for r in replies if r.status_code == 201}
    assert len(ids) == 1
    assert len(payments) == 1
    orders = await count_orders(client, body["customer_id"])
    assert [o["id"] for o in orders] == list(ids)
    # Once the first request has finished, every retry is a replay of it.
    retry = await client.post("/v1/orders", json=body, headers={"Idempotency-Key": key})
    assert retry.status_code == 201
    assert retry.json()["id"] in ids


async def test_200_concurrent_creations(client: httpx.AsyncClient) -> None:
    limits = httpx.Limits(max_connections=200)
    async with httpx.AsyncClient(
        base_url=str(client.base_url), headers=client.headers, timeout=30, limits=limits
    ) as many:
        replies = await asyncio.gather(*(many.post("/v1/orders", json=order_body()) for _ in range(200)))
    assert [r.status_code for r in replies] == [201] * 200
    orders = [r.json() for r in replies]
    assert len({o["id"] for o in orders}) == 200
    assert len({o["payment"]["id"] for o in orders}) == 200
    assert {o["status"] for o in orders} == {"paid"}


async def test_an_error_answer_is_replayed_as_it_was(client: httpx.AsyncClient) -> None:
    # Cancel of a paid order: the request started, so its 400 is stored and replayed.
    order = await create_order(client)
    url, key = f"/v1/orders/{order['id']}/cancel", new_key()
    first = await client.post(url, json={}, headers={"Idempotency-Key": key})
    again = await client.post(url, json={}, headers={"Idempotency-Key": key})
    first_body = assert_problem(first, 400, "FAILED_PRECONDITION")
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["original-request"] == first.headers["x-request-id"]
    assert assert_problem(again, 400, "FAILED_PRECONDITION") == first_body
    # An unknown order is a 404 that is stored too.
    missing = f"/v1/orders/ord_{uuid.uuid4().hex}/cancel"
    replies = [await client.post(missing, json={}, headers={"Idempotency-Key": key}) for _ in range(2)]
    assert [r.status_code for r in replies] == [404, 404]
    assert replies[1].headers["idempotent-replayed"] == "true"


async def test_invalid_input_is_not_stored_under_the_key(client: httpx.AsyncClient) -> None:
    key, body = new_key(), order_body()
    bad = await client.post("/v1/orders", json={**body, "currency": "XXX"}, headers={"Idempotency-Key": key})
    assert_problem(bad, 400, "INVALID_ARGUMENT")
    good = await client.post("/v1/orders", json=body, headers={"Idempotency-Key": key})
    assert good.status_code == 201
    assert "idempotent-replayed" not in good.headers


async def test_a_refund_key_reused_with_another_amount_is_422_and_refunds_nothing(client: httpx.AsyncClient) -> None:
    order = await create_order(client)
    url, key = f"/v1/orders/{order['id']}/refund", new_key()
    assert (await client.post(url, json={"amount": 100}, headers={"Idempotency-Key": key})).status_code == 200
    for other in ({"amount": 200}, {}):
        assert_problem(await client.post(url, json=other, headers={"Idempotency-Key": key}), 422)
    assert (await client.get(f"/v1/orders/{order['id']}")).json()["amount_refunded"] == 100


async def test_refund_amount_null_is_400_not_a_full_refund(client: httpx.AsyncClient) -> None:
    order = await create_order(client)
    reply = await client.post(f"/v1/orders/{order['id']}/refund", json={"amount": None})
    body = assert_problem(reply, 400, "INVALID_ARGUMENT")
    assert [e["field"] for e in body["errors"]] == ["amount"]
    assert (await client.get(f"/v1/orders/{order['id']}")).json()["amount_refunded"] == 0
