"""The gateway's application in front of the fake services (tests/unit/gateway/conftest.py),
called in process through httpx's ASGI transport, with an API key of the account `acct_shop`
(`client`) or without (`anonymous`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from gateway.app import create_app
from gateway.backends import Backends
from gateway.push import Hub
from gateway.settings import GatewaySettings
from tests.unit.gateway.fake_services import Services

KEY = "sk_test_routers_0123456789abc"
PUBLIC_URL = "http://gateway.test"


@pytest.fixture
async def app(services: Services) -> AsyncIterator[FastAPI]:
    target = services.target
    settings = GatewaySettings.model_validate(
        {
            "gateway_api_keys": f"acct_shop:{KEY}",
            "gateway_public_url": PUBLIC_URL,
            "gateway_demo_account": "acct_demo",
            "order_service_target": target,
            "payment_service_target": target,
        }
    )
    app = create_app(settings)
    # What the lifespan opens, without the hub's signal handlers: these tests only read its state.
    app.state.backends = backends = Backends.open(target, target, settings.gateway_deadline_s)
    app.state.hub = Hub(backends.orders, PUBLIC_URL, settings.gateway_deadline_s)
    yield app
    await app.state.hub.close()
    await backends.close()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """With the API key."""
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL, headers=headers) as http:
        yield http


@pytest.fixture
async def anonymous(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Without any key, as a browser or the phone page."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL) as http:
        yield http
