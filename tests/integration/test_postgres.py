"""The same services on PostgreSQL: the code path chosen by `*_DATABASE_URL=postgresql://…`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from common.db.hosts import Hosts
from tests import postgres
from tests.conftest import require_tool
from tests.harness import Stack, free_port
from tests.integration.helpers import create_order, order_body

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_tool(postgres.available(), "PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    with postgres.postgres_cluster() as url:
        stack = Stack(
            tmp_path_factory.mktemp("pg"),
            env={"ORDER_DATABASE_URL": url, "PAYMENT_DATABASE_URL": url},
        )
        try:
            stack.start()
            assert not list(stack.workdir.glob("*.db")), "SQLite was used instead of PostgreSQL"
            yield stack
        finally:
            stack.stop()


async def test_flows_on_postgres(pg_stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=pg_stack.url, headers=pg_stack.headers, timeout=30) as client:
        paid = await create_order(client)
        assert paid["status"] == "paid"
        waiting = await create_order(client, "pm_wallet_qr")
        confirmed = await client.post(f"/v1/payments/{waiting['payment']['id']}/confirm", json={})
        assert confirmed.json()["status"] == "succeeded"
        refunded = await client.post(f"/v1/orders/{paid['id']}/refund", json={"amount": 100})
        assert refunded.json()["status"] == "partially_refunded"

        body = order_body()
        replies = await asyncio.gather(
            *(client.post("/v1/orders", json=body, headers={"Idempotency-Key": "pg-key"}) for _ in range(8))
        )
        assert {r.status_code for r in replies} <= {201, 409}
        listed = (await client.get("/v1/orders", params={"customer_id": body["customer_id"]})).json()
        assert len(listed["orders"]) == 1

        many = await asyncio.gather(*(client.post("/v1/orders", json=order_body()) for _ in range(50)))
        assert {r.json()["status"] for r in many} == {"paid"}


async def test_a_url_whose_first_host_is_down_connects_to_the_next(postgres_server: str) -> None:
    """common/db/hosts.py: the hosts of a URL in turn, each with its own timeout; the one that
    worked is tried first next time (only the first connection after a failover waits)."""
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    url = postgres_server.replace("@", f"@{dead},", 1) + "?target_session_attrs=read-write"
    hosts = Hosts(url)
    for _ in range(2):
        conn = await hosts.connect()
        try:
            assert await conn.fetchval("SELECT NOT pg_is_in_recovery()")
        finally:
            await conn.close()
        assert hosts.preferred == 1
    with pytest.raises(ConnectionRefusedError):
        await Hosts(f"postgresql://u@{dead}/postgres").connect()
