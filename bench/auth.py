"""The API key the benchmark's clients send (CONTRACT §11): the one of the stack it started,
handed to every load tool — in this process and in `python -m bench.http_load` — through the
environment variable SHOP_BENCH_API_KEY. So the measured requests pay for authentication and the
rate limiter like any client's (the stack's limits are set far above the load: tests/harness.py)."""

from __future__ import annotations

import os

VARIABLE = "SHOP_BENCH_API_KEY"


def use_key(key: str) -> None:
    os.environ[VARIABLE] = key


def headers() -> dict[str, str]:
    key = os.environ.get(VARIABLE)
    return {"Authorization": f"Bearer {key}"} if key else {}
