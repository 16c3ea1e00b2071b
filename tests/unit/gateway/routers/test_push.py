from __future__ import annotations

import httpx
from fastapi import FastAPI

from gateway.deps import RESOURCE_ID_PATTERN


async def test_an_invalid_order_id_is_400(client: httpx.AsyncClient) -> None:
    # In the plain endpoint's words (gateway/push/sse.py): it comes before the documenting route.
    reply = await client.get("/v1/orders/not-an-id/events")
    assert reply.status_code == 400
    assert reply.json()["errors"] == [{"field": "order_id", "message": f"must match {RESOURCE_ID_PATTERN}"}]


async def test_an_invalid_last_event_id_is_400(client: httpx.AsyncClient) -> None:
    reply = await client.get("/v1/orders/ord_1/events", headers={"Last-Event-ID": "three"})
    assert reply.status_code == 400
    assert reply.json()["errors"][0]["field"] == "Last-Event-ID"


def test_openapi_documents_the_stream(app: FastAPI) -> None:
    operation = app.openapi()["paths"]["/v1/orders/{order_id}/events"]["get"]
    assert "text/event-stream" in operation["responses"]["200"]["content"]
    assert "last-event-id" in [parameter["name"] for parameter in operation["parameters"]]
