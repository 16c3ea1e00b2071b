"""The demo page in a real browser (docs/demo-page.md#the-demo-page-and-the-qr-code-confirmation),
one channel at a time: for each of the four channels, the page creates a `pm_wallet_qr` order and
shows its QR code; the customer opens the confirmation page in a second tab and approves; the first
tab shows `paid` without a reload. (test_side_by_side.py follows one order on all four at once.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.artifacts import ARTIFACTS
from tests.browser.conftest import watch_problems
from tests.harness import Stack

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext

pytestmark = pytest.mark.browser

# How each channel shows on the page, and how many HTTP requests it may have made by the time
# the update arrives (short polling: one a second; the others: one, or one more after a wait).
CHANNELS = {
    "short": ("short polling", range(2, 30)),
    "long": ("long polling", range(2, 4)),
    "sse": ("Server-Sent Events", range(1, 2)),
    "ws": ("WebSocket", range(1, 2)),
}


@pytest.mark.parametrize("channel", list(CHANNELS))
async def test_approving_on_the_phone_turns_the_order_paid_without_reload(
    context: BrowserContext, stack: Stack, channel: str
) -> None:
    from playwright.async_api import expect

    label, requests = CHANNELS[channel]
    page = await context.new_page()
    problems = watch_problems(page)
    # No secret key ever reaches a browser (docs/security.md#client-secrets): what the page and the
    # phone send.
    sent: list[tuple[str, str, dict[str, str]]] = []
    context.on("request", lambda request: sent.append((request.method, request.url, request.headers)))
    await page.goto(f"{stack.url}/")
    await page.evaluate("window.sameDocument = true")  # gone if the page reloads
    await page.select_option("#payment-method", "pm_wallet_qr")
    await page.check(f'input[name="channel"][value="{channel}"]')
    await page.click("#place-order")

    status = page.locator("#status")
    await expect(status).to_have_attribute("data-status", "requires_action")
    await expect(page.locator("#updates tr")).to_have_count(1)  # following has begun
    await expect(page.locator("#qr-image")).to_be_visible()
    # Visible comes before loaded: wait for the image's load to finish, then look at it.
    await expect(page.locator("#qr-image")).to_have_js_property("complete", True)
    qr_width = await page.eval_on_selector("#qr-image", "image => image.naturalWidth")
    assert qr_width > 0, "the QR code image loaded"
    if channel == "sse":
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "demo-page-waiting.png"), full_page=True)
    confirm_url = await page.get_attribute("#confirm-link", "href")
    assert confirm_url is not None
    assert confirm_url.startswith(f"{stack.url}/pay/pay_")

    phone = await context.new_page()
    await phone.goto(confirm_url)
    await expect(phone.locator("#amount")).to_have_text("25.98 EUR")
    await phone.click("#approve")
    await expect(phone.locator("#result")).to_contain_text("approved")

    await expect(status).to_have_attribute("data-status", "paid", timeout=15_000)
    assert await page.evaluate("window.sameDocument === true"), "the page was not reloaded"
    await expect(page.locator("#qr")).to_be_hidden()
    latest = page.locator("#updates tr").first
    await expect(latest).to_contain_text(label)
    await expect(latest).to_contain_text("paid")
    await expect(latest).to_contain_text(" ms")
    assert int(await page.inner_text("#requests")) in requests
    await expect(page.locator("#channel")).to_have_text(label)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"demo-page-{channel}.png"), full_page=True)
    await phone.screenshot(path=str(ARTIFACTS / "pay-page.png"))
    assert problems == []
    assert not [url for _, url, headers in sent if "authorization" in headers]
    assert not [url for _, url, _ in sent if any(key in url for key in stack.keys.all)]
    assert [(m, u.split("?")[0]) for m, u, _ in sent if m == "POST"] == [
        ("POST", f"{stack.url}/demo/orders"),
        ("POST", f"{stack.url}/v1/payments/{confirm_url.split('/pay/')[1].split('?')[0]}/confirm"),
    ]
