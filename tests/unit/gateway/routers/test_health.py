from __future__ import annotations

import httpx
from fastapi import FastAPI

from gateway.backends import Backends
from tests.harness import free_port


async def test_alive_without_asking_anyone(anonymous: httpx.AsyncClient) -> None:
    assert (await anonymous.get("/healthz")).json() == {"status": "ok"}


async def test_ready_when_both_services_serve(anonymous: httpx.AsyncClient) -> None:
    reply = await anonymous.get("/readyz")
    assert reply.status_code == 200
    assert reply.json() == {"status": "ready", "services": {"order_service": "SERVING", "payment_service": "SERVING"}}


async def test_not_ready_names_the_service_that_cannot_be_reached(
    app: FastAPI, anonymous: httpx.AsyncClient
) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    real = app.state.backends
    app.state.backends = Backends.open(nowhere, nowhere, 1.0)
    try:
        reply = await anonymous.get("/readyz")
    finally:
        await app.state.backends.close()
        app.state.backends = real
    assert reply.status_code == 503
    assert reply.headers["content-type"] == "application/problem+json"
    assert "order_service is unreachable" in reply.json()["detail"]


async def test_metrics_in_the_prometheus_format(anonymous: httpx.AsyncClient) -> None:
    reply = await anonymous.get("/metrics")
    assert reply.status_code == 200
    assert "http_requests_total" in reply.text
