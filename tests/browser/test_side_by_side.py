"""The demo page's side-by-side view in a real browser (docs/push-channels.md#the-four-ways,
docs/demo-page.md#four-channels-side-by-side): one `pm_wallet_qr` order followed at once by short
polling, long polling, Server-Sent Events and a WebSocket. The customer approves on the phone page
in a second tab; every panel reaches `paid` without a reload, having spent the requests its channel
should; two refunds reach all four panels; the history lists the order's versions in order; Cancel
reaches all four too."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from tests.artifacts import ARTIFACTS
from tests.browser.conftest import watch_problems
from tests.harness import Stack

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext, Locator, Page

pytestmark = pytest.mark.browser

PANELS = ("short", "long", "sse", "ws")
# A change reaches every panel within this; short polling needs up to a second of it.
ARRIVAL_MS = 15_000
THREE_OR_MORE = re.compile(r"^(?:[3-9]|[1-9][0-9]+)$")
MILLISECONDS = re.compile(r"^([0-9]+) ms$")


def panel(page: Page, channel: str, part: str) -> Locator:
    return page.locator(f"#panel-{channel} .panel-{part}")


async def expect_all_panels(page: Page, status: str) -> None:
    """Every panel shows `status`, by the updates of its own channel (no reload, no help)."""
    from playwright.async_api import expect

    for channel in PANELS:
        await expect(panel(page, channel, "status")).to_have_attribute("data-status", status, timeout=ARRIVAL_MS)


async def requests_of(page: Page) -> dict[str, int]:
    return {channel: int(await panel(page, channel, "requests").inner_text()) for channel in PANELS}


async def rows_of(page: Page, channel: str) -> list[dict[str, str]]:
    """A panel's rows, oldest first: version, HTTP requests when it arrived, the two delays."""
    rows = []
    for line in await page.locator(f"#panel-{channel} .panel-updates tr").all():
        cells = await line.locator("td").all_inner_texts()
        rows.append(
            {
                "version": await line.get_attribute("data-version") or "",
                "requests": await line.get_attribute("data-requests") or "",
                "status": cells[1].replace(" ", "_").replace("\n", "_"),
                "after_change": cells[2],
                "after_click": cells[3],
            }
        )
    return rows


def milliseconds(text: str) -> int:
    match = MILLISECONDS.match(text)
    assert match, f"{text!r} is a delay in ms"
    return int(match.group(1))


async def place_qr_order(page: Page, url: str) -> int:
    """Open the page in its default view (all four), create a `pm_wallet_qr` order, wait until
    every panel shows it waiting; the order's version then."""
    from playwright.async_api import expect

    await page.goto(f"{url}/")
    await expect(page.locator('input[name="channel"][value="all"]')).to_be_checked()
    await page.evaluate("window.sameDocument = true")  # gone if the page reloads
    await page.select_option("#payment-method", "pm_wallet_qr")
    await page.click("#place-order")
    await expect_all_panels(page, "requires_action")
    for channel in PANELS:
        await expect(page.locator(f"#panel-{channel} .panel-updates tr")).to_have_count(1)
    await expect(page.locator("#single")).to_be_hidden()
    return int(await page.inner_text("#version"))


