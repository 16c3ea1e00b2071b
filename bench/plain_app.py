"""`python -m bench.plain_app PORT`: a plain FastAPI endpoint, in a process of its own, that
`POST /v1/orders` is measured against (issue: "≥ 20% of a plain FastAPI endpoint").

Plain means what a FastAPI user writes first: one route, the same strict body model
(gateway.schemas.OrderCreate), a dict returned and serialised by FastAPI itself, no middleware,
no exception handlers, no lifespan — on uvicorn with the gateway's own options (uvloop,
httptools, no access log). It answers the same order document as a card that succeeds, built in
memory (bench.payloads.paid_order) and converted by the gateway's converter. The gateway's bare
route (bench/bare_gateway.py) stands beside it: the gap between the two is the gateway's own
middleware and handlers; the gap between the bare route and POST /v1/orders is the two hops,
the durable writes and the services' work.
"""

from __future__ import annotations

import sys
from typing import Any, cast

import uvicorn
from fastapi import FastAPI

from bench.payloads import PUBLIC_URL, paid_order
from gateway.convert import create_order_request, order_json
from gateway.schemas import OrderCreate

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.post("/v1/orders", status_code=201)
async def create_order(body: OrderCreate) -> dict[str, Any]:
    # Returned as the plain dict a FastAPI user would write (a TypedDict annotation would have
    # FastAPI validate every field on the way out, which the baseline never did).
    return cast(dict[str, Any], order_json(paid_order(create_order_request(body)), PUBLIC_URL))


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def main() -> None:
    port = int(sys.argv[1])
    uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", http="httptools", log_config=None, access_log=False)


if __name__ == "__main__":
    main()
