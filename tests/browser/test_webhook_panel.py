"""The fifth panel of the demo page (docs/webhooks.md): beside the four channels, the webhooks the
order service sent to the demo's receiver, each with its delay — on a stack whose webhooks may
reach the gateway on loopback, as under `make run`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import watch_problems
from tests.harness import Stack

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext

pytestmark = pytest.mark.browser

ARRIVAL_MS = 15_000


async def test_the_webhook_panel_shows_each_version_with_its_delay(
    context: BrowserContext, webhook_stack: Stack
) -> None:
    from playwright.async_api import expect

    page = await context.new_page()
    problems = watch_problems(page)
    await page.goto(webhook_stack.url + "/")
    await page.select_option("#payment-method", "pm_card_visa")
    await page.click("#place-order")
    webhook = page.locator("#panel-webhook")
    await expect(webhook.locator(".panel-status")).to_have_attribute("data-status", "paid", timeout=ARRIVAL_MS)
    rows = webhook.locator(".panel-updates tr")
    await expect(rows).to_have_count(2)
    for row in await rows.all():
        assert (await row.locator("td").nth(2).inner_text()).endswith(" ms")  # after change, at the receiver
    await expect(webhook.locator(".panel-requests")).to_have_text("2")  # two POSTs to the receiver
    assert problems == []
