"""`python -m bench.webhook_receiver PORT`: the webhook benchmark's receiver, in a process of its
own (the load comes from elsewhere). It answers every POST with 204 at once and remembers, per
request, its path, its `webhook-id`, the event's `created_at` and when it came (`time.time()`:
the same clock as the order service's on one machine). `GET /arrivals?after=n` gives them."""

from __future__ import annotations

import sys
import time
from datetime import datetime

import orjson
from aiohttp import web

_arrivals: list[tuple[str, str, float, float]] = []


async def _receive(request: web.Request) -> web.Response:
    body = await request.read()
    came = time.time()
    created = datetime.fromisoformat(orjson.loads(body)["created_at"].replace("Z", "+00:00")).timestamp()
    _arrivals.append((request.path, request.headers.get("webhook-id", ""), created, came))
    return web.Response(status=204)


async def _list(request: web.Request) -> web.Response:
    after = int(request.query.get("after", "0"))
    return web.Response(body=orjson.dumps(_arrivals[after:]), content_type="application/json")


async def _health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def main() -> None:
    app = web.Application()
    app.router.add_get("/healthz", _health)
    app.router.add_get("/arrivals", _list)
    app.router.add_post("/{tail:.*}", _receive)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
