"""The pipeline's order, seen from outside: each step answers before the next could."""

from __future__ import annotations

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider

from common import tracing
from gateway import pipeline
from gateway.app import create_app
from gateway.auth import Authentication
from gateway.middleware.body import MAX_BODY_BYTES, BodyGuard
from gateway.middleware.context import RequestContext
from gateway.middleware.head import HeadAsGet
from gateway.middleware.header_limit import MAX_HEADER_BYTES, HeaderLimit
from gateway.middleware.tracing import TraceRequests
from gateway.origins import BrowserOrigins
from gateway.ratelimit import MemoryStorage
from gateway.settings import GatewaySettings

KEY = "sk_test_pipeline_0123456789abc"
SETTINGS = GatewaySettings.model_validate({"gateway_api_keys": f"acct_p:{KEY}"})


def client(key: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    transport = httpx.ASGITransport(app=create_app(SETTINGS))
    return httpx.AsyncClient(transport=transport, base_url="http://gateway.test", headers=headers)


def test_the_order_of_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    layers: list[object] = [layer.cls for layer in pipeline.middleware(SETTINGS, MemoryStorage())]
    assert layers == [RequestContext, BrowserOrigins, HeaderLimit, Authentication, BodyGuard, HeadAsGet]
    monkeypatch.setattr(tracing, "_tracer", TracerProvider().get_tracer("test"))
    traced: list[object] = [layer.cls for layer in pipeline.middleware(SETTINGS, MemoryStorage())]
    assert traced == [TraceRequests, *layers]


async def test_headers_too_large_are_431_before_anyone_asks_for_a_key() -> None:
    async with client() as anonymous:
        reply = await anonymous.get("/v1/orders", headers={"X-Filler": "x" * MAX_HEADER_BYTES})
    assert reply.status_code == 431
    assert reply.json()["request_id"] == reply.headers["x-request-id"]


async def test_without_a_key_the_body_is_never_judged() -> None:
    async with client() as anonymous:
        reply = await anonymous.post(
            "/v1/orders", content=b"x" * (MAX_BODY_BYTES + 1), headers={"Content-Type": "text/plain"}
        )
    assert reply.status_code == 401
    assert reply.headers["x-request-id"].startswith("req_")


async def test_with_a_key_the_body_is_judged_before_the_route() -> None:
    async with client(KEY) as keyed:
        reply = await keyed.post("/v1/orders", content=b"{}", headers={"Content-Type": "text/plain"})
    assert reply.status_code == 415


async def test_head_is_routed_as_get_behind_the_guards() -> None:
    async with client() as anonymous:
        assert (await anonymous.head("/v1/orders")).status_code == 401
        reply = await anonymous.head("/healthz")
    assert reply.status_code == 200
    assert reply.content == b""
