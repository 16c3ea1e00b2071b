"""The API keys and client secrets in /openapi.json and /docs (docs/security.md#api-keys), described
with FastAPI's own security classes — HTTPBearer, HTTPBasic, APIKeyQuery — but not run as
dependencies: gateway/auth.py's middleware has decided before any route runs, and FastAPI would
solve them on every request for nothing. Every /v1 operation gets the key schemes; the ones a
browser may reach with an order's client secret (auth.accepts_client_secret) get that too."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.security import APIKeyQuery, HTTPBasic, HTTPBearer
from fastapi.security.base import SecurityBase

from gateway.auth import accepts_client_secret

_KEYS = {
    "ApiKey": HTTPBearer(
        description="An API key of GATEWAY_API_KEYS: `sk_…` may do everything for its account, `rk_…` may only read."
    ),
    "ApiKeyAsUser": HTTPBasic(description="The same API key as user name, no password (`curl -u sk_…:`)."),
}
_CLIENT_SECRET = {
    "ClientSecret": APIKeyQuery(
        name="client_secret",
        description="Instead of an API key, for a browser following one order: the order's `client_secret` "
        "(for the confirmation, in the body).",
    )
}


def _scheme(security: SecurityBase) -> dict[str, Any]:
    return security.model.model_dump(mode="json", by_alias=True, exclude_none=True)


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
            schemes = {**_KEYS, **_CLIENT_SECRET}
            schema.setdefault("components", {})["securitySchemes"] = {n: _scheme(s) for n, s in schemes.items()}
            for path, operations in schema["paths"].items():
                if not path.startswith("/v1/"):
                    continue
                for method, operation in operations.items():
                    names = [*_KEYS, *(_CLIENT_SECRET if accepts_client_secret(method, path) else ())]
                    operation["security"] = [{name: []} for name in names]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
