"""`python -m bench.plain_app PORT`: a plain FastAPI endpoint, in a process of its own, that
`POST /v1/orders` is measured against (issue: "≥ 20% of a plain FastAPI endpoint").

Plain means what a FastAPI user writes first: one route, the same strict body model
(gateway.schemas.OrderCreate), a dict returned and serialised by FastAPI itself, no middleware,
no exception handlers, no lifespan — on uvicorn with the gateway's own options (uvloop,
httptools, no access log). It answers the same order document as a card that succeeds
(bench/orders.py: `bare_order`), built in memory: the gap between it and POST /v1/orders is the
gateway's own middleware and handlers, the two hops, the durable writes and the services' work.
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn
from fastapi import FastAPI

from bench.orders import bare_order
from gateway.schemas import OrderCreate

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.post("/v1/orders", status_code=201)
async def create_order(body: OrderCreate) -> dict[str, Any]:
    return bare_order(body)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def main() -> None:
    port = int(sys.argv[1])
    uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", http="httptools", log_config=None, access_log=False)


if __name__ == "__main__":
    main()
