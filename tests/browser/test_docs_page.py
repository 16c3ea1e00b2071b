"""/docs (Swagger UI) and /redoc (ReDoc) in a real browser that can reach nothing but the
gateway, as on a machine without internet: each page renders every operation of /openapi.json."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.artifacts import ARTIFACTS
from tests.harness import Stack

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page, Route

pytestmark = pytest.mark.browser


class Offline:
    """A browser context whose requests to anywhere but the gateway fail, as without internet."""

    def __init__(self, context: BrowserContext, origin: str) -> None:
        self.context = context
        self.origin = origin
        self.refused: list[tuple[str, str]] = []  # (resource type, URL)
        self.problems: list[str] = []

    async def guard(self, route: Route) -> None:
        if route.request.url.startswith(self.origin + "/"):
            await route.continue_()
        else:
            self.refused.append((route.request.resource_type, route.request.url))
            await route.abort("internetdisconnected")

    async def page(self, path: str) -> Page:
        page = await self.context.new_page()
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        await page.goto(f"{self.origin}{path}")
        return page


@pytest.fixture
async def offline(browser: Browser, stack: Stack) -> AsyncIterator[Offline]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    watcher = Offline(context, stack.url)
    await context.route("**/*", watcher.guard)
    yield watcher
    await context.close()


@pytest.fixture(scope="module")
def operations(stack: Stack) -> list[dict[str, Any]]:
    paths = httpx.get(f"{stack.url}/openapi.json", timeout=10).json()["paths"]
    return [{"path": path, "method": method, **op} for path, ops in paths.items() for method, op in ops.items()]


async def test_swagger_ui_renders_every_operation_offline(offline: Offline, operations: list[dict[str, Any]]) -> None:
    from playwright.async_api import expect

    page = await offline.page("/docs")
    summaries = page.locator(".opblock-summary")
    await expect(summaries).to_have_count(len(operations), timeout=15_000)
    shown = [
        (method.lower(), path)
        for method, path in zip(
            await page.locator(".opblock-summary-method").all_inner_texts(),
            await page.locator(".opblock-summary-path").all_inner_texts(),
            strict=True,
        )
    ]
    assert sorted(shown) == sorted((op["method"], op["path"]) for op in operations)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "docs-swagger-ui.png"))
    assert offline.refused == []
    assert offline.problems == []


async def test_redoc_renders_every_operation_offline(offline: Offline, operations: list[dict[str, Any]]) -> None:
    from playwright.async_api import expect

    page = await offline.page("/redoc")
    for op in operations:
        section = page.locator(f'[data-section-id="operation/{op["operationId"]}"]')
        await expect(section).to_contain_text(op["summary"], timeout=15_000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "docs-redoc.png"))
    # ReDoc's "API docs by Redocly" footer shows its maker's logo from their site: the only
    # thing that stays out, and nothing the page needs.
    assert [kind for kind, _ in offline.refused] in ([], ["image"])
    assert offline.problems == []
