from __future__ import annotations

from typing import Any

import pytest

from gateway.app import create_app
from gateway.settings import GatewaySettings

SETTINGS = GatewaySettings.model_validate({"gateway_api_keys": "acct_o:sk_test_openapi_0123456789abc"})


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app(SETTINGS).openapi()


def test_the_schemes_are_fastapis_own(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert (schemes["ApiKey"]["type"], schemes["ApiKey"]["scheme"]) == ("http", "bearer")
    assert (schemes["ApiKeyAsUser"]["type"], schemes["ApiKeyAsUser"]["scheme"]) == ("http", "basic")
    assert {k: schemes["ClientSecret"][k] for k in ("type", "in", "name")} == {
        "type": "apiKey",
        "in": "query",
        "name": "client_secret",
    }


def test_every_api_operation_takes_a_key_and_only_a_browsers_take_a_secret(document: dict[str, Any]) -> None:
    opened = set()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            names = {name for requirement in operation.get("security", []) for name in requirement}
            assert ("ApiKey" in names) == path.startswith("/v1/"), (method, path)
            if "ClientSecret" in names:
                opened.add(f"{method.upper()} {path}")
    assert opened == {
        "GET /v1/orders/{order_id}",
        "GET /v1/orders/{order_id}/events",
        "GET /v1/payments/{payment_id}",
        "GET /v1/payments/{payment_id}/qr.svg",
        "POST /v1/payments/{payment_id}/confirm",
    }


def test_the_document_is_made_once(document: dict[str, Any]) -> None:
    app = create_app(SETTINGS)
    assert app.openapi() is app.openapi()
