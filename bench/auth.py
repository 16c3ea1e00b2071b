"""The API keys of every stack the benchmark starts (docs/security.md#api-keys), and the header its
clients send: the secret key is handed to every load tool — in this process and in
`python -m bench.http_load` — through the environment variable SHOP_BENCH_API_KEY. So the
measured requests pay for authentication and the rate limiter like any client's (the stacks'
limits are set far above the load: tests/harness.py)."""

from __future__ import annotations

import os

from tests.harness import ApiKeys

VARIABLE = "SHOP_BENCH_API_KEY"
# One set for all stacks and clusters of a run, so that one key serves every target.
KEYS = ApiKeys()


def use_keys() -> None:
    os.environ[VARIABLE] = KEYS.secret


def headers() -> dict[str, str]:
    key = os.environ.get(VARIABLE)
    return {"Authorization": f"Bearer {key}"} if key else {}
