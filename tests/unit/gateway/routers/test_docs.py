from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI


@pytest.mark.parametrize(("path", "script"), [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")])
async def test_the_pages_load_everything_from_the_gateway(anonymous: httpx.AsyncClient, path: str, script: str) -> None:
    page = await anonymous.get(path)
    assert page.status_code == 200
    assert f'src="/docs/assets/{script}"' in page.text
    assert "/openapi.json" in page.text
    assert "cdn." not in page.text
    assert "fonts.googleapis" not in page.text
    asset = await anonymous.get(f"/docs/assets/{script}")
    assert asset.status_code == 200
    assert len(asset.content) > 10_000


async def test_behind_a_proxy_the_urls_carry_its_root_path(app: FastAPI) -> None:
    rooted = httpx.ASGITransport(app=app, root_path="/shop")
    async with httpx.AsyncClient(transport=rooted, base_url="http://gateway.test") as proxied:
        page = await proxied.get("/docs")
    assert 'src="/shop/docs/assets/swagger-ui-bundle.js"' in page.text
    assert "/shop/openapi.json" in page.text


async def test_only_the_known_assets(anonymous: httpx.AsyncClient) -> None:
    reply = await anonymous.get("/docs/assets/..%2F..%2Fpyproject.toml")
    assert reply.status_code == 404
    assert reply.headers["content-type"] == "application/problem+json"