async def test_all_four_panels_follow_one_order_through_approval_and_refunds(
    context: BrowserContext, stack: Stack
) -> None:
    from playwright.async_api import expect

    page = await context.new_page()
    problems = watch_problems(page)
    created = await place_qr_order(page, stack.url)
    await expect(page.locator("#cancel")).to_be_visible()
    await expect(page.locator("#refund-form")).to_be_hidden()

    # While nothing changes, short polling keeps asking; long polling holds its second request
    # (the first fetched the state); SSE and the WebSocket hold their one connection.
    await expect(panel(page, "short", "requests")).to_have_text(THREE_OR_MORE)
    idle = await requests_of(page)
    assert (idle["long"], idle["sse"], idle["ws"]) == (2, 1, 1), idle

    confirm_url = await page.get_attribute("#confirm-link", "href")
    assert confirm_url is not None
    assert confirm_url.startswith(f"{stack.url}/pay/pay_")
    phone = await context.new_page()
    phone_problems = watch_problems(phone)
    await phone.goto(confirm_url)
    await phone.click("#approve")
    await expect(phone.locator("#result")).to_contain_text("approved")

    await expect_all_panels(page, "paid")
    assert await page.evaluate("window.sameDocument === true"), "the page was not reloaded"
    paid = await requests_of(page)
    assert paid["short"] > paid["long"] >= 1, paid
    assert (paid["sse"], paid["ws"]) == (1, 1), paid
    for channel in PANELS:
        row = (await rows_of(page, channel))[-1]
        assert row["version"] == str(created + 1), (channel, row)
        # The request that brought `paid`: the long poll held since the start; for short
        # polling one after the three it had spent before the approval.
        delivered_by = int(row["requests"])
        if channel == "short":
            assert delivered_by > idle["short"], row
        else:
            assert delivered_by == {"long": 2, "sse": 1, "ws": 1}[channel], (channel, row)
        # The phone page in this browser told the demo page when Approve was clicked, which
        # was before the order service recorded `paid` (updated_at): so at least as long ago.
        after_change, after_click = milliseconds(row["after_change"]), milliseconds(row["after_click"])
        assert after_click + 2 >= after_change, (channel, row)
    await expect(page.locator("#qr")).to_be_hidden()
    await expect(page.locator("#cancel")).to_be_hidden()
    await expect(page.locator("#refund-form")).to_be_visible()
    await expect(page.locator("#refundable")).to_contain_text("25.98 EUR left")

    await page.fill("#refund-amount", "5.00")
    await page.click("#refund")
    await expect_all_panels(page, "partially_refunded")
    await expect(page.locator("#refundable")).to_contain_text("20.98 EUR left")
    await page.fill("#refund-amount", "")  # empty: all that is left
    await page.click("#refund")
    await expect_all_panels(page, "refunded")
    await expect(page.locator("#refund-form")).to_be_hidden()
    assert await page.inner_text("#action-error") == ""

    final = created + 3
    done = await requests_of(page)
    assert (done["sse"], done["ws"]) == (1, 1), done  # still the one connection each
    assert done["short"] > done["long"] >= 1, done
    for channel in PANELS:
        rows = await rows_of(page, channel)
        versions = [int(row["version"]) for row in rows]
        statuses = [row["status"] for row in rows]
        if channel == "short":  # a poll a second may skip a version, never go back
            assert versions == sorted(set(versions)), (channel, rows)
            assert (versions[0], versions[-1]) == (created, final), (channel, rows)
        else:  # the pushed channels bring every version, once
            assert versions == list(range(created, final + 1)), (channel, rows)
            assert statuses == ["requires_action", "paid", "partially_refunded", "refunded"], (channel, rows)
        assert rows[0]["after_change"] == "start", (channel, rows)
        for row in rows[1:]:
            milliseconds(row["after_change"])
            milliseconds(row["after_click"])  # each change came after a click

    # The history: every version from 1, oldest first (the WebSocket's ?after_version=0 replays
    # the whole log, docs/push-channels.md#resume-points).
    history = page.locator("#history tr")
    await expect(history.last).to_have_attribute("data-version", str(final))
    listed = [int(await line.get_attribute("data-version") or "0") for line in await history.all()]
    assert listed == list(range(1, final + 1)), listed
    await expect(page.locator("#history-gap")).to_be_hidden()
    await expect(history.first).to_contain_text("pending payment")
    expected = {created: "requires action", created + 1: "paid", created + 2: "partially refunded", final: "refunded"}
    for version, status in expected.items():
        await expect(page.locator(f'#history tr[data-version="{version}"] td').nth(1)).to_have_text(status)
    await expect(history.last).to_contain_text("25.98 EUR")

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "demo-side-by-side.png"), full_page=True)
    # The four panels alone: the README's picture (docs/side-by-side.png) is this one.
    await page.locator("#compare").screenshot(path=str(ARTIFACTS / "demo-side-by-side-panels.png"))
    assert problems == []
    assert phone_problems == []


async def test_cancel_reaches_all_four_panels(context: BrowserContext, stack: Stack) -> None:
    from playwright.async_api import expect

    page = await context.new_page()
    problems = watch_problems(page)
    created = await place_qr_order(page, stack.url)

    await page.click("#cancel")
    await expect_all_panels(page, "canceled")
    await expect(page.locator("#status")).to_have_attribute("data-status", "canceled")
    await expect(page.locator("#qr")).to_be_hidden()
    await expect(page.locator("#cancel")).to_be_hidden()
    await expect(page.locator("#refund-form")).to_be_hidden()
    for channel in PANELS:
        row = (await rows_of(page, channel))[-1]
        assert (row["version"], row["status"]) == (str(created + 1), "canceled"), (channel, row)
        milliseconds(row["after_click"])
    requests = await requests_of(page)
    assert (requests["sse"], requests["ws"]) == (1, 1), requests
    await expect(page.locator("#history tr").last).to_have_attribute("data-version", str(created + 1))
    assert problems == []


async def test_the_address_chooses_the_view(context: BrowserContext, stack: Stack) -> None:
    """`/` opens with the four panels; `/?channel=ws` with the one-channel view, WebSocket chosen."""
    from playwright.async_api import expect

    page = await context.new_page()
    problems = watch_problems(page)
    await page.goto(f"{stack.url}/")
    await expect(page.locator("#compare")).to_be_visible()
    await expect(page.locator("#single")).to_be_hidden()
    await page.goto(f"{stack.url}/?channel=ws")
    await expect(page.locator('input[name="channel"][value="ws"]')).to_be_checked()
    await expect(page.locator("#single")).to_be_visible()
    await expect(page.locator("#compare")).to_be_hidden()
    await page.check('input[name="channel"][value="all"]')  # before an order: the view follows the choice
    await expect(page.locator("#compare")).to_be_visible()
    assert problems == []
