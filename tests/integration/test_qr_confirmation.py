"""The QR-code confirmation (docs/demo-page.md#the-qr-code-and-the-phone-page): the QR code of the
confirmation page, the phone's page, the demo page and its static files — against the real
services."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import httpx
import segno

from tests.harness import Stack
from tests.integration.helpers import assert_problem, create_order
from tests.integration.push_clients import sse

SVG_NS = "{http://www.w3.org/2000/svg}"
_PATH_COMMAND = re.compile(r"([MmHh])\s*(-?[\d.]+)(?:\s+(-?[\d.]+))?")


def _modules(svg: bytes) -> set[tuple[int, int]]:
    """The dark modules (column, row) an SVG QR code draws: segno draws each row's dark runs as
    horizontal lines (`h`) in one path, moving with `M` / `m`; the quiet zone is drawn too."""
    root = ET.fromstring(svg)
    paths = [p for p in root.iter(f"{SVG_NS}path") if p.get("stroke")]
    assert len(paths) == 1, "one path draws the dark modules"
    x = y = 0.0
    dark: set[tuple[int, int]] = set()
    for command, first, second in _PATH_COMMAND.findall(paths[0].get("d", "")):
        if command == "M":
            x, y = float(first), float(second)
        elif command == "m":
            x, y = x + float(first), y + float(second)
        else:
            length = float(first) if command == "h" else float(first) - x
            dark.update((int(x) + i, int(y)) for i in range(int(length)))
            x += length
    return dark


def _expected_modules(text: str, border: int) -> set[tuple[int, int]]:
    code = segno.make(text, error="m", micro=False)
    return {
        (column + border, row + border)
        for row, line in enumerate(code.matrix)
        for column, module in enumerate(line)
        if module
    }


async def test_qr_code_encodes_the_confirmation_page(client: httpx.AsyncClient, stack: Stack) -> None:
    order = await create_order(client, "pm_wallet_qr")
    action = order["payment"]["next_action"]
    secret = f"?client_secret={order['client_secret']}"
    assert action["confirm_url"] == f"{stack.url}/pay/{order['payment']['id']}{secret}"
    assert action["qr_svg_url"] == f"{stack.url}/v1/payments/{order['payment']['id']}/qr.svg{secret}"

    reply = await client.get(action["qr_svg_url"])
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "image/svg+xml"
    root = ET.fromstring(reply.content)
    assert root.tag == f"{SVG_NS}svg"
    assert root.get("viewBox")
    size = int(root.get("viewBox", "").split()[2])
    border = 4
    drawn = _modules(reply.content)
    assert len(drawn) > 200
    assert drawn == _expected_modules(action["confirm_url"], border)
    assert drawn != _expected_modules(action["confirm_url"] + "x", border)
    assert size == len(segno.make(action["confirm_url"], error="m").matrix) + 2 * border


async def test_qr_code_of_an_unknown_payment_is_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/payments/pay_00000000000000000000000000/qr.svg"), 404, "NOT_FOUND")
    assert_problem(await client.get("/v1/payments/not-an-id!/qr.svg"), 400)


async def test_scan_open_the_page_approve_and_the_watcher_is_told(client: httpx.AsyncClient, stack: Stack) -> None:
    order = await create_order(client, "pm_wallet_qr")
    payment_id = order["payment"]["id"]
    # The phone: no API key, only what the QR code holds.
    phone = httpx.AsyncClient(base_url=stack.url, timeout=10)
    confirm_url = order["payment"]["next_action"]["confirm_url"]
    async with sse(client, order["id"]) as stream, phone:
        assert (await stream.event()) is not None
        assert (await phone.get(f"/pay/{payment_id}")).status_code == 404  # the id alone shows nothing

        page = await phone.get(confirm_url)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        html = page.text
        assert f'data-payment-id="{payment_id}"' in html
        assert 'data-status="requires_action"' in html
        assert "25.98 EUR" in html
        assert 'id="approve"' in html
        assert 'id="decline"' in html
        assert 'src="/static/pay.js"' in html

        # What the page's Approve button sends.
        body = {"approve": True, "client_secret": order["client_secret"]}
        approved = await phone.post(f"/v1/payments/{payment_id}/confirm", json=body)
        assert approved.status_code == 200
        update = await stream.event()

        # Opened again afterwards, the page shows the outcome and offers nothing to press.
        again = await phone.get(confirm_url)
    assert update is not None
    assert update.message["order"]["status"] == "paid"
    assert 'data-status="succeeded"' in again.text


async def test_the_phone_page_of_an_unknown_payment_is_a_404_page(client: httpx.AsyncClient) -> None:
    page = await client.get("/pay/pay_00000000000000000000000000")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "Payment not found" in page.text


async def test_demo_page_and_its_files_come_from_the_gateway_alone(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
    assert sorted(assets) == ["/static/app.js", "/static/style.css"]
    types = {"js": "text/javascript", "css": "text/css"}
    texts = [page.text]
    pending, seen = [*assets, "/static/pay.js"], set()
    while pending:  # the page's files, and every module they import
        asset = pending.pop()
        if asset in seen:
            continue
        seen.add(asset)
        reply = await client.get(asset)
        assert reply.status_code == 200, asset
        assert reply.headers["content-type"].startswith(types[asset.rsplit(".", 1)[1]])
        texts.append(reply.text)
        pending += [f"/static/{name}" for name in re.findall(r'from "\./([a-z0-9_-]+\.js)"', reply.text)]
    assert {"/static/api.js", "/static/channels.js"} <= seen
    # No CDN, no font service: nothing is loaded from another host.
    for text in texts:
        assert not re.search(r"(?:src|href)=\"(?:https?:)?//", text)
        assert "@import" not in text
        assert not re.search(r"url\((?!data:)", text)
    for channel in ("short", "long", "sse", "ws"):
        assert f'name="channel" value="{channel}"' in page.text


async def test_static_files_are_only_those_of_the_page(client: httpx.AsyncClient) -> None:
    for path in ("/static/nothing.js", "/static/..%2Fapp.py", "/static/.hidden.css", "/static/index.html"):
        assert (await client.get(path)).status_code == 404, path
