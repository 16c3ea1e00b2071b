"""Headless Chromium for the demo-page suites: Debian's `/usr/bin/chromium` (`apt-get install -y
chromium`) driven by Playwright's Python package; Playwright's own browser download cannot work
on this machine.

Waiting: on page conditions only, through Playwright's `expect(...)` matchers. Not
`page.wait_for_function("…")`: when its condition is false at the first look it polls by
evaluating the string inside the page, which the page's Content-Security-Policy (no
'unsafe-eval') refuses."""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from tests.conftest import require_tool

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page, Request

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_INSTALLED = CHROMIUM.exists()
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 1000}


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    require_tool(CHROMIUM_INSTALLED, f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    require_tool(importlib.util.find_spec("playwright") is not None, "the playwright package is not installed")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile per test: the demo page and the phone page open in it as two
    tabs, as when a visitor opens the confirmation link on the same computer."""
    created = await browser.new_context(viewport={"width": VIEWPORT["width"], "height": VIEWPORT["height"]})
    try:
        yield created
    finally:
        await created.close()


def watch_problems(page: Page) -> list[str]:
    """The list that collects the page's script errors, console errors and failed requests,
    so that a test can end with `assert problems == []`."""
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)

    def failed(request: Request) -> None:
        # The page closes an EventSource itself once the order is final (else it would reconnect);
        # when that wins the race with the server's end of the stream, Chromium calls the
        # request aborted. Nothing went wrong.
        if request.failure == "net::ERR_ABORTED" and urlsplit(request.url).path.endswith("/events"):
            return
        problems.append(f"request failed: {request.url} {request.failure}")

    page.on("requestfailed", failed)
    return problems
