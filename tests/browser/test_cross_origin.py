"""A merchant's own page on another origin, in a real browser
(docs/security.md#browsers-on-other-sites-cors): headless Chromium loads a page from a second
local HTTP server that follows an order with its client secret —
`fetch` (a plain GET, and a JSON POST that needs a preflight), EventSource and WebSocket against
the gateway. From an origin in GATEWAY_CORS_ORIGINS all of it works; from one that is not, the
browser blocks every call, and the confirmation never reaches the gateway."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.browser.conftest import watch_problems
from tests.conftest import client_of
from tests.harness import Stack, free_port
from tests.integration.helpers import create_order

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext

pytestmark = pytest.mark.browser

# What a shop would write: the order's id and client secret come from its own server (here: the
# query string), the gateway's answers are shown as data attributes of #out.
MERCHANT_PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>Checkout at the merchant</title></head>
<body><output id="out"></output>
<script>
const params = new URLSearchParams(location.search);
const gateway = params.get("gateway");
const order = params.get("order");
const payment = params.get("payment");
const secret = encodeURIComponent(params.get("secret"));
const out = document.getElementById("out");

async function read() {
  try {
    const reply = await fetch(`${gateway}/v1/orders/${order}?client_secret=${secret}`);
    out.dataset.etag = reply.headers.get("ETag") || "not exposed";
    out.dataset.fetch = (await reply.json()).status;
  } catch (error) {
    out.dataset.fetch = "blocked";
  }
}

function follow() {
  const events = new EventSource(`${gateway}/v1/orders/${order}/events?client_secret=${secret}`);
  events.addEventListener("order.updated", (event) => {
    out.dataset.sse = JSON.parse(event.data).order.status;
  });
  events.onerror = () => {
    if (!out.dataset.sse) { out.dataset.sse = "blocked"; events.close(); }
  };
  const socket = new WebSocket(`${gateway.replace("http", "ws")}/v1/orders/${order}/ws?client_secret=${secret}`);
  socket.onmessage = (message) => { out.dataset.ws = JSON.parse(message.data).order.status; };
  socket.onerror = () => { if (!out.dataset.ws) out.dataset.ws = "blocked"; };
}

async function confirm() {
  try {
    const reply = await fetch(`${gateway}/v1/payments/${payment}/confirm`, {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({client_secret: params.get("secret")}),
    });
    out.dataset.confirm = (await reply.json()).status;
  } catch (error) {
    out.dataset.confirm = "blocked";
  }
}

read().then(() => { follow(); return confirm(); });
</script></body></html>
"""


class _MerchantSite(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(MERCHANT_PAGE)))
        self.end_headers()
        self.wfile.write(MERCHANT_PAGE)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def sites() -> Iterator[tuple[str, str]]:
    """Two merchant sites, each a local HTTP server on a port of its own: (listed, not listed)."""
    servers = [ThreadingHTTPServer(("127.0.0.1", free_port()), _MerchantSite) for _ in range(2)]
    threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in servers]
    for thread in threads:
        thread.start()
    try:
        listed, stranger = (f"http://127.0.0.1:{server.server_address[1]}" for server in servers)
        yield listed, stranger
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, sites: tuple[str, str]) -> Iterator[Stack]:
    with Stack(tmp_path_factory.mktemp("cross-origin"), env={"GATEWAY_CORS_ORIGINS": sites[0]}) as stack:
        yield stack


# The merchant's server, with its secret key: it makes the order the page follows.
api = client_of("gateway")


def _page_url(site: str, gateway: Stack, order: dict[str, Any]) -> str:
    query = {"gateway": gateway.url, "order": order["id"], "payment": order["payment"]["id"]}
    return f"{site}/checkout?{urlencode({**query, 'secret': order['client_secret']})}"


async def test_a_page_on_a_listed_origin_follows_and_confirms_its_order(
    context: BrowserContext, gateway: Stack, api: httpx.AsyncClient, sites: tuple[str, str]
) -> None:
    from playwright.async_api import expect

    order = await create_order(api, "pm_wallet_qr")
    page = await context.new_page()
    problems = watch_problems(page)
    await page.goto(_page_url(sites[0], gateway, order))
    out = page.locator("#out")
    await expect(out).to_have_attribute("data-fetch", "requires_action")
    await expect(out).to_have_attribute("data-etag", f'"{order["version"]}"')  # an exposed header
    await expect(out).to_have_attribute("data-confirm", "succeeded")  # the preflighted POST
    await expect(out).to_have_attribute("data-sse", "paid", timeout=15_000)
    await expect(out).to_have_attribute("data-ws", "paid", timeout=15_000)
    assert (await api.get(f"/v1/orders/{order['id']}")).json()["status"] == "paid"
    assert problems == []


async def test_a_page_on_an_origin_not_listed_is_blocked_by_the_browser(
    context: BrowserContext, gateway: Stack, api: httpx.AsyncClient, sites: tuple[str, str]
) -> None:
    from playwright.async_api import expect

    order = await create_order(api, "pm_wallet_qr")
    page = await context.new_page()
    await page.goto(_page_url(sites[1], gateway, order))
    out = page.locator("#out")
    await expect(out).to_have_attribute("data-fetch", "blocked")
    await expect(out).to_have_attribute("data-confirm", "blocked")
    await expect(out).to_have_attribute("data-sse", "blocked")
    await expect(out).to_have_attribute("data-ws", "blocked")
    # The preflight was refused, so the POST itself was never sent: nothing was confirmed.
    assert (await api.get(f"/v1/orders/{order['id']}")).json()["status"] == "requires_action"
